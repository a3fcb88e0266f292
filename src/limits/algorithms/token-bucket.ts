/** Token bucket: up to `capacity` tokens, refilled continuously at `refillRate` tokens per second. */

import type { RateAlgorithm } from './types.js';

/** Per-key state of a token bucket: `[tokens, last refill time]`, both kept unboxed. @internal */
export type TokenBucketState = Float64Array;

/** @internal */
export class TokenBucket implements RateAlgorithm<TokenBucketState> {
  readonly kind = 'token-bucket';
  readonly limit: number;
  readonly windowMs: number;
  /** Tokens per ms. */
  private readonly perMs: number;

  constructor(
    readonly capacity: number,
    readonly refillRate: number,
  ) {
    this.limit = capacity;
    this.perMs = refillRate / 1000;
    this.windowMs = (capacity / refillRate) * 1000;
  }

  create(now: number): TokenBucketState {
    const s = new Float64Array(2);
    s[0] = this.capacity;
    s[1] = now;
    return s;
  }

  check(s: TokenBucketState, now: number, cost: number): boolean {
    const last = s[1]!;
    if (now > last) {
      const t = s[0]! + (now - last) * this.perMs;
      s[0] = t < this.capacity ? t : this.capacity;
      s[1] = now;
    }
    return s[0]! >= cost;
  }

  commit(s: TokenBucketState, _now: number, cost: number): void {
    s[0] = s[0]! - cost;
  }

  remaining(s: TokenBucketState): number {
    return Math.floor(s[0]!);
  }

  retryAfter(s: TokenBucketState, _now: number, cost: number): number {
    if (cost > this.capacity) return Number.POSITIVE_INFINITY;
    const tokens = s[0]!;
    if (tokens >= cost) return 0;
    // Nudged up by a hair: refilling is float arithmetic, and an answer like 34.9999999 ms (when
    // 35 are needed) would send a caller back a millisecond too early.
    const raw = (cost - tokens) / this.perMs;
    return raw + Math.max(1e-6, raw * 1e-9);
  }

  reset(s: TokenBucketState): number {
    return (this.capacity - s[0]!) / this.perMs;
  }

  idle(s: TokenBucketState, now: number): boolean {
    return s[0]! + (now - s[1]!) * this.perMs >= this.capacity;
  }
}
