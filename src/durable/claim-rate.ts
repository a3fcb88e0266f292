/**
 * A worker's `rateLimit`: a token bucket (core algorithm) that caps how many items the worker
 * claims per second.
 * @module
 */

import type { Clock } from '../core/clock.js';
import { TokenBucket } from '../limits/algorithms/token-bucket.js';

/** How many items a worker may claim now, and when to look again. @internal */
export class ClaimRate {
  private readonly bucket: TokenBucket;
  private readonly state: Float64Array;

  constructor(
    limit: { perSec: number; burst?: number },
    private readonly clock: Clock,
  ) {
    this.bucket = new TokenBucket(limit.burst ?? limit.perSec, limit.perSec);
    this.state = this.bucket.create(clock.now());
  }

  /** Whole tokens available now (0: wait `retryAfterMs()`). */
  available(): number {
    this.bucket.check(this.state, this.clock.now(), 1);
    return Math.floor(this.state[0]!);
  }

  /** How long until one token is available, in ms (at least 1). */
  retryAfterMs(): number {
    return Math.max(1, Math.ceil(this.bucket.retryAfter(this.state, this.clock.now(), 1)));
  }

  /** Spends `n` tokens for claimed items. */
  spend(n: number): void {
    if (n > 0) this.bucket.commit(this.state, this.clock.now(), n);
  }
}
