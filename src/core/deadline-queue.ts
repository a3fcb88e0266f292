/**
 * Deadlines without a timer per call.
 *
 * All entries of one queue share one duration, so their deadlines arrive in the order they
 * were added: the queue is a doubly-linked FIFO (the entries are their own nodes, so adding
 * and removing allocate nothing) with ONE timer armed for the head. When the queue empties,
 * the timer is not cleared but unref'd — it fires once more at most, finds nothing, and is
 * gone — so a steady stream of calls costs no setTimeout/clearTimeout pair per call, and an
 * idle queue never keeps the process alive.
 */

import { type Clock, MAX_TIMER_MS, type TimerHandle } from './clock.js';

/**
 * Stands in for the timer while it fires: a node added by an expiry callback then finds a
 * "timer" and arms nothing, so the timer re-armed after the loop is the one for the head
 * (otherwise it would be armed for the new node's full period, late for the nodes waiting).
 */
const FIRING: TimerHandle = { ref: () => FIRING, unref: () => FIRING };

/**
 * Node's longest timer (~24.8 days): a longer one fires after 1 ms instead. A timer is armed
 * for at most this long; when it fires before the head's deadline it is simply re-armed.
 */

/** An entry of a deadline queue: the fields live on the entry itself. @internal */
export interface DeadlineNode<N> {
  _dlPrev: N | null;
  _dlNext: N | null;
  _dlDeadline: number;
  _dlQueued: boolean;
}

/** @internal */
export class DeadlineQueue<N extends DeadlineNode<N>> {
  private head: N | null = null;
  private tail: N | null = null;
  private timer: TimerHandle | null = null;
  private refed = false;
  private readonly fire = () => this.onTimer();

  /**
   * @param shared false for a one-off queue (used by a single call and dropped): its timer is
   * cleared as soon as it empties, since no later call will reuse it.
   */
  constructor(
    private readonly clock: Clock,
    readonly ms: number,
    private readonly onExpire: (node: N) => void,
    private readonly shared = true,
  ) {}

  /** True when nothing is queued. */
  get empty(): boolean {
    return this.head === null;
  }

  /** Queues `node` to expire `ms` from now (`now`: the clock's time, when the caller has read it). */
  add(node: N, now: number = this.clock.now()): void {
    node._dlDeadline = now + this.ms;
    node._dlQueued = true;
    node._dlNext = null;
    node._dlPrev = this.tail;
    if (this.tail === null) this.head = node;
    else this.tail._dlNext = node;
    this.tail = node;
    if (this.timer === null) {
      this.timer = this.clock.setTimeout(this.fire, this.ms > MAX_TIMER_MS ? MAX_TIMER_MS : this.ms);
      this.refed = true;
    } else if (!this.refed) {
      this.timer.ref();
      this.refed = true;
    }
  }

  /** Removes `node` if it is still queued. */
  remove(node: N): void {
    if (!node._dlQueued) return;
    node._dlQueued = false;
    // Deliberate repetition: unlinking from an intrusive list, kept inline per list: one shared helper over
    // different node classes would make these hot-path property accesses polymorphic.
    const prev = node._dlPrev;
    const next = node._dlNext;
    if (prev === null) this.head = next;
    else prev._dlNext = next;
    if (next === null) this.tail = prev;
    else next._dlPrev = prev;
    node._dlPrev = null;
    node._dlNext = null;
    if (this.head === null && this.timer !== null) {
      if (!this.shared) {
        if (this.timer !== FIRING) {
          this.clock.clearTimeout(this.timer);
          this.timer = null;
          this.refed = false;
        }
      } else if (this.refed) {
        this.timer.unref();
        this.refed = false;
      }
    }
  }

  private onTimer(): void {
    this.timer = FIRING;
    this.refed = true;
    const now = this.clock.now();
    try {
      let node = this.head;
      // Expire every node whose deadline has passed.
      while (node !== null && node._dlDeadline <= now) {
        const next: N | null = node._dlNext;
        this.remove(node);
        this.onExpire(node);
        node = next === null || !next._dlQueued ? this.head : next;
      }
    } finally {
      // Re-armed even if a callback threw, so the nodes still waiting expire on time.
      this.timer = null;
      this.refed = false;
      const head = this.head;
      if (head !== null) {
        const delay = Math.max(1, Math.ceil(head._dlDeadline - now));
        this.timer = this.clock.setTimeout(this.fire, delay > MAX_TIMER_MS ? MAX_TIMER_MS : delay);
        this.refed = true;
      }
    }
  }
}

/**
 * Deadline queues keyed by duration (a per-call duration usually takes few values, e.g. one
 * per priority). Bounded: past `max` distinct durations, a one-off queue is made per call,
 * whose timer is cleared when the call ends.
 * @internal
 */
export class DeadlineQueues<N extends DeadlineNode<N>> {
  private readonly queues = new Map<number, DeadlineQueue<N>>();

  constructor(
    private readonly clock: Clock,
    private readonly onExpire: (node: N) => void,
    private readonly max = 64,
  ) {}

  /** The queue for duration `ms`. */
  for(ms: number): DeadlineQueue<N> {
    let q = this.queues.get(ms);
    if (q === undefined) {
      const shared = this.queues.size < this.max;
      q = new DeadlineQueue<N>(this.clock, ms, this.onExpire, shared);
      if (shared) this.queues.set(ms, q);
    }
    return q;
  }
}
