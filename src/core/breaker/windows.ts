/**
 * The failure-counting strategies of a circuit breaker: consecutive failures, the last N
 * calls (count window) and a rolling time window in buckets. Each records outcomes in
 * O(1) without allocating, and says when the breaker should open.
 */

import type { WindowConfig } from './options.js';

/** Figures of a failure window. */
export interface WindowFigures {
  /** Calls counted (for `consecutive`: calls since the last failure streak began). */
  readonly calls: number;
  /** Failures counted (for `consecutive`: the current streak). */
  readonly failures: number;
  /** Slow calls counted. */
  readonly slow: number;
}

/** @internal */
export interface FailureWindow {
  readonly kind: WindowConfig['kind'];
  /** Slow-call duration in ms, or Infinity when slow calls are not tracked. */
  readonly slowMs: number;
  /** Records an outcome; returns why the breaker should open, or null. */
  record(failure: boolean, slow: boolean, now: number): string | null;
  /** Forgets everything. */
  reset(): void;
  figures(now: number): WindowFigures;
  save(now: number): unknown;
  restore(saved: unknown, now: number): void;
}

class ConsecutiveWindow implements FailureWindow {
  readonly kind = 'consecutive' as const;
  readonly slowMs = Number.POSITIVE_INFINITY;
  private streak = 0;
  constructor(private readonly threshold: number) {}
  record(failure: boolean): string | null {
    if (!failure) {
      this.streak = 0;
      return null;
    }
    return ++this.streak >= this.threshold ? `${this.streak} consecutive failures` : null;
  }
  reset(): void {
    this.streak = 0;
  }
  figures(): WindowFigures {
    return { calls: this.streak, failures: this.streak, slow: 0 };
  }
  save(): unknown {
    return { streak: this.streak };
  }
  restore(saved: unknown): void {
    const s = saved as { streak?: unknown } | null;
    if (typeof s?.streak === 'number' && s.streak >= 0) this.streak = Math.floor(s.streak);
  }
}

const FAIL = 1;
const SLOW = 2;

function rateReason(
  failures: number,
  slow: number,
  calls: number,
  failRate: number,
  slowRate: number,
): string | null {
  if (failures / calls >= failRate)
    return `failure rate ${pct(failures / calls)} >= ${pct(failRate)} over ${calls} calls`;
  if (slow / calls >= slowRate)
    return `slow-call rate ${pct(slow / calls)} >= ${pct(slowRate)} over ${calls} calls`;
  return null;
}

function pct(r: number): string {
  return `${Math.round(r * 1000) / 10}%`;
}

class CountWindow implements FailureWindow {
  readonly kind = 'count' as const;
  private readonly ring: Uint8Array;
  private next = 0;
  private filled = 0;
  private failures = 0;
  private slow = 0;
  constructor(
    private readonly size: number,
    private readonly minSamples: number,
    private readonly failRate: number,
    readonly slowMs: number,
    private readonly slowRate: number,
  ) {
    this.ring = new Uint8Array(size);
  }
  record(failure: boolean, slow: boolean): string | null {
    const i = this.next;
    if (this.filled === this.size) {
      const old = this.ring[i]!;
      if (old & FAIL) this.failures--;
      if (old & SLOW) this.slow--;
    } else {
      this.filled++;
    }
    const v = (failure ? FAIL : 0) | (slow ? SLOW : 0);
    this.ring[i] = v;
    if (failure) this.failures++;
    if (slow) this.slow++;
    this.next = i + 1 === this.size ? 0 : i + 1;
    if (this.filled < this.minSamples) return null;
    return rateReason(this.failures, this.slow, this.filled, this.failRate, this.slowRate);
  }
  reset(): void {
    this.ring.fill(0);
    this.next = 0;
    this.filled = 0;
    this.failures = 0;
    this.slow = 0;
  }
  figures(): WindowFigures {
    return { calls: this.filled, failures: this.failures, slow: this.slow };
  }
  save(): unknown {
    // Oldest first.
    const out: number[] = [];
    for (let k = 0; k < this.filled; k++) {
      const idx = (this.next - this.filled + k + this.size) % this.size;
      out.push(this.ring[idx]!);
    }
    return { calls: out };
  }
  restore(saved: unknown): void {
    const calls = (saved as { calls?: unknown } | null)?.calls;
    if (!Array.isArray(calls)) return;
    this.reset();
    for (const c of calls.slice(-this.size)) {
      if (typeof c === 'number') this.record((c & FAIL) !== 0, (c & SLOW) !== 0);
    }
  }
}

class TimeWindow implements FailureWindow {
  readonly kind = 'time' as const;
  private readonly bucketMs: number;
  private readonly calls: Float64Array;
  private readonly fails: Float64Array;
  private readonly slows: Float64Array;
  /** Bucket number (floor(now / bucketMs)) of the newest bucket. */
  private epoch = Number.NEGATIVE_INFINITY;
  private totalCalls = 0;
  private totalFails = 0;
  private totalSlow = 0;
  // Deliberate repetition: zeroed counter fields and a constructor taking its parameters, as in the
  // other windows and budgets: the same shape, other figures.
  constructor(
    windowMs: number,
    private readonly buckets: number,
    private readonly minSamples: number,
    private readonly failRate: number,
    readonly slowMs: number,
    private readonly slowRate: number,
  ) {
    this.bucketMs = windowMs / buckets;
    this.calls = new Float64Array(buckets);
    this.fails = new Float64Array(buckets);
    this.slows = new Float64Array(buckets);
  }
  /** Rolls the window forward to `now`, dropping buckets that left it. */
  private roll(now: number): number {
    const e = Math.floor(now / this.bucketMs);
    if (e <= this.epoch) return this.epoch;
    const stale = e - this.epoch >= this.buckets ? this.buckets : e - this.epoch;
    for (let k = 1; k <= stale; k++) {
      const i = (((e - stale + k) % this.buckets) + this.buckets) % this.buckets;
      this.totalCalls -= this.calls[i]!;
      this.totalFails -= this.fails[i]!;
      this.totalSlow -= this.slows[i]!;
      this.calls[i] = 0;
      this.fails[i] = 0;
      this.slows[i] = 0;
    }
    this.epoch = e;
    return e;
  }
  record(failure: boolean, slow: boolean, now: number): string | null {
    const e = this.roll(now);
    const i = ((e % this.buckets) + this.buckets) % this.buckets;
    this.calls[i]!++;
    this.totalCalls++;
    if (failure) {
      this.fails[i]!++;
      this.totalFails++;
    }
    if (slow) {
      this.slows[i]!++;
      this.totalSlow++;
    }
    if (this.totalCalls < this.minSamples) return null;
    return rateReason(this.totalFails, this.totalSlow, this.totalCalls, this.failRate, this.slowRate);
  }
  reset(): void {
    this.calls.fill(0);
    this.fails.fill(0);
    this.slows.fill(0);
    this.totalCalls = 0;
    this.totalFails = 0;
    this.totalSlow = 0;
    this.epoch = Number.NEGATIVE_INFINITY;
  }
  figures(now: number): WindowFigures {
    this.roll(now);
    return { calls: this.totalCalls, failures: this.totalFails, slow: this.totalSlow };
  }
  save(now: number): unknown {
    this.roll(now);
    // Each bucket as [age in buckets (0 = newest), calls, failures, slow].
    const out: [number, number, number, number][] = [];
    for (let age = 0; age < this.buckets; age++) {
      const i = (((this.epoch - age) % this.buckets) + this.buckets) % this.buckets;
      if (this.calls[i]! > 0) out.push([age, this.calls[i]!, this.fails[i]!, this.slows[i]!]);
    }
    return { bucketMs: this.bucketMs, buckets: out };
  }
  restore(saved: unknown, now: number): void {
    const s = saved as { bucketMs?: unknown; buckets?: unknown; ageMs?: unknown } | null;
    if (s?.bucketMs !== this.bucketMs || !Array.isArray(s.buckets)) return;
    this.reset();
    const shift =
      typeof s.ageMs === 'number' && Number.isFinite(s.ageMs) && s.ageMs > 0
        ? Math.floor(s.ageMs / this.bucketMs)
        : 0;
    const e = this.roll(now);
    for (const b of s.buckets as unknown[]) {
      // Skip anything a toJSON() could not have produced: a bad entry must not corrupt the totals.
      if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => Number.isInteger(x) && x >= 0)) continue;
      const [age, calls, fails, slow] = b as [number, number, number, number];
      if (fails > calls || slow > calls) continue;
      const at = age + shift;
      if (at >= this.buckets) continue;
      const i = (((e - at) % this.buckets) + this.buckets) % this.buckets;
      this.calls[i]! += calls;
      this.fails[i]! += fails;
      this.slows[i]! += slow;
      this.totalCalls += calls;
      this.totalFails += fails;
      this.totalSlow += slow;
    }
  }
}

/** Makes the window for validated settings (see `windowSchema`). @internal */
export function createWindow(config: WindowConfig): FailureWindow {
  if (config.kind === 'consecutive') return new ConsecutiveWindow(config.threshold);
  const c = config;
  if (c.kind === 'count')
    return new CountWindow(c.size, c.minSamples, c.failureRatio, c.slowCallMs, c.slowCallRatio);
  return new TimeWindow(c.windowMs, c.buckets, c.minSamples, c.failureRatio, c.slowCallMs, c.slowCallRatio);
}
