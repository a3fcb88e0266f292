/**
 * The storage contract of a sync server, and an in-memory implementation (tests, examples).
 * `postgresSyncStore` (postgres-store.ts) is the production one. A store keeps records with a
 * change cursor and, per record, the highest operation `seq` applied from each client (the
 * idempotency marks: clients replay a record's operations in `seq` order, so an operation at or
 * below its client's mark was applied before), and a purge horizon.
 *
 * Rules every store keeps:
 * - `push(fn)` runs `fn` in one transaction, serialised with every other push: either all its
 *   writes commit or none. Cursors are assigned in commit order, so a pull never skips a change.
 * - A record written by a push gets a cursor greater than every cursor committed before.
 * - `pull(after)` returns records whose cursor is greater than `after`, in cursor order.
 * - `sweep` removes tombstones (records deleted with no field left) deleted before the given
 *   time and raises the horizon to their highest cursor; a pull from below the horizon must
 *   restart from 0 (`CURSOR_EXPIRED`).
 * @module
 */

import { BulwarkSyncError } from './errors.js';
import type { SyncRecord } from './record.js';

/** A record with its change cursor. */
export interface ChangedRecord extends SyncRecord {
  readonly cursor: number;
}

/** A record as stored: the record and, per client, the highest operation `seq` applied to it. */
export interface StoredRecord {
  readonly record: SyncRecord;
  readonly marks: Readonly<Record<string, number>>;
}

/** A record to write, with the server time of its tombstone (for retention). */
export interface RecordWrite extends StoredRecord {
  /** Server time (ms epoch) when the tombstone was set, or null for a live record. */
  readonly deletedAt: number | null;
}

/** The operations of one push transaction. */
export interface PushTx {
  /** The stored records for `keys` (by `keyOf(entity, id)`; absent ones are missing from the map). */
  read(keys: readonly { entity: string; id: string }[]): Promise<Map<string, StoredRecord>>;
  /** Writes records (each gets a new cursor) at server time `nowMs`. */
  write(records: readonly RecordWrite[], nowMs: number): Promise<void>;
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
  /** Removes tombstones deleted before `tombstonesBefore`; returns how many. */
  sweep(tombstonesBefore: number): Promise<number>;
  close(): Promise<void>;
  /** Where the data lives (no credentials). */
  readonly description: string;
}

/** The map key of a record. @internal */
export function keyOf(entity: string, id: string): string {
  return `${entity}\u0000${id}`;
}

interface MemRow extends RecordWrite {
  readonly cursor: number;
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
        const staged: RecordWrite[] = [];
        const tx: PushTx = {
          read: async (keys) => {
            const out = new Map<string, StoredRecord>();
            for (const k of keys) {
              const r = rows.get(keyOf(k.entity, k.id));
              if (r !== undefined) out.set(keyOf(k.entity, k.id), { record: r.record, marks: r.marks });
            }
            return out;
          },
          write: async (records) => {
            staged.push(...records);
          },
        };
        const result = await fn(tx);
        for (const w of staged) rows.set(keyOf(w.record.entity, w.record.id), { ...w, cursor: ++cursor });
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
    sweep: async (tombstonesBefore) => {
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
      return removed;
    },
    close: async () => {
      closed = true;
    },
  };
}
