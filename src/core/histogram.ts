/**
 * A cumulative duration histogram with fixed bounds (in seconds): recording is a few compares
 * and two additions, reading copies two small arrays. Pipelines time every execution with it;
 * anything else that times calls (health checks, queues) may use it too.
 */

import type { HistogramSnapshot } from './component.js';

/** Prometheus' default buckets, in seconds (prom-client and the Go client use the same). */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * A histogram of durations. `observeMs` takes milliseconds (what clocks give) and records
 * seconds (what Prometheus and OpenTelemetry expect).
 *
 * @example
 * ```ts
 * import { Histogram } from 'bulwark';
 * const h = new Histogram();
 * h.observeMs(12);
 * h.snapshot(); // { bounds: [0.005, …], counts: [0, 0, 1, 0, …], sum: 0.012, count: 1 }
 * ```
 */
export class Histogram {
  readonly bounds: readonly number[];
  private readonly boundsMs: Float64Array;
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  /** @param bounds upper bounds in seconds, ascending (default: Prometheus' default buckets). */
  constructor(bounds: readonly number[] = DEFAULT_BUCKETS) {
    this.bounds = bounds;
    this.boundsMs = Float64Array.from(bounds, (b) => b * 1000);
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one duration given in milliseconds (negative and NaN durations count as 0). */
  observeMs(ms: number): void {
    const v = ms > 0 ? ms : 0;
    const b = this.boundsMs;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  /** The figures so far (`counts` per bucket, NOT cumulative; the last is +Inf). */
  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: Array.from(this.counts), sum: this.sum / 1000, count: this.count };
  }
}
