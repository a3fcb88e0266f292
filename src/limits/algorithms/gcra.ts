/**
 * GCRA (generic cell rate algorithm), exactly as redis-cell computes it: emission interval
 * `T = period / rate`, tolerance `τ = T·(burst + 1)`; a call of `qty` units is admitted iff
 * `now >= max(tat, now) + T·qty − τ`. One number (the theoretical arrival time) per key.
 */

import type { RateAlgorithm } from './types.js';

/** Per-key state of GCRA: the theoretical arrival time. @internal */
export interface GcraState {
  tat: number;
}

/** @internal */
export class Gcra implements RateAlgorithm<GcraState> {
  readonly kind = 'gcra';
  readonly limit: number;
  readonly windowMs: number;
  /** Emission interval T. */
  readonly interval: number;
  /** Delay variation tolerance τ. */
  readonly tolerance: number;

  constructor(
    readonly rate: number,
    readonly periodMs: number,
    readonly burst: number,
  ) {
    this.interval = periodMs / rate;
    this.tolerance = this.interval * (burst + 1);
    this.limit = burst + 1;
    // The window over which `limit` calls fit: τ (so limit/window is the sustained rate, as the
    // RateLimit-Policy header's q/w must be).
    this.windowMs = this.tolerance;
  }

  create(now: number): GcraState {
    return { tat: now };
  }

  check(s: GcraState, now: number, cost: number): boolean {
    // tat' - now <= τ, computed from the (small) wait rather than the (large) times, so a fresh
    // key with burst 0 is never refused by rounding (now + T - T can exceed now).
    const wait = s.tat > now ? s.tat - now : 0;
    return wait + this.interval * cost <= this.tolerance;
  }

  commit(s: GcraState, now: number, cost: number): void {
    s.tat = (s.tat > now ? s.tat : now) + this.interval * cost;
  }

  remaining(s: GcraState, now: number): number {
    const ttl = s.tat > now ? s.tat - now : 0;
    const r = Math.floor((this.tolerance - ttl) / this.interval);
    return r > 0 ? r : 0;
  }

  retryAfter(s: GcraState, now: number, cost: number): number {
    const increment = this.interval * cost;
    if (increment > this.tolerance) return Number.POSITIVE_INFINITY;
    const d = (s.tat > now ? s.tat - now : 0) + increment - this.tolerance;
    return d > 0 ? d : 0;
  }

  reset(s: GcraState, now: number): number {
    return s.tat > now ? s.tat - now : 0;
  }

  idle(s: GcraState, now: number): boolean {
    return s.tat <= now;
  }
}
