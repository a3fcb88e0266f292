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

import type { Clock, TimerHandle } from './clock.js';

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

  constructor(
    private readonly clock: Clock,
    readonly ms: number,
    private readonly onExpire: (node: N) => void,
  ) {}

  /** True when nothing is queued. */
  get empty(): boolean {
    return this.head === null;
  }

  /** Queues `node` to expire `ms` from now. */
  add(node: N): void {
    node._dlDeadline = this.clock.now() + this.ms;
    node._dlQueued = true;
    node._dlNext = null;
    node._dlPrev = this.tail;
    if (this.tail === null) this.head = node;
    else this.tail._dlNext = node;
    this.tail = node;
    if (this.timer === null) {
      this.timer = this.clock.setTimeout(this.fire, this.ms);
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
    const prev = node._dlPrev;
    const next = node._dlNext;
    if (prev === null) this.head = next;
    else prev._dlNext = next;
    if (next === null) this.tail = prev;
    else next._dlPrev = prev;
    node._dlPrev = null;
    node._dlNext = null;
    if (this.head === null && this.refed && this.timer !== null) {
      this.timer.unref();
      this.refed = false;
    }
  }

  private onTimer(): void {
    this.timer = null;
    this.refed = false;
    const now = this.clock.now();
    let node = this.head;
    // Expire every node whose deadline has passed.
    while (node !== null && node._dlDeadline <= now) {
      const next: N | null = node._dlNext;
      this.remove(node);
      this.onExpire(node);
      node = next === null || !next._dlQueued ? this.head : next;
    }
    const head = this.head;
    if (head !== null && this.timer === null) {
      this.timer = this.clock.setTimeout(this.fire, Math.max(1, Math.ceil(head._dlDeadline - now)));
      this.refed = true;
    }
  }
}

/**
 * Deadline queues keyed by duration (a per-call duration usually takes few values, e.g. one
 * per priority). Bounded: past `max` distinct durations, a one-off queue is made per call.
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
      q = new DeadlineQueue<N>(this.clock, ms, this.onExpire);
      if (this.queues.size < this.max) this.queues.set(ms, q);
    }
    return q;
  }
}
