/**
 * A streaming quantile estimator with fixed memory: a log-scale histogram (buckets 2^(1/16)
 * apart, so a value is known within ~4.4 %) over a sliding window made of two halves: the
 * estimate covers the last `windowMs` to 2 × `windowMs` of samples and forgets older ones.
 */

import type { Clock } from '../core/clock.js';

/** Buckets per doubling. */
const PER_OCTAVE = 16;
/** Smallest value told apart, ms; values below fall in bucket 0. */
const MIN_VALUE = 0.01;
/** Doublings covered above MIN_VALUE (0.01 ms × 2^34 ≈ 48 hours). */
const OCTAVES = 34;
const BUCKETS = PER_OCTAVE * OCTAVES + 1;

function bucketOf(v: number): number {
  if (!(v > MIN_VALUE)) return 0;
  const b = Math.ceil(Math.log2(v / MIN_VALUE) * PER_OCTAVE);
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

/** The upper bound of a bucket (a quantile is never under-estimated by more than rounding). */
function upperOf(b: number): number {
  return MIN_VALUE * 2 ** (b / PER_OCTAVE);
}

/** A streaming quantile estimator. */
export class QuantileSketch {
  private current = new Float64Array(BUCKETS);
  private previous = new Float64Array(BUCKETS);
  private currentCount = 0;
  private previousCount = 0;
  private rotateAt: number;

  /**
   * @param windowMs how long a half-window lasts (Infinity: never forget).
   * @param clock the clock that times the window.
   */
  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {
    this.rotateAt = windowMs === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : clock.now() + windowMs;
  }

  private rotate(): void {
    const now = this.clock.now();
    if (now < this.rotateAt) return;
    if (now >= this.rotateAt + this.windowMs) {
      // idle for a whole window: everything is stale
      this.previous.fill(0);
      this.previousCount = 0;
    } else {
      const p = this.previous;
      this.previous = this.current;
      this.previousCount = this.currentCount;
      this.current = p;
    }
    this.current.fill(0);
    this.currentCount = 0;
    this.rotateAt = now + this.windowMs;
  }

  /** Records one value (ms). Negative and NaN values are ignored. */
  record(value: number): void {
    if (!(value >= 0)) return;
    this.rotate();
    this.current[bucketOf(value)]!++;
    this.currentCount++;
  }

  /** Samples in the window. */
  get count(): number {
    this.rotate();
    return this.currentCount + this.previousCount;
  }

  /** The q-quantile (0 < q <= 1) of the samples in the window, or NaN when there are none. */
  quantile(q: number): number {
    this.rotate();
    const total = this.currentCount + this.previousCount;
    if (total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.current[b]! + this.previous[b]!;
      if (seen >= rank) return upperOf(b);
    }
    return upperOf(BUCKETS - 1);
  }
}
