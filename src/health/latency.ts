/**
 * The latency window of a health check: the one quantile sketch of Bulwark
 * (`QuantileSketch`, shared with the adaptive timeout), read for p50/p90/p99 only when asked.
 * This file is the only place `bulwark/health` imports it from.
 */

import type { Clock } from '../core/clock.js';
import { s } from '../core/schema.js';
import { QuantileSketch } from '../limits/quantile.js';
import { clockSchema } from './options.js';

/** p50/p90/p99 of a check's recent runs, in ms. */
export interface LatencyPercentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/**
 * The latencies of a check's runs over the last `windowMs` to 2 × `windowMs`, in fixed memory;
 * adding allocates nothing, percentiles are within ~4.4 % (a bucket's upper bound).
 *
 * @example
 * ```ts
 * import { LatencyWindow } from 'bulwark/health';
 * import { createFakeClock } from 'bulwark/testing';
 * const w = new LatencyWindow(60_000, createFakeClock());
 * for (const ms of [5, 7, 9, 120]) w.add(ms);
 * console.log(w.percentiles()); // ≈ { p50: 7, p90: 120, p99: 120 }
 * ```
 */
export class LatencyWindow {
  private readonly sketch: QuantileSketch;

  constructor(windowMs: number, clock: Clock) {
    s.duration({ positive: true, infinity: true }).parse(windowMs, 'LatencyWindow.windowMs');
    clockSchema.parse(clock, 'LatencyWindow.clock');
    this.sketch = new QuantileSketch(windowMs, clock);
  }

  /** Records one latency in ms. */
  add(ms: number): void {
    this.sketch.record(ms);
  }

  /** How many latencies the window holds. */
  get size(): number {
    return this.sketch.count;
  }

  /** p50, p90 and p99, or null when the window holds none. */
  percentiles(): LatencyPercentiles | null {
    if (this.sketch.count === 0) return null;
    return {
      p50: this.sketch.quantile(0.5),
      p90: this.sketch.quantile(0.9),
      p99: this.sketch.quantile(0.99),
    };
  }
}
