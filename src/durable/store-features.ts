/**
 * The store operations behind schedules, fleet-wide limits, progress, per-item timeouts and
 * redrive into another queue (`QueueStore.features`). Both built-in stores implement them
 * (`sqlite-features.ts`, `pg-features.ts`); a store without `features` makes those calls throw
 * `INVALID_STATE`.
 * @module
 */

import { BulwarkDurableError } from './errors.js';
import type { LeaseRef, NewItem, QueueStore } from './store.js';

/**
 * The store's features, or an `INVALID_STATE` error naming what needed them. @internal
 */
export function requireFeatures(store: QueueStore, what: string): StoreFeatures {
  if (store.features === undefined) {
    throw new BulwarkDurableError(
      'INVALID_STATE',
      `Store ${store.description} does not support ${what}: use sqliteStore or postgresStore`,
    );
  }
  return store.features;
}

/** What to do with ticks missed while no worker was running (or the fleet was paused by a crash). */
export type CatchUp = 'none' | 'last' | 'all';

/** A schedule as stored (one row per queue and schedule name). */
export interface ScheduleRecord {
  readonly queue: string;
  readonly name: string;
  /** A cron expression (5 or 6 fields), or null for `everyMs`. */
  readonly cron: string | null;
  /** The IANA time zone of `cron`. */
  readonly tz: string;
  /** Fixed period in ms (ticks at `anchor + k * everyMs`), or null for `cron`. */
  readonly everyMs: number | null;
  readonly catchUp: CatchUp;
  /** Encoded (and possibly encrypted) payload of every run. */
  readonly payload: Uint8Array;
  readonly keyId: string | null;
  readonly priority: number;
  readonly maxAttempts: number | null;
  readonly timeoutMs: number | null;
  /** The next tick not yet fired (ms epoch). */
  readonly nextRunAt: number;
  /** The last tick fired, or null. */
  readonly lastRunAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One run of a schedule to insert: the tick it is for and its item. */
export interface ScheduleRun {
  readonly tick: number;
  readonly item: NewItem;
}

/** Fleet-wide limits of one queue (PostgreSQL and SQLite stores enforce them in `claim`). */
export interface QueueLimits {
  /** At most this many items of the queue active (claimed, lease valid) at once, fleet-wide. */
  readonly concurrency: number | null;
  /** At most this many claims per second, fleet-wide (token bucket of `burst`, default 1 s worth). */
  readonly ratePerSec: number | null;
  readonly burst: number | null;
}

/** One dead item to move into another queue, with its payload re-sealed for the target. */
export interface RedriveMove {
  readonly id: string;
  /** The payload bound to the target queue (re-encrypted when the queue encrypts). */
  readonly payload: Uint8Array;
  readonly keyId: string | null;
  /** The payload the item held when it was read (compare-and-set: changed means skipped). */
  readonly expectedKeyId: string | null;
}

/** Why a move was not made (`moved` when it was). */
export type RedriveMoveOutcome = 'moved' | 'not-dead' | 'not-found' | 'key-conflict';

/** The optional operations of a store (see the module doc). */
export interface StoreFeatures {
  /** Records a claimed item's progress (JSON text), fenced by its lease; false when not current. */
  setProgress(queue: string, ref: LeaseRef, progress: string, now: number): Promise<boolean>;
  /**
   * Moves dead items of `from` into `to` as pending items (attempts 0, run now, redrive recorded,
   * `deadReason` and last error kept), with their idempotency key: an item whose key is taken in
   * `to` stays dead in `from` (`key-conflict`). One transaction per call.
   */
  redriveTo(
    from: string,
    to: string,
    moves: readonly RedriveMove[],
    now: number,
  ): Promise<RedriveMoveOutcome[]>;
  /** Creates or replaces a schedule. */
  putSchedule(schedule: ScheduleRecord): Promise<void>;
  /** Deletes a schedule; false when there was none. */
  removeSchedule(queue: string, name: string): Promise<boolean>;
  /** The schedules of `queue`, or of every queue for null, by queue then name. */
  listSchedules(queue: string | null): Promise<ScheduleRecord[]>;
  /**
   * Fires runs of a schedule in ONE transaction: moves `nextRunAt` from `expectedNext` to `next`
   * (compare-and-set: null when another process moved it first, nothing inserted), records each
   * run's tick under a unique (queue, schedule, tick) key and inserts its item (a tick already
   * recorded inserts nothing). Resolves to the ids inserted.
   */
  fireSchedule(
    queue: string,
    name: string,
    expectedNext: number,
    runs: readonly ScheduleRun[],
    next: number,
    now: number,
  ): Promise<string[] | null>;
  /** Forgets run records of ticks before `before` (they only guard ticks that can still fire). */
  sweepRuns(queue: string, before: number): Promise<number>;
  /** Stores (or with null, removes) the queue's fleet-wide limits. */
  setLimits(queue: string, limits: QueueLimits | null, now: number): Promise<void>;
  getLimits(queue: string): Promise<QueueLimits | null>;
}
