/**
 * Sliding-window log: the time and cost of every admitted call in the last `windowMs`; a call
 * is admitted iff the costs logged in `(now − W, now]` plus its own are <= `limit`. Exact in
 * any window of length W; memory O(limit) per key. Rejected calls are not logged.
 */

import type { RateAlgorithm } from './types.js';

/** Per-key state of a sliding log. @internal */
export interface SlidingLogState {
  times: number[];
  costs: number[];
  head: number;
  total: number;
}

/** @internal */
export class SlidingWindowLog implements RateAlgorithm<SlidingLogState> {
  readonly kind = 'sliding-window-log';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  create(): SlidingLogState {
    return { times: [], costs: [], head: 0, total: 0 };
  }

  private expire(s: SlidingLogState, now: number): void {
    const edge = now - this.windowMs;
    const { times, costs } = s;
    let h = s.head;
    while (h < times.length && times[h]! <= edge) {
      s.total -= costs[h]!;
      h++;
    }
    if (h === times.length) {
      times.length = 0;
      costs.length = 0;
      s.head = 0;
      s.total = 0;
    } else if (h > 32 && h * 2 > times.length) {
      times.splice(0, h);
      costs.splice(0, h);
      s.head = 0;
    } else s.head = h;
  }

  check(s: SlidingLogState, now: number, cost: number): boolean {
    this.expire(s, now);
    return s.total + cost <= this.limit;
  }

  commit(s: SlidingLogState, now: number, cost: number): void {
    if (cost === 0) return;
    s.times.push(now);
    s.costs.push(cost);
    s.total += cost;
  }

  remaining(s: SlidingLogState): number {
    return Math.max(0, Math.floor(this.limit - s.total));
  }

  retryAfter(s: SlidingLogState, now: number, cost: number): number {
    if (cost > this.limit) return Number.POSITIVE_INFINITY;
    let total = s.total;
    if (total + cost <= this.limit) return 0;
    for (let i = s.head; i < s.times.length; i++) {
      total -= s.costs[i]!;
      if (total + cost <= this.limit) return s.times[i]! + this.windowMs - now;
    }
    return 0;
  }

  reset(s: SlidingLogState, now: number): number {
    const n = s.times.length;
    return n === s.head ? 0 : s.times[n - 1]! + this.windowMs - now;
  }

  idle(s: SlidingLogState, now: number): boolean {
    const n = s.times.length;
    return n === s.head || s.times[n - 1]! <= now - this.windowMs;
  }
}
