/**
 * The one latency window of Bulwark: a streaming quantile estimator with fixed memory, shared by
 * the hedge, the load shedder, the adaptive timeout and the health checks. A log-scale histogram
 * (buckets 2^(1/16) apart, so a value is known within ~4.4 %, never under-estimated) over a
 * sliding window made of two halves: the estimate covers the last `windowMs` to 2 × `windowMs`
 * of samples and forgets older ones. Recording is O(1) with no allocation; `cachedQuantile`
 * serves a hot path (a quantile read per call) from a cache refreshed as samples arrive.
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

  /** Cache of `cachedQuantile`: the quantile asked, its value, and when and at which count. */
  private cacheQ = Number.NaN;
  private cacheValue = Number.NaN;
  private cacheAt = Number.NEGATIVE_INFINITY;
  private cacheRecorded = -1;
  private cacheRotations = -1;
  /** Samples recorded and rotations done since creation (the cache's versions). */
  private recorded = 0;
  private rotations = 0;

  private rotate(now: number = this.clock.now()): void {
    if (now < this.rotateAt) return;
    this.rotations++;
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

  /**
   * Records one value (ms). Negative and NaN values are ignored. `now` saves a clock read when
   * the caller has just read the same clock.
   */
  record(value: number, now?: number): void {
    if (!(value >= 0)) return;
    this.rotate(now);
    this.current[bucketOf(value)]!++;
    this.currentCount++;
    this.recorded++;
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

  /**
   * The q-quantile for a hot path: NaN while the window holds fewer than `minSamples` samples,
   * else the value computed at most once per batch of new samples (an eighth of the window's
   * count, at least 8), and again when the window rotates, when new samples are 100 ms old, or
   * when another quantile is asked for.
   */
  cachedQuantile(q: number, minSamples: number, now: number = this.clock.now()): number {
    this.rotate(now);
    const total = this.currentCount + this.previousCount;
    if (total < minSamples || total === 0) return Number.NaN;
    const fresh = this.recorded - this.cacheRecorded;
    if (
      q !== this.cacheQ ||
      this.rotations !== this.cacheRotations ||
      (fresh !== 0 &&
        (fresh >= Math.max(8, total >>> 3) || Number.isNaN(this.cacheValue) || now - this.cacheAt >= 100))
    ) {
      this.cacheQ = q;
      this.cacheValue = this.quantile(q);
      this.cacheAt = now;
      this.cacheRecorded = this.recorded;
      this.cacheRotations = this.rotations;
    }
    return this.cacheValue;
  }
}
