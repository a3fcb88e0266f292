/**
 * The data model of `bulwark/sync`: records with a stamp per field, tombstones, and the
 * operations clients record offline.
 * @module
 */

/** Field values of a record (JSON values). */
export type Fields = Readonly<Record<string, unknown>>;

/** Priority of an operation: `critical` replays first (and may bypass the server's rate limit). */
export type SyncPriority = 'critical' | 'high' | 'normal' | 'low';

/** Queue priority of each class (higher replays first). @internal */
export const PRIORITY_RANK: Readonly<Record<SyncPriority, number>> = {
  critical: 30,
  high: 20,
  normal: 10,
  low: 0,
};

/**
 * A record as the server stores it and clients replicate it: the visible fields, the clock stamp
 * of the write that set each field (for last-writer-wins), the stamp of its tombstone, and the
 * server's version (raised on every change; the `If-Match` of optimistic concurrency).
 */
export interface SyncRecord {
  readonly entity: string;
  readonly id: string;
  /** Visible fields. A deleted record has none. */
  readonly fields: Fields;
  /** Field → the stamp of the write that set it. */
  readonly stamps: Readonly<Record<string, string>>;
  /** Stamp of the latest delete, or null. Writes stamped before it are ignored. */
  readonly deleted: string | null;
  /** Server version: 0 for a record the server has never stored. */
  readonly version: number;
}

/**
 * One change recorded by a client: `put` sets `fields` (the changed fields only) and `delete`
 * deletes the record. `base` holds the values of those fields as the client saw them when it
 * made the change and `baseVersion` the record version it saw: the server detects concurrent
 * edits from them (three-way merge, If-Match).
 */
export interface SyncOperation {
  /** Unique id: the outbox's idempotency key, and the operation's name in the audit log. */
  readonly opId: string;
  readonly clientId: string;
  readonly entity: string;
  readonly id: string;
  readonly kind: 'put' | 'delete';
  readonly fields: Fields;
  readonly base: Fields;
  readonly baseVersion: number;
  /** Hybrid-logical-clock stamp of the change. */
  readonly hlc: string;
  readonly priority: SyncPriority;
  /**
   * The client's own order of its operations (>= 1, increasing): replayed in this order per
   * record, and the server's idempotency mark (it applies an operation only when its `seq` is above
   * the highest it applied from that client to that record).
   */
  readonly seq: number;
}

/** A resolved conflict: what both sides had and what was kept, for the audit log. */
export interface ConflictReport {
  readonly entity: string;
  readonly id: string;
  readonly opId: string;
  readonly clientId: string;
  /** The strategy (or `custom:<entity>`, or `tombstone`) that decided. */
  readonly strategy: string;
  readonly fields: readonly string[];
  /** The conflicting fields' values in the client's base, the client's change, the server, and the result. */
  readonly base: Fields;
  readonly ours: Fields;
  readonly theirs: Fields;
  readonly result: Fields;
}

/** An empty record (never stored). */
export function emptyRecord(entity: string, id: string): SyncRecord {
  return { entity, id, fields: {}, stamps: {}, deleted: null, version: 0 };
}

/** True when the record is deleted (a tombstone with no field written after it). */
export function isDeleted(record: SyncRecord): boolean {
  return record.deleted !== null && Object.keys(record.fields).length === 0;
}

/**
 * Deep equality of JSON values (key order does not matter; `undefined` means absent).
 *
 * @example
 * ```ts
 * import { sameValue } from 'bulwark/sync';
 * sameValue({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }); // true
 * ```
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], bb[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!sameValue(ao[k], bo[k])) return false;
  return true;
}

/** The entries of `fields` named in `names`. @internal */
export function pick(fields: Fields, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) if (fields[n] !== undefined) out[n] = fields[n];
  return out;
}
