/**
 * Concurrency-limit algorithms (after Netflix's concurrency-limits, see limits.md §2). Each
 * takes one sample — the round-trip time of a call, the calls in flight when it started and
 * whether it was dropped — and returns the new limit.
 */

import type { RandomSource } from '../core/clock.js';

/** One limit algorithm. */
export interface LimitAlgorithm {
  /** The current limit (an integer >= 1). */
  readonly limit: number;
  /** Feeds a sample; returns the new limit. */
  update(rttMs: number, inflight: number, didDrop: boolean, now: number): number;
  /** The bounds the limit moves within. */
  readonly bounds: { readonly minLimit: number; readonly maxLimit: number };
  /** Changes the bounds (min <= max, checked by the caller) and brings the limit within them. */
  setBounds(minLimit: number, maxLimit: number): void;
}

/** Options of AIMD (defaults from `AIMDLimit.java`). */
export interface AimdOptions {
  /** Default 20. */
  initialLimit?: number;
  /** Default 20. */
  minLimit?: number;
  /** Default 200. */
  maxLimit?: number;
  /** Multiplier on a drop, in [0.5, 1). Default 0.9. */
  backoffRatio?: number;
  /** An RTT above this (ms) counts as a drop. Default 5_000. */
  timeoutMs?: number;
}

/** AIMD: +1 when at least half the limit is in use; ×backoffRatio on a drop or a slow call. */
export class AimdLimit implements LimitAlgorithm {
  private value: number;
  private min: number;
  private max: number;
  private readonly ratio: number;
  private readonly timeout: number;
  constructor(o: Required<AimdOptions>) {
    this.value = o.initialLimit;
    this.min = o.minLimit;
    this.max = o.maxLimit;
    this.ratio = o.backoffRatio;
    this.timeout = o.timeoutMs;
  }
  get limit(): number {
    return this.value;
  }
  get bounds(): { minLimit: number; maxLimit: number } {
    return { minLimit: this.min, maxLimit: this.max };
  }
  setBounds(minLimit: number, maxLimit: number): void {
    this.min = minLimit;
    this.max = maxLimit;
    this.value = Math.min(maxLimit, Math.max(minLimit, this.value));
  }
  update(rttMs: number, inflight: number, didDrop: boolean): number {
    let v = this.value;
    if (didDrop || rttMs > this.timeout) v = Math.floor(v * this.ratio);
    else if (inflight * 2 >= v) v = v + 1;
    this.value = Math.min(this.max, Math.max(this.min, v));
    return this.value;
  }
}

/** Options of Gradient2 (defaults from `Gradient2Limit.java`). */
export interface Gradient2Options {
  /** Default 20. */
  initialLimit?: number;
  /** Default 20. */
  minLimit?: number;
  /** Default 200. */
  maxLimit?: number;
  /** Weight of a new estimate, in (0, 1]. Default 0.2. */
  smoothing?: number;
  /** Latency inflation tolerated before the limit shrinks (>= 1). Default 1.5. */
  rttTolerance?: number;
  /** Headroom added to the limit each update. Default 4. */
  queueSize?: number;
  /** Samples in the long-term RTT average. Default 600. */
  longWindow?: number;
}

/** Gradient2: compares a short RTT with a long exponential average of it. */
export class Gradient2Limit implements LimitAlgorithm {
  private estimated: number;
  private longRtt = 0;
  private longCount = 0;
  private readonly o: Required<Gradient2Options>;
  constructor(o: Required<Gradient2Options>) {
    this.o = { ...o };
    this.estimated = o.initialLimit;
  }
  get limit(): number {
    return Math.max(1, Math.floor(this.estimated));
  }
  get bounds(): { minLimit: number; maxLimit: number } {
    return { minLimit: this.o.minLimit, maxLimit: this.o.maxLimit };
  }
  setBounds(minLimit: number, maxLimit: number): void {
    this.o.minLimit = minLimit;
    this.o.maxLimit = maxLimit;
    this.estimated = Math.min(maxLimit, Math.max(minLimit, this.estimated));
  }
  /** The long-term RTT average. */
  get longRttMs(): number {
    return this.longRtt;
  }
  update(rttMs: number, inflight: number): number {
    // A sample of 0 ms (instant work, a fake clock) or a bad one says nothing about queueing,
    // and would make the ratios below 0/0 = NaN.
    if (!(rttMs > 0) || !Number.isFinite(rttMs)) return this.limit;
    const o = this.o;
    const shortRtt = rttMs;
    // Exponential average with factor 2/(window+1); the first 10 samples make a plain mean.
    if (this.longCount < 10) {
      this.longCount++;
      this.longRtt += (rttMs - this.longRtt) / this.longCount;
    } else {
      const f = 2 / (o.longWindow + 1);
      this.longRtt = this.longRtt * (1 - f) + rttMs * f;
    }
    const longRtt = this.longRtt;
    // A long RTT far above the short one (load went away): let it decay faster.
    if (longRtt / shortRtt > 2) this.longRtt = longRtt * 0.95;
    // App-limited: too little in flight to learn anything.
    if (inflight < this.estimated / 2) return this.limit;
    const gradient = Math.max(0.5, Math.min(1.0, (o.rttTolerance * longRtt) / shortRtt));
    let next = this.estimated * gradient + o.queueSize;
    next = this.estimated * (1 - o.smoothing) + next * o.smoothing;
    if (Number.isFinite(next)) this.estimated = Math.max(o.minLimit, Math.min(o.maxLimit, next));
    return this.limit;
  }
}

/** Options of Vegas (defaults from `VegasLimit.java`). */
export interface VegasOptions {
  /** Default 20. */
  initialLimit?: number;
  /** Default 1000. */
  maxLimit?: number;
  /** Weight of a new estimate, in (0, 1]. Default 1.0. */
  smoothing?: number;
  /** The no-load RTT is re-probed every U[0.5,1) × probeMultiplier × limit samples. Default 30. */
  probeMultiplier?: number;
}

/** max(1, ⌊log10 n⌋), Netflix's Log10RootFunction. */
function lg(n: number): number {
  return Math.max(1, Math.floor(Math.log10(n)));
}

/** Vegas: estimates the queue from the minimum (no-load) RTT. */
export class VegasLimit implements LimitAlgorithm {
  private estimated: number;
  private rttNoLoad = 0;
  private probeCount = 0;
  private probeJitter: number;
  private readonly o: Required<VegasOptions>;
  /** Vegas has no minimum of its own: 1 unless an operator sets one. */
  private min = 1;
  constructor(
    o: Required<VegasOptions>,
    private readonly random: RandomSource,
  ) {
    this.o = { ...o };
    this.estimated = o.initialLimit;
    this.probeJitter = 0.5 + random() * 0.5;
  }
  get limit(): number {
    return Math.max(1, Math.floor(this.estimated));
  }
  get bounds(): { minLimit: number; maxLimit: number } {
    return { minLimit: this.min, maxLimit: this.o.maxLimit };
  }
  setBounds(minLimit: number, maxLimit: number): void {
    this.min = minLimit;
    this.o.maxLimit = maxLimit;
    this.estimated = Math.min(maxLimit, Math.max(minLimit, this.estimated));
  }
  /** The no-load RTT estimate (ms), 0 before the first sample. */
  get rttNoLoadMs(): number {
    return this.rttNoLoad;
  }
  update(rttMs: number, inflight: number, didDrop: boolean): number {
    this.probeCount++;
    if (this.probeJitter * this.o.probeMultiplier * this.estimated <= this.probeCount) {
      this.probeJitter = 0.5 + this.random() * 0.5;
      this.probeCount = 0;
      this.rttNoLoad = rttMs;
      return this.limit;
    }
    if (this.rttNoLoad === 0 || rttMs < this.rttNoLoad) {
      this.rttNoLoad = rttMs;
      return this.limit;
    }
    const l = this.estimated;
    const queue = Math.ceil(l * (1 - this.rttNoLoad / rttMs));
    let next: number;
    if (didDrop) next = l - lg(l);
    else if (inflight * 2 < l) return this.limit;
    else {
      const t = lg(l);
      const alpha = 3 * t;
      const beta = 6 * t;
      if (queue <= t) next = l + beta;
      else if (queue < alpha) next = l + t;
      else if (queue > beta) next = l - t;
      else return this.limit;
    }
    next = Math.max(this.min, Math.min(this.o.maxLimit, next));
    this.estimated = (1 - this.o.smoothing) * l + this.o.smoothing * next;
    return this.limit;
  }
}

/** Options of the sampling window in front of an algorithm (Netflix's `WindowedLimit`). */
export interface WindowOptions {
  /** Shortest window, ms. Default 1_000. */
  minWindowMs?: number;
  /** Longest window, ms. Default 1_000. */
  maxWindowMs?: number;
  /** Samples a window needs before it updates the limit. Default 10. */
  minSamples?: number;
  /** RTTs below this (ms) are ignored. Default 0.1. */
  minRttThresholdMs?: number;
}

/**
 * Collects samples for a window (at least `minWindowMs` long and `minSamples` samples) and
 * feeds the algorithm once per window with the average RTT, the largest in-flight count seen
 * and whether any call was dropped.
 */
export class WindowedLimit implements LimitAlgorithm {
  private nextUpdate = 0;
  private sum = 0;
  private count = 0;
  private maxInflight = 0;
  private dropped = false;
  constructor(
    private readonly delegate: LimitAlgorithm,
    private readonly o: Required<WindowOptions>,
  ) {}
  get limit(): number {
    return this.delegate.limit;
  }
  get bounds(): { minLimit: number; maxLimit: number } {
    return this.delegate.bounds;
  }
  setBounds(minLimit: number, maxLimit: number): void {
    this.delegate.setBounds(minLimit, maxLimit);
  }
  update(rttMs: number, inflight: number, didDrop: boolean, now: number): number {
    if (rttMs < this.o.minRttThresholdMs) return this.delegate.limit;
    if (this.nextUpdate === 0) this.nextUpdate = now + this.o.minWindowMs;
    this.count++;
    this.sum += rttMs;
    if (inflight > this.maxInflight) this.maxInflight = inflight;
    if (didDrop) this.dropped = true;
    if (now < this.nextUpdate) return this.delegate.limit;
    // The window is over. As in Netflix's WindowedLimit, a window with too few samples is
    // discarded (under low traffic one window must not stretch over minutes).
    const avg = this.sum / this.count;
    const ready = this.count >= this.o.minSamples;
    const result = ready
      ? this.delegate.update(avg, this.maxInflight, this.dropped, now)
      : this.delegate.limit;
    this.nextUpdate = now + Math.min(this.o.maxWindowMs, Math.max(this.o.minWindowMs, avg * 2));
    this.sum = 0;
    this.count = 0;
    this.maxInflight = 0;
    this.dropped = false;
    return result;
  }
}
