/**
 * The storage contract of a sync server, and an in-memory implementation (tests, examples).
 * `postgresSyncStore` (postgres-store.ts) is the production one. A store keeps records with a
 * change cursor, the outcome of every applied operation (idempotency), and a purge horizon.
 *
 * Rules every store keeps:
 * - `push(fn)` runs `fn` in one transaction, serialised with every other push: either all its
 *   writes commit or none. Cursors are assigned in commit order, so a pull never skips a change.
 * - A record written by a push gets a cursor greater than every cursor committed before.
 * - `pull(after)` returns records whose cursor is greater than `after`, in cursor order.
 * - `sweep` removes tombstones (records deleted with no field left) deleted before the given
 *   time and raises the horizon to their highest cursor; a pull from below the horizon must
 *   restart from 0 (`CURSOR_EXPIRED`). It also forgets operation outcomes older than `opsBefore`.
 * @module
 */

import { BulwarkSyncError } from './errors.js';
import type { SyncRecord } from './record.js';

/** The stored outcome of an applied operation (returned again for a duplicate). */
export interface OpOutcome {
  readonly opId: string;
  /** The record's version after the operation. */
  readonly version: number;
  /** Fields that were in conflict, or null. */
  readonly conflict: readonly string[] | null;
}

/** A record with its change cursor. */
export interface ChangedRecord extends SyncRecord {
  readonly cursor: number;
}

/** A record to write, with the server time of its tombstone (for retention). */
export interface RecordWrite {
  readonly record: SyncRecord;
  /** Server time (ms epoch) when the tombstone was set, or null for a live record. */
  readonly deletedAt: number | null;
}

/** An applied operation to remember. */
export interface OpWrite extends OpOutcome {
  readonly clientId: string;
}

/** The operations of one push transaction. */
export interface PushTx {
  /** Outcomes of the operations among `opIds` that were applied before. */
  seen(opIds: readonly string[]): Promise<Map<string, OpOutcome>>;
  /** The current records for `keys` (`entity\u0000id`); absent ones are missing from the map. */
  load(keys: readonly { entity: string; id: string }[]): Promise<Map<string, SyncRecord>>;
  /** Writes records (each gets a new cursor) and operation outcomes, at server time `nowMs`. */
  write(records: readonly RecordWrite[], ops: readonly OpWrite[], nowMs: number): Promise<void>;
}

/** A page of changes. */
export interface PullPage {
  readonly changes: readonly ChangedRecord[];
  /** Cursors at or below this were purged (tombstones past retention). */
  readonly horizon: number;
}

/** Storage of a sync server. */
export interface SyncServerStore {
  /** Creates tables (idempotent; safe when many servers start at once). */
  init(): Promise<void>;
  /** Runs `fn` in one serialised transaction. */
  push<T>(fn: (tx: PushTx) => Promise<T>): Promise<T>;
  /** Up to `limit` records changed after cursor `after`, in cursor order. */
  pull(after: number, limit: number): Promise<PullPage>;
  /** Removes tombstones deleted before `tombstonesBefore` and op outcomes older than `opsBefore`; returns how many tombstones. */
  sweep(tombstonesBefore: number, opsBefore: number): Promise<number>;
  close(): Promise<void>;
  /** Where the data lives (no credentials). */
  readonly description: string;
}

/** The map key of a record. @internal */
export function keyOf(entity: string, id: string): string {
  return `${entity}\u0000${id}`;
}

interface MemRow {
  record: SyncRecord;
  cursor: number;
  deletedAt: number | null;
}

/**
 * A sync server store in memory (lost on exit): for tests, examples and single-process demos.
 *
 * @example
 * ```ts
 * import { memorySyncStore, syncServer } from 'bulwark/sync';
 * const server = syncServer({ store: memorySyncStore() });
 * ```
 */
export function memorySyncStore(): SyncServerStore {
  const rows = new Map<string, MemRow>();
  const ops = new Map<string, OpWrite & { at: number }>();
  let cursor = 0;
  let horizon = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;
  const open = (): void => {
    if (closed) throw new BulwarkSyncError('CLOSED', 'The sync store was closed');
  };
  return {
    description: 'memory',
    init: async () => {},
    push<T>(fn: (tx: PushTx) => Promise<T>): Promise<T> {
      open();
      const run = async (): Promise<T> => {
        const staged: { records: readonly RecordWrite[]; ops: readonly OpWrite[]; now: number }[] = [];
        const tx: PushTx = {
          seen: async (ids) => {
            const out = new Map<string, OpOutcome>();
            for (const id of ids) {
              const o = ops.get(id);
              if (o !== undefined) out.set(id, { opId: o.opId, version: o.version, conflict: o.conflict });
            }
            return out;
          },
          load: async (keys) => {
            const out = new Map<string, SyncRecord>();
            for (const k of keys) {
              const r = rows.get(keyOf(k.entity, k.id));
              if (r !== undefined) out.set(keyOf(k.entity, k.id), r.record);
            }
            return out;
          },
          write: async (records, written, now) => {
            staged.push({ records, ops: written, now });
          },
        };
        const result = await fn(tx);
        for (const s of staged) {
          for (const w of s.records) {
            rows.set(keyOf(w.record.entity, w.record.id), {
              record: w.record,
              cursor: ++cursor,
              deletedAt: w.deletedAt,
            });
          }
          for (const o of s.ops) ops.set(o.opId, { ...o, at: s.now });
        }
        return result;
      };
      const p = chain.then(run, run);
      chain = p.catch(() => {});
      return p;
    },
    pull: async (after, limit) => {
      open();
      const changes = [...rows.values()]
        .filter((r) => r.cursor > after)
        .sort((a, b) => a.cursor - b.cursor)
        .slice(0, limit)
        .map((r) => ({ ...r.record, cursor: r.cursor }));
      return { changes, horizon };
    },
    sweep: async (tombstonesBefore, opsBefore) => {
      open();
      let removed = 0;
      for (const [k, r] of rows) {
        if (
          r.deletedAt !== null &&
          r.deletedAt < tombstonesBefore &&
          Object.keys(r.record.fields).length === 0
        ) {
          rows.delete(k);
          horizon = Math.max(horizon, r.cursor);
          removed++;
        }
      }
      for (const [id, o] of ops) if (o.at < opsBefore) ops.delete(id);
      return removed;
    },
    close: async () => {
      closed = true;
    },
  };
}
