/**
 * One attempt of an item inside a worker: the claimed item, its fenced lease, the handler's abort
 * signal (made lazily), and the job and context the handler receives.
 * @module
 */

import type { Job, JobContext } from './job.js';
import type { ClaimedItem, LeaseRef, QueueStore } from './store.js';

/** One claimed item in a worker, from claim to settlement. @internal */
export interface Attempt {
  readonly item: ClaimedItem;
  readonly ref: LeaseRef;
  /** Made when the handler first reads `ctx.signal` (most handlers that never read it cost none). */
  controller: AbortController | null;
  /** Set when the signal must abort (lease lost, timeout, stop); applied when the controller is made. */
  abortReason: unknown;
  leaseUntil: number;
  /** A heartbeat of this attempt is in flight. */
  extending: boolean;
  /** The outcome is decided (acked, failed, timed out or released): a late result is discarded. */
  settled: boolean;
  /** The handler's promise settled. */
  handlerDone: boolean;
  lostCounted: boolean;
  /** When the handler started (the clock's `now()`). */
  startedAt: number;
  /** The attempt's progress reporter, made on the first `job.progress()`. */
  reporter: ((value: unknown) => Promise<void>) | null;
}

/** A fresh attempt for a claimed item. @internal */
export function newAttempt(item: ClaimedItem): Attempt {
  return {
    item,
    ref: item, // a claimed item is its own fenced reference (id, leaseToken)
    controller: null,
    abortReason: undefined,
    leaseUntil: item.leaseUntil,
    extending: false,
    settled: false,
    handlerDone: false,
    lostCounted: false,
    startedAt: 0,
    reporter: null,
  };
}

/** Aborts the attempt's signal (once; the first reason wins). @internal */
export function abortAttempt(attempt: Attempt, reason: unknown): void {
  if (attempt.abortReason !== undefined) return;
  attempt.abortReason = reason;
  attempt.controller?.abort(reason);
}

/** A handler's context: one object per attempt, its signal made on first read. @internal */
class AttemptContext implements JobContext {
  constructor(
    private readonly attempt: Attempt,
    private readonly extend: (attempt: Attempt) => Promise<void>,
  ) {}

  get signal(): AbortSignal {
    const attempt = this.attempt;
    if (attempt.controller === null) {
      attempt.controller = new AbortController();
      if (attempt.abortReason !== undefined) attempt.controller.abort(attempt.abortReason);
    }
    return attempt.controller.signal;
  }

  extendLease(): Promise<void> {
    return this.extend(this.attempt);
  }
}

/** The job and context a handler receives for `attempt`; `extend` extends a lease on demand. @internal */
export function jobOf<T>(
  attempt: Attempt,
  queue: string,
  payload: T,
  extend: (attempt: Attempt) => Promise<void>,
  progress: (attempt: Attempt, value: unknown) => Promise<void> = () => Promise.resolve(),
): { job: Job<T>; ctx: JobContext } {
  const item = attempt.item;
  const job: Job<T> = {
    id: item.id,
    queue,
    payload,
    key: item.key,
    attempt: item.attempts,
    maxAttempts: item.maxAttempts,
    priority: item.priority,
    createdAt: item.createdAt,
    runAt: item.runAt,
    timeoutMs: item.timeoutMs ?? null,
    lastError: item.lastError,
    progress: (value: unknown) => progress(attempt, value),
  };
  return { job, ctx: new AttemptContext(attempt, extend) };
}

/**
 * The per-attempt timeout of one worker: ONE timer, armed for the earliest deadline of the
 * running attempts; when it fires, every attempt past its deadline goes to `onTimeout` and the
 * timer re-arms for the next deadline. @internal
 */
export class AttemptTimeouts {
  private timer: { ref(): unknown; unref(): unknown } | null = null;
  /** When the armed timer fires (the clock's `now()`). */
  private armedFor = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: {
      now(): number;
      setTimeout(cb: () => void, ms: number): { ref(): unknown; unref(): unknown };
      clearTimeout(h: { ref(): unknown; unref(): unknown }): void;
    },
    private readonly running: () => Iterable<Attempt>,
    private readonly onTimeout: (attempt: Attempt) => void,
  ) {}

  /** The attempt's own timeout (set at enqueue) or the queue's. */
  private limitOf(attempt: Attempt): number {
    return attempt.item.timeoutMs ?? this.timeoutMs;
  }

  /** Call when an attempt starts (re-arms when its deadline is the earliest). */
  started(attempt?: Attempt): void {
    const ms = attempt === undefined ? this.timeoutMs : this.limitOf(attempt);
    if (this.closed || ms === Number.POSITIVE_INFINITY) return;
    const due = (attempt?.startedAt ?? this.clock.now()) + ms;
    if (this.timer !== null && due >= this.armedFor) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.arm(Math.max(1, due - this.clock.now()));
  }

  private arm(ms: number): void {
    this.armedFor = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.armedFor = Number.POSITIVE_INFINITY;
      const now = this.clock.now();
      let next = Number.POSITIVE_INFINITY;
      for (const attempt of [...this.running()]) {
        const due = attempt.startedAt + this.limitOf(attempt);
        if (due <= now) this.onTimeout(attempt);
        else next = Math.min(next, due);
      }
      if (next !== Number.POSITIVE_INFINITY && !this.closed) this.arm(Math.max(1, next - now));
    }, ms);
    this.timer.unref();
  }

  /** Stops the timer for good. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * Returns claimed items to pending: uncounted (`store.release`) when `uncounted` and the store
 * can, else as a failed attempt retried now (recorded as `RELEASED`). @internal
 */
export function releaseAttempts(
  store: QueueStore,
  queue: string,
  refs: readonly LeaseRef[],
  uncounted: boolean,
  message: string,
  now: number,
): Promise<boolean[]> {
  if (uncounted && store.release !== undefined) return store.release(queue, refs, now);
  const error = JSON.stringify({ message, code: 'RELEASED' });
  return Promise.all(refs.map((ref) => store.fail(queue, ref, { kind: 'retry', runAt: now, error }, now)));
}
