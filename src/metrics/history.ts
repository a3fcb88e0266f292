/**
 * The sample history of an alert manager: per series, (time, value) points kept as long as the
 * longest window of its rules, for rates, increases and deltas.
 */

import { type LabelMatch, matches, seriesKey } from './expressions.js';
import type { NamedSample } from './recorder.js';

/**
 * History of the samples (for rates and increases): per series, (time, value) points.
 * @internal
 */
export class History {
  private readonly series = new Map<
    string,
    { name: string; labels: Readonly<Record<string, string>>; t: number[]; v: number[] }
  >();
  keepMs = 0;

  /** Grows the retention to cover a window asked for (custom rules); bounded at 7 days. */
  need(windowMs: number): void {
    if (Number.isFinite(windowMs) && windowMs > this.keepMs) this.keepMs = Math.min(windowMs, 7 * 86_400_000);
  }

  record(now: number, samples: readonly NamedSample[]): void {
    for (const s of samples) {
      const k = seriesKey(s.name, s.labels);
      let h = this.series.get(k);
      if (h === undefined) {
        h = { name: s.name, labels: s.labels, t: [], v: [] };
        this.series.set(k, h);
      }
      h.t.push(now);
      h.v.push(s.value);
    }
    // Keep one point at or before the longest window's start, so a window has its baseline.
    const horizon = now - this.keepMs;
    for (const [k, h] of this.series) {
      let drop = 0;
      while (drop + 1 < h.t.length && h.t[drop + 1]! <= horizon) drop++;
      if (drop > 0) {
        h.t.splice(0, drop);
        h.v.splice(0, drop);
      }
      if (h.t[h.t.length - 1]! < horizon) this.series.delete(k); // gone from the samples
    }
  }

  /** Change (last − baseline) of each matching series over the window ending now. */
  delta(
    metric: string,
    windowMs: number,
    now: number,
    match: LabelMatch | undefined,
  ): { labels: Readonly<Record<string, string>>; value: number }[] {
    const out: { labels: Readonly<Record<string, string>>; value: number }[] = [];
    const start = now - windowMs;
    for (const h of this.series.values()) {
      if (h.name !== metric || !matches(h.labels, match)) continue;
      let i = 0;
      while (i + 1 < h.t.length && h.t[i + 1]! <= start) i++;
      if (h.t.length < 2 || i === h.t.length - 1) continue;
      out.push({ labels: h.labels, value: h.v[h.v.length - 1]! - h.v[i]! });
    }
    return out;
  }

  /** Increase of each matching series over the window ending now, and the seconds it spans. */
  increase(
    metric: string,
    windowMs: number,
    now: number,
    match: LabelMatch | undefined,
  ): { labels: Readonly<Record<string, string>>; inc: number; spanS: number }[] {
    const out: { labels: Readonly<Record<string, string>>; inc: number; spanS: number }[] = [];
    const start = now - windowMs;
    for (const h of this.series.values()) {
      if (h.name !== metric || !matches(h.labels, match)) continue;
      let i = 0; // the baseline: the last point at or before the window start, else the first
      while (i + 1 < h.t.length && h.t[i + 1]! <= start) i++;
      if (h.t.length < 2 || i === h.t.length - 1) continue;
      let inc = 0;
      for (let j = i + 1; j < h.t.length; j++) {
        const d = h.v[j]! - h.v[j - 1]!;
        inc += d >= 0 ? d : h.v[j]!; // a fall is a reset: count from zero
      }
      out.push({ labels: h.labels, inc, spanS: (h.t[h.t.length - 1]! - h.t[i]!) / 1000 });
    }
    return out;
  }
}
