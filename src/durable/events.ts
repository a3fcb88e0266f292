/**
 * Events of durable queues and their workers. They go to `queue.onEvent` listeners and to the
 * process-wide `telemetry` bus (kind `durableQueue`), so metrics can count them.
 * @module
 */

import type { EventBase } from '../core/events.js';

interface DurableBase extends EventBase {
  readonly kind: 'durableQueue';
  /** The queue's name (also in `name`). */
  readonly queue: string;
}

/**
 * An event of a durable queue. `attempt` is the item's attempt number (1-based; 0 for events
 * that are not about one attempt).
 * - `enqueued`: an item was stored (or found to be a `duplicate` of an existing key).
 * - `claimed`: a worker took an item and starts its handler.
 * - `completed`: the handler succeeded and the completion was committed.
 * - `retried`: the handler failed; the item runs again after `delayMs`.
 * - `dead`: the item moved to the dead letters (`reason`: `exhausted`, `non-retryable`,
 *   `DECRYPT_FAILED`, `DECODE_FAILED`, `lease-expired`, `stopped`).
 * - `leaseLost`: a worker's ack, fail or heartbeat was refused because its lease expired or was
 *   taken over (`during` says which); the item runs (or ran) elsewhere.
 * - `released`: `worker.stop()` returned a still-running item to pending at its grace deadline.
 * - `redriven`: dead items were sent back to pending.
 * - `error`: a store operation of a worker failed (the worker keeps going and retries later).
 */
export type DurableQueueEvent =
  | (DurableBase & { readonly event: 'enqueued'; readonly id: string; readonly duplicate: boolean })
  | (DurableBase & { readonly event: 'claimed'; readonly id: string })
  | (DurableBase & { readonly event: 'completed'; readonly id: string; readonly durationMs: number })
  | (DurableBase & {
      readonly event: 'retried';
      readonly id: string;
      readonly delayMs: number;
      readonly error: unknown;
    })
  | (DurableBase & {
      readonly event: 'dead';
      readonly id: string;
      readonly reason: string;
      readonly error: unknown;
    })
  | (DurableBase & {
      readonly event: 'leaseLost';
      readonly id: string;
      readonly during: 'complete' | 'fail' | 'extend' | 'expired';
    })
  | (DurableBase & { readonly event: 'released'; readonly id: string })
  | (DurableBase & { readonly event: 'redriven'; readonly ids: readonly string[] })
  | (DurableBase & { readonly event: 'error'; readonly operation: string; readonly error: unknown });

declare module '../core/events.js' {
  interface PolicyEventMap {
    durableQueue: DurableQueueEvent;
  }
}
