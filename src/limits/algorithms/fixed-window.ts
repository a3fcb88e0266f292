/** Fixed window: at most `limit` units per window aligned on multiples of `windowMs` of the clock. */

import type { RateAlgorithm } from './types.js';

/** Per-key state of a fixed window. @internal */
export interface FixedWindowState {
  start: number;
  count: number;
}

/** @internal */
export class FixedWindow implements RateAlgorithm<FixedWindowState> {
  readonly kind = 'fixed-window';

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  private startOf(now: number): number {
    return Math.floor(now / this.windowMs) * this.windowMs;
  }

  create(now: number): FixedWindowState {
    return { start: this.startOf(now), count: 0 };
  }

  check(s: FixedWindowState, now: number, cost: number): boolean {
    if (now >= s.start + this.windowMs) {
      s.start = this.startOf(now);
      s.count = 0;
    }
    return s.count + cost <= this.limit;
  }

  commit(s: FixedWindowState, _now: number, cost: number): void {
    s.count += cost;
  }

  remaining(s: FixedWindowState): number {
    return Math.max(0, Math.floor(this.limit - s.count));
  }

  retryAfter(s: FixedWindowState, now: number, cost: number): number {
    if (cost > this.limit) return Number.POSITIVE_INFINITY;
    return s.count + cost <= this.limit ? 0 : s.start + this.windowMs - now;
  }

  reset(s: FixedWindowState, now: number): number {
    return s.count === 0 ? 0 : s.start + this.windowMs - now;
  }

  idle(s: FixedWindowState, now: number): boolean {
    return s.count === 0 || now >= s.start + this.windowMs;
  }
}
