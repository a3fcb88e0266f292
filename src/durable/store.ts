/**
 * The storage contract behind a durable queue. `openQueue` (queue.ts) holds the logic that is the
 * same for every backend (ids, codecs and encryption, retries and backoff, workers, leases and
 * heartbeats, redrive pacing); a store holds the rows and makes each state change atomic.
 *
 * Rules every store keeps (the queue and the crash tests rely on them):
 * - An `enqueue` that resolved is durable (committed and, for SQLite, synced per `synchronous`).
 * - Pending, delayed and active items never expire. Only `completed` and `dead` items are removed,
 *   by `purge` or by retention (`sweep`).
 * - Every change to a claimed item is fenced by its lease token: `complete`, `fail`, `extend` with a
 *   token that is not the item's current one (expired and re-claimed, or already settled) change
 *   nothing and report `false` (the queue turns that into a `LEASE_LOST` error and counts it).
 *   A lease is valid while `now < leaseUntil`: a call with the right token but an expired lease
 *   (not yet re-claimed) is refused the same way.
 * - Idempotency keys: an enqueue whose key is held by a pending, active, dead or completed item
 *   (of the same queue) is a duplicate. `sweep` releases the keys of items completed more than
 *   `keyTtlMs` ago, so a key is reserved for at least that window. `purge('completed')` deletes
 *   the items but NOT their keys: a key stays reserved (a repeat enqueue returns the purged item's
 *   id with `duplicate: true`) until `sweep` finds its completion older than `keyTtlMs`. Purging
 *   dead items (or pending/active ones with `force`) frees their keys at once.
 * - `redrive` keeps `deadReason` (why the item last died) until the item dies again.
 * - Moving an item to `dead` and recording its last error happen in one transaction.
 * - Time is the `now` passed in (milliseconds since the epoch, from the queue's injected clock), so
 *   fake clocks drive stores in tests; nodes sharing a PostgreSQL store need clocks in sync (NTP)
 *   and leases far longer than their skew.
 * @module
 */

import { BulwarkDurableError } from './errors.js';
import type { StoreFeatures } from './store-features.js';

/** Where an item is in its life. `pending` includes delayed items (their `runAt` is in the future). */
export type ItemState = 'pending' | 'active' | 'completed' | 'dead';

/** An item as the queue hands it to a store for insertion. `id` is made by the queue (time-ordered). */
export interface NewItem {
  /** Time-ordered unique id made by the queue (a UUIDv7 string); also bound into the encryption AAD. */
  readonly id: string;
  /** Encoded (and possibly encrypted) payload. */
  readonly payload: Uint8Array;
  /** Id of the keyring key that wrapped the payload's data key, or `null` when not encrypted. */
  readonly keyId: string | null;
  /** Idempotency key, or `null`. Unique per queue while pending/active/dead, and for `keyTtlMs` after completion. */
  readonly key: string | null;
  /** Higher runs first. */
  readonly priority: number;
  /** Not claimed before this time (ms epoch). */
  readonly runAt: number;
  /** Attempts allowed before the item is dead-lettered. */
  readonly maxAttempts: number;
  /** Creation time (ms epoch). */
  readonly createdAt: number;
  /** Per-attempt handler timeout of this item in ms (null or absent: the queue's `timeoutMs`). */
  readonly timeoutMs?: number | null;
}

/** The outcome of inserting one item. */
export interface EnqueueOutcome {
  /** The id of the stored item: the new one, or the existing item holding the same idempotency key. */
  readonly id: string;
  /** `true` when an item with the same key existed (nothing was inserted). */
  readonly duplicate: boolean;
}

/** An item as a store returns it. */
export interface StoredItem {
  readonly id: string;
  readonly queue: string;
  readonly payload: Uint8Array;
  readonly keyId: string | null;
  readonly key: string | null;
  readonly priority: number;
  readonly runAt: number;
  readonly state: ItemState;
  /** Attempts started so far (incremented at claim). */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly createdAt: number;
  /** When the item last changed state (ms epoch). */
  readonly updatedAt: number;
  /** Last error recorded by `fail` (message, code and cause chain as JSON text), or `null`. */
  readonly lastError: string | null;
  /**
   * Why the item was last dead-lettered (`'exhausted' | 'non-retryable' | 'DECRYPT_FAILED' | …`),
   * kept after a redrive; `null` if it never died.
   */
  readonly deadReason: string | null;
  /** Redrive history: how many times redriven, and the last time. */
  readonly redrives: number;
  readonly lastRedriveAt: number | null;
  /** Per-attempt timeout set at enqueue, in ms, or null (the queue's default). */
  readonly timeoutMs?: number | null;
  /** The last progress a handler reported (`job.progress`), as JSON text, or null. */
  readonly progress?: string | null;
}

/** A claimed item: the caller owns it until `leaseUntil` unless it extends the lease. */
export interface ClaimedItem extends StoredItem {
  /** Fencing token of this claim; required by complete, fail and extend. */
  readonly leaseToken: string;
  readonly leaseUntil: number;
}

/** A fenced reference to a claimed item. */
export interface LeaseRef {
  readonly id: string;
  readonly leaseToken: string;
}

/** What to do with a failed attempt. */
export type FailAction =
  | { readonly kind: 'retry'; readonly runAt: number; readonly error: string }
  | { readonly kind: 'dead'; readonly reason: string; readonly error: string };

/** Counts by state and the age of the oldest ready pending item. */
export interface StoreStats {
  readonly pending: number;
  /** Pending items whose `runAt` is in the future. Included in `pending`. */
  readonly delayed: number;
  readonly active: number;
  readonly completed: number;
  readonly dead: number;
  /** `now - runAt` of the oldest pending item that is due, or 0 when none is due. */
  readonly oldestPendingAgeMs: number;
}

/** Options for listing items. */
export interface ListOptions {
  readonly state?: ItemState;
  readonly limit?: number;
  /** Keyset pagination: only items whose id sorts after this one. */
  readonly after?: string;
  /**
   * `updated` lists by last change (oldest first, then id) — the order in which `redrive` picks
   * dead items — and ignores `after`. Default `id`.
   */
  readonly order?: 'id' | 'updated';
}

/** Options for redriving dead items back to pending. */
export interface RedriveSelection {
  /** Only these ids (still only if dead). */
  readonly ids?: readonly string[];
  /** At most this many (oldest dead first). */
  readonly limit: number;
}

/** Retention for terminal items; pending and active items are never swept. */
export interface SweepOptions {
  /** Remove completed items whose completion is older than `now - completedMs`. */
  readonly completedMs: number;
  /** Remove dead items older than `now - deadMs`. */
  readonly deadMs: number;
  /** Idempotency keys of completed items stay reserved this long after completion. */
  readonly keyTtlMs: number;
  /** At most this many rows per call (the queue calls again while the count is full). */
  readonly limit: number;
}

/**
 * The storage behind one or more queues (a store is shared by every queue opened on it; each call
 * names its queue).
 */
export interface QueueStore {
  /** A name for messages and the CLI (`sqlite:/path`, `postgres://host/db`). Never contains secrets. */
  readonly description: string;
  /**
   * Creates or migrates the schema (idempotent, safe to race from several processes). With
   * `readOnly`, creates nothing: it opens an existing store (SQLite read-only), fails with
   * `STORE_NOT_FOUND` when there is none, and every later write is refused (`READ_ONLY`).
   */
  init(options?: { readonly readOnly?: boolean }): Promise<void>;
  /**
   * Inserts items atomically as a group (all or none), honouring idempotency keys. `tx` is a
   * backend transaction handle (a `pg` client inside BEGIN) to enqueue in the caller's
   * transaction; stores that cannot use it throw a `BulwarkDurableError` with code `TX_UNSUPPORTED`.
   */
  enqueue(queue: string, items: readonly NewItem[], now: number, tx?: unknown): Promise<EnqueueOutcome[]>;
  /**
   * Claims up to `limit` due pending items (priority desc, runAt asc, id asc), increments their
   * attempts, gives each a fresh lease token valid until `now + leaseMs`. Before claiming, items
   * whose lease expired return to pending (their attempt stays counted).
   */
  claim(queue: string, limit: number, leaseMs: number, now: number): Promise<ClaimedItem[]>;
  /** Completes items; result `i` is `false` when `refs[i]`'s lease is no longer current. */
  complete(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]>;
  /** Records a failed attempt: back to pending at `runAt`, or dead. `false` when the lease is not current. */
  fail(queue: string, ref: LeaseRef, action: FailAction, now: number): Promise<boolean>;
  /** Extends a lease to `now + leaseMs`; `false` when it is no longer current. */
  extend(queue: string, ref: LeaseRef, leaseMs: number, now: number): Promise<boolean>;
  /** Returns expired leases to pending; resolves to how many. */
  reclaimExpired(queue: string, now: number): Promise<number>;
  stats(queue: string, now: number): Promise<StoreStats>;
  get(queue: string, id: string): Promise<StoredItem | undefined>;
  list(queue: string, options: ListOptions): Promise<StoredItem[]>;
  /**
   * Moves dead items back to pending (attempts 0, runAt now, redrive recorded, `deadReason` kept);
   * returns their ids.
   */
  redrive(queue: string, selection: RedriveSelection, now: number): Promise<string[]>;
  /**
   * Deletes items in a state (`completed` or `dead` only unless `force`: otherwise it throws a
   * `BulwarkDurableError` with code `INVALID_STATE`), whose `updatedAt` is before `olderThan` when
   * given; returns how many. With `count`, deletes nothing and returns how many it would delete
   * (the same predicate).
   */
  purge(
    queue: string,
    state: ItemState,
    options: { readonly force?: boolean; readonly olderThan?: number; readonly count?: boolean },
  ): Promise<number>;
  /** Applies retention to terminal items; returns how many rows were removed. */
  sweep(queue: string, options: SweepOptions, now: number): Promise<number>;
  /**
   * Encrypted items (`keyId` not null) whose `keyId` differs from `keyId`, in any state, in id order
   * after `after` (for resumable re-wrap).
   */
  listForRewrap(queue: string, keyId: string, after: string | null, limit: number): Promise<StoredItem[]>;
  /** Replaces an item's payload and key id if its payload is still `expected` (compare-and-set). */
  replacePayload(
    queue: string,
    id: string,
    expectedKeyId: string | null,
    payload: Uint8Array,
    keyId: string,
  ): Promise<boolean>;
  /**
   * Calls `onReady` when items may have become ready in `queue` (another process enqueued or a
   * lease was released). Stores without notifications return a no-op; the queue also polls.
   */
  subscribe(queue: string, onReady: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /**
   * Optional: the names of the queues that have items (for the CLI's `stats` without `--queue`).
   * Stores without it make the CLI ask for `--queue`.
   */
  listQueues?(): Promise<string[]>;
  /**
   * Optional: returns claimed items that never started to pending without counting their attempt
   * (attempts - 1), fenced like `complete`; result `i` is `false` when `refs[i]`'s lease is not
   * current. Workers use it for prefetched items on `stop()`; stores without it make them use
   * `fail` with a retry (the attempt then counts).
   */
  release?(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]>;
  /**
   * Optional: pauses (or resumes) `queue` for every process sharing the store: while paused,
   * `claim` returns nothing (enqueues and acks of running items go on). Resuming wakes workers.
   */
  setPaused?(queue: string, paused: boolean, now: number): Promise<void>;
  /** Optional: true while `queue` is paused. */
  isPaused?(queue: string): Promise<boolean>;
  /**
   * Optional: schedules, fleet-wide limits, progress, redrive into another queue (see
   * `store-features.ts`). Per-item `timeoutMs` needs it too.
   */
  readonly features?: StoreFeatures;
}

/**
 * Refuses to purge pending or active items without `force` (they are work not yet done). For
 * store implementations. @internal
 */
export function checkPurge(queue: string, state: ItemState, options: { readonly force?: boolean }): void {
  if ((state === 'pending' || state === 'active') && options.force !== true) {
    throw new BulwarkDurableError(
      'INVALID_STATE',
      `Refusing to purge ${state} items of queue "${queue}": they are work not yet done; pass force to delete them anyway`,
    );
  }
}
