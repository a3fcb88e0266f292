// Figures derived from snapshots over time: calls/s, error %, a rolling window like Hystrix's.
import type { Snapshot } from './api';

export const HISTORY = 120;

export interface Series {
  /** Calls per second, newest last. */
  readonly rate: number[];
  /** Error % per sample, newest last. */
  readonly errors: number[];
  readonly times: number[];
  last: Snapshot | undefined;
  lastTime: number;
}

const CALLS = ['successes', 'failures', 'rejections', 'timeouts'] as const;
const BAD = ['failures', 'rejections', 'timeouts'] as const;

export function total(s: Snapshot, keys: readonly string[]): number {
  let n = 0;
  for (const k of keys) n += s.counters[k] ?? 0;
  return n;
}

export function keyOf(s: { kind: string; name: string }): string {
  return `${s.kind}/${s.name}`;
}

/** Adds one figures sample to a component's series. */
export function record(series: Series, s: Snapshot, time: number): void {
  if (series.last !== undefined) {
    const dt = Math.max(0.001, (time - series.lastTime) / 1000);
    const calls = total(s, CALLS) - total(series.last, CALLS);
    const bad = total(s, BAD) - total(series.last, BAD);
    series.rate.push(Math.max(0, calls / dt));
    series.errors.push(calls > 0 ? (100 * bad) / calls : 0);
    series.times.push(time / 1000);
    if (series.rate.length > HISTORY) {
      series.rate.shift();
      series.errors.shift();
      series.times.shift();
    }
  }
  series.last = s;
  series.lastTime = time;
}

export function newSeries(): Series {
  return { rate: [], errors: [], times: [], last: undefined, lastTime: 0 };
}

/** Error % over the last `n` samples (10 s by default), weighted by volume. */
export function errorPercent(series: Series, s: Snapshot, n = 10): number {
  const ratio = s.gauges.failureRatio;
  if (ratio !== undefined && Number.isFinite(ratio)) return ratio * 100;
  let calls = 0;
  let bad = 0;
  for (let i = Math.max(0, series.rate.length - n); i < series.rate.length; i++) {
    calls += series.rate[i]!;
    bad += (series.rate[i]! * series.errors[i]!) / 100;
  }
  return calls > 0 ? (100 * bad) / calls : 0;
}

export function volume(series: Series, n = 10): number {
  let calls = 0;
  const from = Math.max(0, series.rate.length - n);
  for (let i = from; i < series.rate.length; i++) calls += series.rate[i]!;
  return series.rate.length > from ? calls / (series.rate.length - from) : 0;
}

/** Hystrix's colour for an error %: green → yellow → orange → red at 10 / 25 / 40 / 50 %. */
export function errorColour(pct: number): string {
  if (pct >= 50) return 'var(--bad)';
  if (pct >= 40) return 'var(--orange)';
  if (pct >= 25) return 'var(--warn)';
  if (pct >= 10) return 'var(--yellow)';
  return 'var(--good)';
}

/** A quantile (0..1) of a bucketed histogram, in ms. */
export function quantileMs(h: { bounds: number[]; counts: number[]; count: number }, q: number): number {
  if (h.count === 0) return 0;
  const target = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= target) return 1000 * (h.bounds[i] ?? h.bounds[h.bounds.length - 1] ?? 0);
  }
  return 1000 * (h.bounds[h.bounds.length - 1] ?? 0);
}

const GOOD_STATES = new Set([
  'closed',
  'ok',
  'pass',
  'up',
  'normal',
  'idle',
  'running',
  'ready',
  'healthy',
  'inactive',
  'memory',
  'enabled',
]);
const BAD_STATES = new Set([
  'open',
  'forced-open',
  'isolated',
  'fail',
  'down',
  'offline',
  'firing',
  'critical-only',
  'dead',
]);

export function stateClass(state: string): 'good' | 'bad' | 'warn' {
  if (GOOD_STATES.has(state)) return 'good';
  if (BAD_STATES.has(state)) return 'bad';
  return 'warn';
}

/** A figure for display: integers as they are, others rounded; null (NaN or Infinity sent as JSON) as a dash. */
export function fmt(v: number | null | undefined, digits: number): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}
