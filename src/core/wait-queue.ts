/**
 * The one waiting queue of the policies that make calls wait for room (bulkhead, adaptive
 * concurrency, rate limit): a FIFO of waiters that are their own list and deadline-queue nodes
 * (adding and removing allocate nothing beyond the waiter and its promise), each with an
 * optional deadline (one timer per distinct duration, see `deadline-queue.ts`) and an abort
 * watcher that needs no AbortController. The owner decides when a waiter is admitted
 * (`admit`) and what a waiter that times out is rejected with. @internal
 */

import type { ExecutionContext } from './context.js';
import type { DeadlineNode, DeadlineQueue, DeadlineQueues } from './deadline-queue.js';

/** One call waiting in a `WaitQueue`. @internal */
export class Waiter implements DeadlineNode<Waiter> {
  _dlPrev: Waiter | null = null;
  _dlNext: Waiter | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  prev: Waiter | null = null;
  next: Waiter | null = null;
  onAbort: (() => void) | null = null;
  /** The deadline queue this waiter is in, if it has a timeout. */
  timeoutQueue: DeadlineQueue<Waiter> | null = null;
  constructor(
    readonly queue: WaitQueue,
    readonly ctx: ExecutionContext,
    /** What the owner needs to admit it: a per-call limit (bulkhead), a cost (rate limit). */
    readonly weight: number,
    /** The owner's own deadline (a rate limit's maxWaitMs), in its clock's ms. */
    readonly deadline: number,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

/**
 * A FIFO of waiting calls. @internal
 *
 * @example
 * ```ts nocheck
 * const timers = new DeadlineQueues<Waiter>(clock, (w) => w.queue.expire(w, () => new Error('waited too long')));
 * const queue = new WaitQueue(timers);
 * await queue.wait(ctx, 1, 0, 1_000); // until queue.admit(queue.head!)
 * ```
 */
export class WaitQueue {
  head: Waiter | null = null;
  tail: Waiter | null = null;
  /** Calls waiting now. */
  size = 0;

  /**
   * @param timers the owner's deadline queues, for waiters with a timeout (they call `expire`).
   * @param onCancel called after a waiter left because its caller aborted (e.g. to re-arm a timer).
   * @param key what the owner keys this queue by (a rate limit's key).
   */
  constructor(
    private readonly timers: DeadlineQueues<Waiter> | null,
    private readonly onCancel: ((w: Waiter, wasHead: boolean) => void) | null = null,
    readonly key = '',
  ) {}

  /**
   * Queues a call: the promise resolves when the owner `admit`s it, and rejects with the
   * caller's abort reason or with what `expire` is given after `timeoutMs`.
   */
  wait(ctx: ExecutionContext, weight: number, deadline: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w = new Waiter(this, ctx, weight, deadline, resolve, reject);
      w.prev = this.tail;
      if (this.tail === null) this.head = w;
      else this.tail.next = w;
      this.tail = w;
      this.size++;
      if (timeoutMs !== Number.POSITIVE_INFINITY && this.timers !== null) {
        // Kept on the waiter: past the bound on distinct durations `for()` makes a new queue each time.
        const q = this.timers.for(timeoutMs);
        w.timeoutQueue = q;
        q.add(w);
      }
      if (ctx._canAbort) {
        // Watched without an AbortController (ctx.signal is made only when the function reads it).
        const onAbort = () => {
          const wasHead = this.head === w;
          this.remove(w);
          reject(ctx._abortReason);
          this.onCancel?.(w, wasHead);
        };
        w.onAbort = onAbort;
        ctx._watch(onAbort);
      }
    });
  }

  /** Removes `w` and resolves its promise (the owner has taken room for it). */
  admit(w: Waiter): void {
    this.remove(w);
    w.resolve();
  }

  /** Removes `w` and rejects its promise with what `error()` makes (once `w` is out of the queue). */
  expire(w: Waiter, error: () => unknown): void {
    this.remove(w);
    w.reject(error());
  }

  // Deliberate repetition: unlinking from an intrusive list, kept inline per list: one shared helper over
  // different node classes would make these hot-path property accesses polymorphic.
  /** Removes a waiter from the queue, its deadline and its abort watcher. */
  remove(w: Waiter): void {
    const prev = w.prev;
    const next = w.next;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    w.prev = null;
    w.next = null;
    this.size--;
    if (w.timeoutQueue !== null) {
      w.timeoutQueue.remove(w);
      w.timeoutQueue = null;
    }
    if (w.onAbort !== null) {
      w.ctx._unwatch(w.onAbort);
      w.onAbort = null;
    }
  }
}
