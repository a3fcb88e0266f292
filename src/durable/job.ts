/**
 * What handlers and readers of a queue see: the job, its context, item views and results.
 * @module
 */

import type { StoredItem, StoreStats } from './store.js';

/** The result of an enqueue. */
export interface EnqueueResult {
  /** The item's id (the existing item's, for a duplicate key). */
  readonly id: string;
  /** True when the key was already taken: nothing new was stored. */
  readonly duplicate: boolean;
}

/** The item a handler receives. */
export interface Job<T = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly payload: T;
  readonly key: string | null;
  /** 1 on the first attempt (attempts interrupted by crashes count too). */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  /** When the item was enqueued (ms epoch). */
  readonly createdAt: number;
  /** When the item was due (ms epoch): its enqueue time plus `delayMs`, or its schedule's tick. */
  readonly runAt: number;
  /** The item's own per-attempt timeout (set at enqueue), or null for the queue's `timeoutMs`. */
  readonly timeoutMs: number | null;
  /** The error of the previous attempt, as recorded (JSON text), or null. */
  readonly lastError: string | null;
  /**
   * Records the job's progress (a number 0..100 or small JSON data), stored with the item and shown
   * by `get`/`list`, the CLI and the control plane; rejects with `LEASE_LOST` once the attempt no
   * longer holds the item. Rapid calls are coalesced (the latest value wins).
   */
  progress(value: unknown): Promise<void>;
}

/** What a handler gets besides its job. */
export interface JobContext {
  /**
   * Aborted when the lease is lost (`reason` is a `LEASE_LOST` error), the attempt runs past the
   * queue's `timeoutMs` (`HANDLER_TIMEOUT`), or the worker stops past its grace.
   */
  readonly signal: AbortSignal;
  /** Extends the lease now (heartbeats do this automatically); rejects with `LEASE_LOST` if it was lost. */
  extendLease(): Promise<void>;
}

/** A job handler. Resolve to ack; throw to retry (or dead-letter: `nonRetryable(err)` or exhausted attempts). */
export type JobHandler<T> = (job: Job<T>, ctx: JobContext) => unknown;

/** Counters of a worker since it started (plus `inFlight`, the handlers running now). */
export interface WorkerStats {
  /** Handlers running now. */
  inFlight: number;
  claimed: number;
  completed: number;
  retried: number;
  dead: number;
  /** Attempts that ran past the queue's `timeoutMs`. */
  timeouts: number;
  /** Acks, fails or heartbeats refused because the lease was no longer this worker's (`LEASE_LOST`). */
  leaseLost: number;
  /** Items returned to pending by `stop()` at its grace deadline. */
  released: number;
  /** Store operations that failed (the worker retries later). */
  errors: number;
}

/** A stored item as the queue shows it: the decoded payload (undefined when it cannot be decoded). */
export interface ItemView<T = unknown> extends Omit<StoredItem, 'payload' | 'progress'> {
  readonly payload: T | undefined;
  /** The last progress a handler reported (`job.progress`), or null. */
  readonly progress?: unknown;
  /** Why the payload could not be decoded, when it could not. */
  readonly payloadError?: string;
}

/** A dead letter as listed: why it died and its last error (parsed). */
export interface DeadLetter<T = unknown> extends ItemView<T> {
  /** `lastError` parsed from JSON (message, code, cause chain), or null. */
  readonly error: Record<string, unknown> | null;
}

/** Progress of `queue.rewrap`. */
export interface RewrapProgress {
  /** Items re-wrapped by this call. */
  readonly rewrapped: number;
  /**
   * Items of this call whose data key could not be re-wrapped (unknown key, tampered): they keep
   * their old key (and dead-letter as DECRYPT_FAILED when claimed without it). Store errors are
   * not counted here: they reject the call without moving the cursor.
   */
  readonly failed: number;
  /**
   * Items that changed between listing and re-wrapping (re-wrapped by another process, or deleted):
   * left as they are.
   */
  readonly conflicts: number;
  /** Pass back as `cursor` to resume. */
  readonly cursor: string | null;
  /**
   * True when no item of an older key is left after the cursor and this call had no `failed` item.
   * Retire an old key only after a pass from `cursor: null` whose calls all had `failed === 0` and
   * whose last call says `done`.
   */
  readonly done: boolean;
}

/** Queue-level stats: the store's counts plus the queue name. */
export interface QueueStats extends StoreStats {
  readonly queue: string;
}

/** Zeroed worker stats. @internal */
export function newWorkerStats(): WorkerStats {
  return {
    inFlight: 0,
    claimed: 0,
    completed: 0,
    retried: 0,
    dead: 0,
    timeouts: 0,
    leaseLost: 0,
    released: 0,
    errors: 0,
  };
}
