/**
 * Events of `bulwark/sync` components. They go to each component's `onEvent` listeners and to
 * the process-wide `telemetry` bus (kinds `hybridClock`, `syncServer`, `syncClient`).
 * @module
 */

import type { StateChange } from '../core/component-kit.js';
import type { EventBase } from '../core/events.js';

/**
 * An event of a hybrid logical clock: `driftRejected` when a stamp was refused as too far ahead
 * of the wall clock (`driftMs`).
 */
export type HybridClockEvent = EventBase & {
  readonly kind: 'hybridClock';
  readonly event: 'driftRejected';
  readonly driftMs: number;
};

/**
 * An event of a sync server:
 * - `pushed`: a batch was committed (`applied` new operations, `duplicates` seen before, `conflicts` resolved);
 * - `conflict`: one conflict was resolved (`entity`, `id`, `fields`, `strategy`);
 * - `rejected`: a request was refused (`reason`: `rateLimited`, `badRequest`, `cursorExpired`);
 * - `pulled`: a page of changes was served (`changes`);
 * - `swept`: tombstones past retention were removed (`removed`).
 */
export type SyncServerEvent =
  | (EventBase & {
      readonly kind: 'syncServer';
      readonly event: 'pushed';
      readonly clientId: string;
      readonly applied: number;
      readonly duplicates: number;
      readonly conflicts: number;
    })
  | (EventBase & {
      readonly kind: 'syncServer';
      readonly event: 'conflict';
      readonly clientId: string;
      /** The operation that met the conflict (the audit entry's `subject`). */
      readonly opId: string;
      readonly entity: string;
      readonly id: string;
      readonly fields: readonly string[];
      readonly strategy: string;
    })
  | (EventBase & {
      readonly kind: 'syncServer';
      readonly event: 'rejected';
      readonly clientId: string;
      readonly reason: 'rateLimited' | 'badRequest' | 'cursorExpired';
    })
  | (EventBase & {
      readonly kind: 'syncServer';
      readonly event: 'pulled';
      readonly clientId: string;
      readonly changes: number;
    })
  | (EventBase & { readonly kind: 'syncServer'; readonly event: 'swept'; readonly removed: number })
  | (EventBase & { readonly kind: 'syncServer' } & StateChange<'serving' | 'closed'>);

/**
 * An event of a sync client:
 * - `recorded`: an operation was stored in the outbox (acknowledged to the caller);
 * - `pushed`: operations were acknowledged by the server (`ops`, `conflicts`);
 * - `pulled`: server changes were applied to the replica (`changes`; `reset` when the cursor had expired);
 * - `offline`: a sync round failed to reach the server (`error`); operations stay in the outbox;
 * - `deferred`: an operation waited for an earlier one of the same entity (per-entity order);
 * - `stateChange`: the client moved between `idle`, `syncing`, `offline` and `closed`.
 */
export type SyncClientEvent =
  | (EventBase & {
      readonly kind: 'syncClient';
      readonly event: 'recorded';
      readonly entity: string;
      readonly id: string;
    })
  | (EventBase & {
      readonly kind: 'syncClient';
      readonly event: 'pushed';
      readonly ops: number;
      readonly conflicts: number;
    })
  | (EventBase & {
      readonly kind: 'syncClient';
      readonly event: 'pulled';
      readonly changes: number;
      readonly reset: boolean;
    })
  | (EventBase & { readonly kind: 'syncClient'; readonly event: 'offline'; readonly error: unknown })
  | (EventBase & {
      readonly kind: 'syncClient';
      readonly event: 'deferred';
      readonly entity: string;
      readonly id: string;
    })
  | (EventBase & { readonly kind: 'syncClient' } & StateChange<'idle' | 'syncing' | 'offline' | 'closed'>);

declare module '../core/events.js' {
  interface PolicyEventMap {
    hybridClock: HybridClockEvent;
    syncServer: SyncServerEvent;
    syncClient: SyncClientEvent;
  }
}

/** The base fields of a sync event. @internal */
export function eventBase<K extends string>(kind: K, name: string, priority = 'normal') {
  return { kind, name, priority, operation: undefined, attempt: 0 } as const;
}
