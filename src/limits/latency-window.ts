/**
 * A sliding window of recent latencies and a percentile over it, recomputed lazily (every few
 * samples, or when old samples may have left the window) so that recording stays O(1).
 * @internal
 */
export class LatencyWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;
  private version = 0;
  private computedVersion = -1;
  private computedAt = Number.NEGATIVE_INFINITY;
  private cached = Number.NaN;
  private cachedP = Number.NaN;
  private readonly scratch: Float64Array;
  /** New samples that trigger a recomputation (a whole window, at least 8). */
  private readonly every: number;

  /**
   * @param size samples kept (the newest).
   * @param windowMs samples older than this are ignored (Infinity: keep the newest `size`).
   */
  constructor(
    readonly size: number,
    readonly windowMs: number = Number.POSITIVE_INFINITY,
  ) {
    this.every = Math.max(8, size);
    this.values = new Float64Array(size);
    this.scratch = new Float64Array(size);
    this.times = new Float64Array(size);
  }

  /** Records one latency observed at time `now`. */
  add(latencyMs: number, now: number): void {
    this.values[this.next] = latencyMs;
    this.times[this.next] = now;
    this.next = this.next + 1 === this.size ? 0 : this.next + 1;
    if (this.count < this.size) this.count++;
    this.version++;
  }

  /** Samples recorded so far (at most `size`), old ones included. */
  get samples(): number {
    return this.count;
  }

  /**
   * The `p` quantile (0 < p <= 1) of the samples in the window, or NaN when there are fewer
   * than `minSamples`. Recomputed (a sort of the window) only when needed: while it is still
   * NaN and samples arrived, when a whole window of new samples (at least 8) arrived, when new
   * samples are 100 ms old, when the window may have moved by a tenth of `windowMs`, or when
   * another quantile is asked for.
   */
  percentile(p: number, now: number, minSamples = 1): number {
    const fresh = this.version - this.computedVersion;
    const age = now - this.computedAt;
    if (
      p !== this.cachedP ||
      (fresh !== 0 && (fresh >= this.every || Number.isNaN(this.cached) || age >= 100)) ||
      (this.windowMs !== Number.POSITIVE_INFINITY && age >= this.windowMs / 10)
    ) {
      this.compute(p, now, minSamples);
    }
    return this.cached;
  }

  private compute(p: number, now: number, minSamples: number): void {
    const s = this.scratch;
    let k = 0;
    const oldest = now - this.windowMs;
    for (let i = 0; i < this.count; i++) {
      if (this.times[i]! >= oldest) s[k++] = this.values[i]!;
    }
    this.computedVersion = this.version;
    this.computedAt = now;
    this.cachedP = p;
    if (k === 0 || k < minSamples) {
      this.cached = Number.NaN;
      return;
    }
    const sorted = s.subarray(0, k).sort(); // numeric, native
    const idx = Math.min(k - 1, Math.max(0, Math.ceil(p * k) - 1));
    this.cached = sorted[idx]!;
  }
}
