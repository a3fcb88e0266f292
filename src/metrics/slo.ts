/**
 * Service level objectives over rolling windows: a success-ratio objective and a latency
 * objective per tracked policy name (and priority), error budget remaining and burn rates, with
 * the multi-window, multi-burn-rate alerts of the Google SRE workbook (page at 14.4× over 1 h and
 * 5 min, ticket at 6× over 6 h and 30 min).
 */

import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { type Disposer, reportError } from '../core/events.js';
import type { AlertRule, SeriesValue } from './alerts.js';
import type { CallObserver, CallOutcome, Metrics, Sample } from './sink.js';
import { parseOptions } from './validate.js';

/** Sums over a window. */
export interface WindowCounts {
  /** Calls. */
  readonly total: number;
  /** Successful calls. */
  readonly good: number;
  /** Successful calls under the latency threshold. */
  readonly fast: number;
}

/**
 * A ring of time buckets (`bucketMs` each, `buckets` of them) counting calls, successes and fast
 * successes. Adding and summing allocate nothing; a bucket is reset when the ring comes round to
 * it again. Events older than the ring (or than a newer bucket in the same slot) are dropped.
 *
 * @example
 * ```ts
 * import { RollingWindow } from 'bulwark/metrics';
 * const w = new RollingWindow(60_000, 60); // one hour of 1-minute buckets
 * w.add(1_000, true, true);
 * w.add(61_000, false, false);
 * console.log(w.sum(60 * 60_000, 61_000)); // { total: 2, good: 1, fast: 1 }
 * ```
 */
export class RollingWindow {
  private readonly index: Float64Array;
  private readonly total: Float64Array;
  private readonly good: Float64Array;
  private readonly fast: Float64Array;

  constructor(
    /** Width of a bucket, ms. */
    readonly bucketMs: number,
    /** Number of buckets (the longest window is `bucketMs × buckets`). */
    readonly buckets: number,
  ) {
    if (!(bucketMs > 0) || !Number.isInteger(buckets) || buckets < 1)
      throw new RangeError('RollingWindow needs bucketMs > 0 and an integer buckets >= 1');
    this.index = new Float64Array(buckets).fill(-1);
    this.total = new Float64Array(buckets);
    this.good = new Float64Array(buckets);
    this.fast = new Float64Array(buckets);
  }

  /** Counts one call that ended at `atMs`. */
  add(atMs: number, good: boolean, fast: boolean, n = 1): void {
    const idx = Math.floor(atMs / this.bucketMs);
    const slot = idx % this.buckets;
    const held = this.index[slot]!;
    if (held !== idx) {
      if (held > idx) return; // older than the bucket that now holds this slot
      this.index[slot] = idx;
      this.total[slot] = 0;
      this.good[slot] = 0;
      this.fast[slot] = 0;
    }
    this.total[slot]! += n;
    if (good) this.good[slot]! += n;
    if (fast) this.fast[slot]! += n;
  }

  /**
   * Sums the buckets of the last `windowMs` ending at `nowMs`: the bucket holding `nowMs` and the
   * `ceil(windowMs / bucketMs) - 1` before it (so a window is whole buckets; at most the ring).
   */
  sum(windowMs: number, nowMs: number): WindowCounts {
    const cur = Math.floor(nowMs / this.bucketMs);
    const k = Math.min(this.buckets, Math.max(1, Math.ceil(windowMs / this.bucketMs)));
    let total = 0;
    let good = 0;
    let fast = 0;
    for (let i = 0; i < k; i++) {
      const idx = cur - i;
      if (idx < 0) break;
      const slot = idx % this.buckets;
      if (this.index[slot] !== idx) continue;
      total += this.total[slot]!;
      good += this.good[slot]!;
      fast += this.fast[slot]!;
    }
    return { total, good, fast };
  }
}

/** The kind tracked under `name` (`pipeline` if one of them is, or none is). */
function trackedKind(metrics: Metrics, name: string): string {
  const kinds = new Set(
    metrics
      .allRecorders()
      .filter((r) => r.name === name)
      .map((r) => r.policy),
  );
  if (kinds.size === 0 || kinds.has('pipeline')) return 'pipeline';
  return kinds.size === 1 ? [...kinds][0]! : 'pipeline';
}

/** Options of `sloTracker()`. */
export interface SloOptions {
  /** The sink whose calls are measured. */
  metrics: Metrics;
  /** The `name` label of the tracked pipeline or policy (what `metrics.track(p, name)` used). */
  name: string;
  /**
   * The `policy` label. Default: the kind of the pipeline or policy tracked under `name` (when
   * one is tracked under that name before the SLO is made: `pipeline` when there are several),
   * else `pipeline`.
   */
  policy?: string;
  /** Only calls of this priority. Default: every priority. */
  priority?: string;
  /** Success-ratio objective, e.g. 0.999 (rejections, timeouts and failures are bad). */
  objective: number;
  /** Latency objective: this share of successful calls faster than `thresholdMs` (e.g. 0.99 under 300). */
  latency?: { thresholdMs: number; objective: number };
  /** The SLO window, ms. Default 30 days. */
  windowMs?: number;
  /** Bucket width, ms. Default 1 minute. */
  bucketMs?: number;
  /**
   * @deprecated Ignored: an SLO always reads the sink's clock (`metrics.clock`), which stamps
   * the calls it counts (another clock would read its burn rates over the wrong windows). A
   * clock other than the sink's is reported as a process warning.
   */
  clock?: Clock;
}

const schema = z
  .object({
    metrics: z.custom<Metrics>(
      (m) => typeof m === 'object' && m !== null && typeof (m as Metrics).recorder === 'function',
      'must be a sink made by createMetrics()',
    ),
    name: z.string().min(1),
    policy: z.string().min(1).optional(),
    priority: z.string().min(1).optional(),
    objective: z.number().gt(0).lt(1),
    latency: z
      .object({ thresholdMs: z.number().positive(), objective: z.number().gt(0).lt(1) })
      .strict()
      .optional(),
    windowMs: z.number().int().positive().optional(),
    bucketMs: z.number().int().positive().optional(),
    clock: z
      .custom<Clock>(
        (c) => typeof c === 'object' && c !== null && typeof (c as Clock).now === 'function',
        'must be a Clock',
      )
      .optional(),
  })
  .strict();

/**
 * The burn-rate windows reported, ms.
 *
 * @example
 * ```ts
 * import { BURN_WINDOWS } from 'bulwark/metrics';
 * console.log(BURN_WINDOWS['1h']); // 3600000
 * ```
 */
export const BURN_WINDOWS = { '5m': 300_000, '30m': 1_800_000, '1h': 3_600_000, '6h': 21_600_000 } as const;

/** Status of one SLI (success or latency) of an SLO. */
export interface SliStatus {
  /** The objective, e.g. 0.999. */
  readonly objective: number;
  /** Good events ÷ valid events over the SLO window (1 when there were none). */
  readonly ratio: number;
  /** Events counted over the SLO window. */
  readonly events: number;
  /** Share of the error budget left over the window: 1 untouched, 0 spent, negative overspent. */
  readonly errorBudgetRemaining: number;
  /** Burn rate (bad ratio ÷ allowed bad ratio) over 5 min, 30 min, 1 h and 6 h. */
  readonly burnRates: Readonly<Record<keyof typeof BURN_WINDOWS, number>>;
  /** Page: burn rate > 14.4 over both 1 h and 5 min. */
  readonly page: boolean;
  /** Ticket: burn rate > 6 over both 6 h and 30 min. */
  readonly ticket: boolean;
}

/** What `SloTracker.status()` returns. */
export interface SloStatus {
  readonly name: string;
  readonly policy: string;
  readonly priority: string | undefined;
  readonly windowMs: number;
  readonly success: SliStatus;
  readonly latency: (SliStatus & { readonly thresholdMs: number }) | undefined;
}

/**
 * Page threshold (2 % of a 30-day budget in 1 h).
 *
 * @example
 * ```ts
 * import { PAGE_BURN_RATE } from 'bulwark/metrics';
 * console.log(PAGE_BURN_RATE); // 14.4
 * ```
 */
export const PAGE_BURN_RATE = 14.4;
/**
 * Ticket threshold (5 % of a 30-day budget in 6 h).
 *
 * @example
 * ```ts
 * import { TICKET_BURN_RATE } from 'bulwark/metrics';
 * console.log(TICKET_BURN_RATE); // 6
 * ```
 */
export const TICKET_BURN_RATE = 6;

/**
 * Computes an SLI's status from window sums (pure; exported for tests and custom windows).
 *
 * @example
 * ```ts
 * import { sliStatus } from 'bulwark/metrics';
 * const w = { good: 990, total: 1_000 };
 * const s = sliStatus(0.99, w, { '5m': w, '30m': w, '1h': w, '6h': w });
 * console.log(s.errorBudgetRemaining, s.burnRates['1h']); // ≈ 0, ≈ 1
 * ```
 */
export function sliStatus(
  objective: number,
  window: { good: number; total: number },
  burns: Record<keyof typeof BURN_WINDOWS, { good: number; total: number }>,
): SliStatus {
  const allowed = 1 - objective;
  const badRatio = (w: { good: number; total: number }) => (w.total === 0 ? 0 : (w.total - w.good) / w.total);
  const burn = (w: { good: number; total: number }) => badRatio(w) / allowed;
  const burnRates = {
    '5m': burn(burns['5m']),
    '30m': burn(burns['30m']),
    '1h': burn(burns['1h']),
    '6h': burn(burns['6h']),
  };
  return {
    objective,
    ratio: window.total === 0 ? 1 : window.good / window.total,
    events: window.total,
    errorBudgetRemaining: 1 - badRatio(window) / allowed,
    burnRates,
    page: burnRates['1h'] > PAGE_BURN_RATE && burnRates['5m'] > PAGE_BURN_RATE,
    ticket: burnRates['6h'] > TICKET_BURN_RATE && burnRates['30m'] > TICKET_BURN_RATE,
  };
}

/**
 * Tracks one SLO. Made by `sloTracker()`; observes every call of the tracked policy (which makes
 * that policy time every call).
 *
 * @example
 * ```ts
 * import { createMetrics, sloTracker } from 'bulwark/metrics';
 * const slo = sloTracker({ metrics: createMetrics(), name: 'api', objective: 0.999 });
 * console.log(slo.status().success.errorBudgetRemaining); // 1
 * ```
 */
export class SloTracker implements CallObserver {
  readonly name: string;
  readonly policy: string;
  readonly priority: string | undefined;
  readonly objective: number;
  readonly latency: { readonly thresholdMs: number; readonly objective: number } | undefined;
  readonly windowMs: number;
  /** The rolling counts. */
  readonly window: RollingWindow;
  private readonly clock: Clock;
  private readonly dispose: Disposer;
  private readonly unregister: Disposer;

  constructor(options: SloOptions) {
    const o = parseOptions('sloTracker', schema, options);
    this.name = o.name;
    this.policy = o.policy ?? trackedKind(o.metrics, o.name);
    this.priority = o.priority;
    this.objective = o.objective;
    this.latency = o.latency;
    this.windowMs = o.windowMs ?? 30 * 86_400_000;
    const bucketMs = o.bucketMs ?? 60_000;
    const longest = Math.max(this.windowMs, BURN_WINDOWS['6h']);
    this.window = new RollingWindow(bucketMs, Math.ceil(longest / bucketMs));
    // Calls are stamped by the sink's clock (`atMs`): the windows must be read on the same one.
    this.clock = o.metrics.clock;
    if (o.clock !== undefined && o.clock !== o.metrics.clock)
      reportError(
        `sloTracker ${o.name}`,
        new Error('the clock option is ignored: an SLO reads the sink’s clock (createMetrics({ clock }))'),
      );
    this.dispose = o.metrics.recorder(this.policy, this.name).addObserver(this);
    this.unregister = o.metrics.addSlo(this);
  }

  /** @internal Called for every call of the tracked policy. */
  observe(outcome: CallOutcome, durationMs: number, priority: string, atMs: number): void {
    if (this.priority !== undefined && priority !== this.priority) return;
    const good = outcome === 'success';
    this.window.add(atMs, good, good && this.latency !== undefined && durationMs <= this.latency.thresholdMs);
  }

  /** The SLO's status now. */
  status(): SloStatus {
    const now = this.clock.now();
    const w = this.window.sum(this.windowMs, now);
    const sums = {
      '5m': this.window.sum(BURN_WINDOWS['5m'], now),
      '30m': this.window.sum(BURN_WINDOWS['30m'], now),
      '1h': this.window.sum(BURN_WINDOWS['1h'], now),
      '6h': this.window.sum(BURN_WINDOWS['6h'], now),
    };
    const success = sliStatus(this.objective, w, sums);
    let latency: SloStatus['latency'];
    if (this.latency !== undefined) {
      // Latency SLI: successful calls faster than the threshold ÷ successful calls.
      const lat = (x: WindowCounts) => ({ good: x.fast, total: x.good });
      latency = {
        ...sliStatus(this.latency.objective, lat(w), {
          '5m': lat(sums['5m']),
          '30m': lat(sums['30m']),
          '1h': lat(sums['1h']),
          '6h': lat(sums['6h']),
        }),
        thresholdMs: this.latency.thresholdMs,
      };
    }
    return {
      name: this.name,
      policy: this.policy,
      priority: this.priority,
      windowMs: this.windowMs,
      success,
      latency,
    };
  }

  /** Gauges for the sink: budget remaining and burn rates per SLI. @internal */
  samples(): { budget: Sample[]; burn: Sample[] } {
    const s = this.status();
    const budget: Sample[] = [];
    const burn: Sample[] = [];
    const base = { slo: this.name, policy: this.policy, priority: this.priority ?? 'all' };
    const add = (sli: string, st: SliStatus) => {
      budget.push({ labels: { ...base, sli }, value: st.errorBudgetRemaining });
      for (const [window, value] of Object.entries(st.burnRates))
        burn.push({ labels: { ...base, sli, window }, value });
    };
    add('success', s.success);
    if (s.latency !== undefined) add('latency', s.latency);
    return { budget, burn };
  }

  /** Stops observing (the counts stay readable). */
  stop(): void {
    this.dispose();
    this.unregister();
  }
}

/**
 * Tracks an SLO for a tracked pipeline or policy: success ratio and (optionally) latency, over a
 * rolling window (30 days of 1-minute buckets by default), with burn rates over 5 min, 30 min,
 * 1 h and 6 h. Exported as `bulwark_slo_error_budget_remaining` and `bulwark_slo_burn_rate`.
 *
 * @example
 * ```ts
 * import { pipeline, retry } from 'bulwark';
 * import { createMetrics, sloTracker } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const api = metrics.track(pipeline(retry()), 'checkout');
 * const slo = sloTracker({ metrics, name: 'checkout', objective: 0.999, latency: { thresholdMs: 300, objective: 0.99 } });
 * await api.execute(() => 'ok');
 * console.log(slo.status().success.ratio); // 1
 * ```
 */
export function sloTracker(options: SloOptions): SloTracker {
  return new SloTracker(options);
}

/**
 * Alert rules for an SLO's multi-window burn-rate alerts: `SloBurnRatePage` (critical: > 14.4
 * over 1 h and 5 min) and `SloBurnRateTicket` (warning: > 6 over 6 h and 30 min), one alert per
 * SLI (`sli="success"` / `"latency"`). Give them to `createAlerts({ rules: [...] })`; rule names get
 * the SLO's name appended.
 *
 * @example
 * ```ts
 * import { createAlerts, createMetrics, defaultAlertRules, sloAlertRules, sloTracker } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const slo = sloTracker({ metrics, name: 'checkout', objective: 0.999 });
 * const alerts = createAlerts({ metrics, rules: [...defaultAlertRules(), ...sloAlertRules(slo)] });
 * console.log(alerts.rules.length); // 7
 * ```
 */
export function sloAlertRules(slo: SloTracker): AlertRule[] {
  const fire = (which: 'page' | 'ticket') => (): SeriesValue[] => {
    const s = slo.status();
    const out: SeriesValue[] = [];
    const labels = { slo: slo.name, policy: slo.policy, priority: slo.priority ?? 'all' };
    if (s.success[which])
      out.push({ labels: { ...labels, sli: 'success' }, value: s.success.burnRates['1h'] });
    if (s.latency?.[which] === true)
      out.push({ labels: { ...labels, sli: 'latency' }, value: s.latency.burnRates['1h'] });
    return out;
  };
  return [
    {
      name: `SloBurnRatePage:${slo.name}`,
      expr: { kind: 'custom', evaluate: fire('page') },
      severity: 'critical',
      annotations: {
        summary: 'SLO {{ $labels.slo }} ({{ $labels.sli }}) burns its error budget at {{ $value }}× (1 h)',
      },
    },
    {
      name: `SloBurnRateTicket:${slo.name}`,
      expr: { kind: 'custom', evaluate: fire('ticket') },
      severity: 'warning',
      annotations: {
        summary: 'SLO {{ $labels.slo }} ({{ $labels.sli }}) burns its error budget at {{ $value }}× (1 h)',
      },
    },
  ];
}
