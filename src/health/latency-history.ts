/**
 * The latencies of a check's last N runs, in a fixed ring buffer, with nearest-rank percentiles
 * computed only when asked (at snapshot or scrape time), never per run.
 */

/** p50/p90/p99 of a latency history, in ms. */
export interface LatencyPercentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/**
 * A fixed-size history of latencies (ms): adding is O(1) and allocates nothing.
 *
 * @example
 * ```ts
 * import { LatencyHistory } from 'bulwark/health';
 * const h = new LatencyHistory(100);
 * for (const ms of [5, 7, 9, 120]) h.add(ms);
 * console.log(h.percentiles()); // { p50: 7, p90: 120, p99: 120 }
 * ```
 */
export class LatencyHistory {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;
  /** `percentiles()` since the last `add`, or undefined. */
  private cached: LatencyPercentiles | null | undefined;

  /** Keeps the last `size` latencies. */
  constructor(size: number) {
    this.values = new Float64Array(Math.max(1, size));
  }

  /** Records one latency in ms. */
  add(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % this.values.length;
    if (this.filled < this.values.length) this.filled++;
    this.cached = undefined;
  }

  /** How many latencies are held. */
  get size(): number {
    return this.filled;
  }

  /** The most recent latency, or NaN when none. */
  get last(): number {
    if (this.filled === 0) return Number.NaN;
    return this.values[(this.next - 1 + this.values.length) % this.values.length]!;
  }

  /** Nearest-rank percentile `q` (0–1) of the held latencies, or NaN when none. */
  percentile(q: number): number {
    if (this.filled === 0) return Number.NaN;
    const sorted = this.values.slice(0, this.filled).sort();
    return rank(sorted, q);
  }

  /** p50, p90 and p99 (one sort, cached until the next `add`), or null when no latency is held yet. */
  percentiles(): LatencyPercentiles | null {
    if (this.cached !== undefined) return this.cached;
    if (this.filled === 0) return null;
    const sorted = this.values.slice(0, this.filled).sort();
    this.cached = Object.freeze({ p50: rank(sorted, 0.5), p90: rank(sorted, 0.9), p99: rank(sorted, 0.99) });
    return this.cached;
  }
}

function rank(sorted: Float64Array, q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
