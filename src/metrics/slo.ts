/**
 * Service level objectives over rolling windows, read from a component's snapshots: a
 * success-ratio objective from its counters (`successes` good; `failures`, `rejections`,
 * `timeouts` bad) and a latency objective from its duration histogram, with error budget
 * remaining and burn rates, and the multi-window, multi-burn-rate states of the Google SRE
 * workbook (`page` at 14.4× over 1 h and 5 min, `ticket` at 6× over 6 h and 30 min). An SLO is a
 * component itself (`slo`): its state is `ok`, `ticket` or `page`.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import {
  clockSchema,
  componentSchema,
  nameSchema,
  positiveMs,
  registrySchema,
} from '../core/common-schemas.js';
import type { Component, ComponentDescriptor, ComponentOperation, Snapshot } from '../core/component.js';
import { eventBase, type StateChange } from '../core/component-kit.js';
import { readDurations } from '../core/durations.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter, reportError } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';

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
    s.duration({ positive: true }).parse(bucketMs, 'RollingWindow.bucketMs');
    s.int({ min: 1, max: 10_000_000 }).parse(buckets, 'RollingWindow.buckets');
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
  /** The component measured: its kind and name. */
  readonly source: { readonly kind: string; readonly name: string };
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

/** One row of `SloTracker.burns()`. */
export interface BurnRow {
  readonly sli: 'success' | 'latency';
  readonly window: keyof typeof BURN_WINDOWS;
  /** Events in the window. */
  readonly events: number;
  readonly badRatio: number;
  readonly burnRate: number;
  /** Share of the SLO window's whole budget spent in this window (burn × window ÷ SLO window). */
  readonly budgetSpent: number;
  /** The burn rate at which this window's alert fires (14.4 for 5m and 1h, 6 for 30m and 6h). */
  readonly alertAt: number;
}

/** Options of `sloTracker()`. */
export interface SloOptions {
  /** The component measured (a pipeline, a policy: anything whose snapshot has the counters). */
  source: Component;
  /** Success-ratio objective in (0, 1), e.g. 0.999 (rejections, timeouts and failures are bad). */
  objective: number;
  /**
   * Latency objective: this share of the calls of the source's histogram (`histogram`) at or
   * under `thresholdMs` (e.g. 0.99 under 300). Counted with the histogram's buckets: the
   * threshold is rounded down to a bucket bound (give a bound for an exact count).
   */
  latency?: { thresholdMs: number; objective: number };
  /** The SLO window, ms. Default 30 days. */
  windowMs?: number;
  /** Bucket width, ms. Default 1 minute. */
  bucketMs?: number;
  /** How often the source is read, ms (also at each `status()` and `snapshot()`). Default 10 000. */
  intervalMs?: number;
  // Deliberate repetition: documented option fields (intervalMs, name, registry, clock) that every
  // component's options have, each with its own default and meaning.
  /** Counters of good events. Default `['successes']`. */
  good?: readonly string[];
  /** Counters of bad events. Default `['failures', 'rejections', 'timeouts']`. */
  bad?: readonly string[];
  /** The histogram of the latency SLI. Default `durationSeconds`. */
  histogram?: string;
  /** The SLO's name (as a component). Default the source's name. */
  name?: string;
  /** Where the SLO registers as a component. */
  registry?: Registry;
  clock?: Clock;
}

const schema = s.object({
  source: componentSchema,
  objective: s.number({ above: 0, max: 0.999999 }),
  latency: s.optional(
    s.object({
      thresholdMs: s.duration({ positive: true }),
      objective: s.number({ above: 0, max: 0.999999 }),
    }),
  ),
  windowMs: s.optional(s.int({ min: 1 })),
  bucketMs: s.optional(s.int({ min: 1 })),
  intervalMs: s.optional(positiveMs),
  good: s.optional(s.array(s.string(), { min: 1 })),
  bad: s.optional(s.array(s.string(), { min: 1 })),
  histogram: s.optional(s.string()),
  name: s.optional(nameSchema),
  registry: s.optional(registrySchema),
  clock: s.optional(clockSchema),
});

/** States of an SLO: `page` when it burns fast, `ticket` when steadily, else `ok`. */
export type SloState = 'ok' | 'ticket' | 'page';

/** Events of an SLO. */
export type SloEvent = EventBase & { readonly kind: 'slo' } & StateChange<SloState>;

declare module '../core/events.js' {
  interface PolicyEventMap {
    slo: SloEvent;
  }
}

const burnGauges = (prefix: string, what: string): Record<string, string> => {
  const out: Record<string, string> = {
    [`${prefix}ErrorBudgetRemaining`]: `Share of the ${what} error budget left over the SLO window (1 untouched, 0 spent, negative overspent).`,
  };
  for (const w of Object.keys(BURN_WINDOWS))
    out[`${prefix}BurnRate${w}`] = `Burn rate of the ${what} SLI over ${w} (bad ratio ÷ allowed bad ratio).`;
  return out;
};

/**
 * What an SLO reports as a component.
 *
 * @example
 * ```ts
 * import { SLO_DESCRIPTOR } from 'bulwark/metrics';
 * console.log(Object.keys(SLO_DESCRIPTOR.gauges).includes('successBurnRate1h')); // true
 * ```
 */
export const SLO_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'slo',
  help: 'A service level objective over a component: success ratio and latency, error budget and burn rates.',
  category: 'slo',
  states: ['ok', 'ticket', 'page'],
  gauges: {
    ...burnGauges('success', 'success'),
    ...burnGauges('latency', 'latency (1 and 0 without a latency objective)'),
  },
  counters: {
    goodEvents: 'Good events counted (successful calls) since the SLO was made.',
    badEvents: 'Bad events counted (failed, rejected, timed-out calls) since the SLO was made.',
  },
});

/**
 * Tracks one SLO over a component. Made by `sloTracker()`.
 *
 * @example
 * ```ts
 * import type { SloTracker } from 'bulwark/metrics';
 * const trackers: SloTracker[] = []; // made by sloTracker({ source, objective })
 * ```
 */
export class SloTracker {
  readonly kind = 'slo' as const;
  readonly name: string;
  readonly descriptor: ComponentDescriptor = SLO_DESCRIPTOR;
  readonly source: Component;
  readonly objective: number;
  readonly latency: { readonly thresholdMs: number; readonly objective: number } | undefined;
  readonly windowMs: number;
  /** Success counts. */
  readonly window: RollingWindow;
  /** Latency counts (`good` = at or under the threshold). */
  readonly latencyWindow: RollingWindow;
  private readonly clock: Clock;
  private readonly good: readonly string[];
  private readonly bad: readonly string[];
  private readonly histogram: string;
  private readonly emitter = new PolicyEmitter<SloEvent>();
  private last: { good: number; bad: number; fast: number; timed: number } | undefined;
  private totals = { goodEvents: 0, badEvents: 0 };
  private state: SloState = 'ok';
  private timer: TimerHandle | undefined;
  /** Ends this tracker's reading of the source's durations (a latency objective only). */
  private readonly stopReading: (() => void) | undefined;

  constructor(options: SloOptions) {
    const o = schema.parse(options, 'sloTracker');
    if (o.latency !== undefined && o.latency.thresholdMs <= 0)
      throw new ConfigError('sloTracker.latency.thresholdMs', 'a duration > 0', o.latency.thresholdMs);
    this.source = o.source;
    this.name = o.name ?? o.source.name;
    this.objective = o.objective;
    this.latency = o.latency;
    this.windowMs = o.windowMs ?? 30 * 86_400_000;
    this.clock = o.clock ?? systemClock;
    this.good = o.good ?? ['successes'];
    this.bad = o.bad ?? ['failures', 'rejections', 'timeouts'];
    this.histogram = o.histogram ?? 'durationSeconds';
    const bucketMs = o.bucketMs ?? 60_000;
    const buckets = Math.ceil(Math.max(this.windowMs, BURN_WINDOWS['6h']) / bucketMs);
    this.window = new RollingWindow(bucketMs, buckets);
    this.latencyWindow = new RollingWindow(bucketMs, buckets);
    // A latency objective reads the source's durations: a pipeline times every execution.
    this.stopReading = this.latency === undefined ? undefined : readDurations(this.source);
    this.refresh();
    const intervalMs = o.intervalMs ?? 10_000;
    const tick = () => {
      this.status();
      this.timer = this.clock.setTimeout(tick, intervalMs);
      this.timer.unref();
    };
    this.timer = this.clock.setTimeout(tick, intervalMs);
    this.timer.unref();
    joinRegistry(o.registry, this);
  }

  /** Subscribes to the SLO's state changes. */
  onEvent(listener: Listener<SloEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** Reads the source now and counts what happened since the last read. */
  refresh(): void {
    let snap: Snapshot;
    try {
      snap = this.source.snapshot();
    } catch (error) {
      reportError(`SLO ${this.name} reading ${this.source.kind} ${this.source.name}`, error);
      return;
    }
    const sum = (names: readonly string[]) => names.reduce((a, n) => a + (snap.counters[n] ?? 0), 0);
    const h = snap.histograms?.[this.histogram];
    let fast = 0;
    if (h !== undefined && this.latency !== undefined) {
      const limit = this.latency.thresholdMs / 1000;
      for (let i = 0; i < h.bounds.length && h.bounds[i]! <= limit * (1 + 1e-9); i++)
        fast += h.counts[i] ?? 0;
    }
    const now = { good: sum(this.good), bad: sum(this.bad), fast, timed: h?.count ?? 0 };
    const prev = this.last;
    this.last = now;
    if (prev === undefined) return;
    const d = (k: keyof typeof now) => Math.max(0, now[k] - prev[k]);
    const at = this.clock.now();
    if (d('good') > 0) this.window.add(at, true, false, d('good'));
    if (d('bad') > 0) this.window.add(at, false, false, d('bad'));
    this.totals = {
      goodEvents: this.totals.goodEvents + d('good'),
      badEvents: this.totals.badEvents + d('bad'),
    };
    const fastN = Math.min(d('fast'), d('timed'));
    if (fastN > 0) this.latencyWindow.add(at, true, false, fastN);
    if (d('timed') - fastN > 0) this.latencyWindow.add(at, false, false, d('timed') - fastN);
  }

  /** The SLO's status now (reads the source first). */
  status(): SloStatus {
    this.refresh();
    const now = this.clock.now();
    const sli = (w: RollingWindow, objective: number) => {
      const sums = {} as Record<keyof typeof BURN_WINDOWS, WindowCounts>;
      for (const [k, ms] of Object.entries(BURN_WINDOWS))
        sums[k as keyof typeof BURN_WINDOWS] = w.sum(ms, now);
      return sliStatus(objective, w.sum(this.windowMs, now), sums);
    };
    const success = sli(this.window, this.objective);
    const latency =
      this.latency === undefined
        ? undefined
        : { ...sli(this.latencyWindow, this.latency.objective), thresholdMs: this.latency.thresholdMs };
    const to: SloState =
      success.page || latency?.page === true
        ? 'page'
        : success.ticket || latency?.ticket === true
          ? 'ticket'
          : 'ok';
    const from = this.state;
    if (to !== from) {
      this.state = to;
      if (this.emitter.wants('stateChange'))
        this.emitter.emit({ ...eventBase('slo', this.name), event: 'stateChange', from, to });
    }
    return {
      name: this.name,
      source: { kind: this.source.kind, name: this.source.name },
      windowMs: this.windowMs,
      success,
      latency,
    };
  }

  /**
   * The burn over each window, one row per SLI and window: events, bad ratio, burn rate, the share
   * of the whole window's budget it spent, and the alerting threshold of that window (multiwindow
   * burn-rate alerts: page at 14.4 over 1 h and 5 min; ticket at 6 over 6 h and 30 min).
   */
  burns(): BurnRow[] {
    const st = this.status();
    const now = this.clock.now();
    const rows: BurnRow[] = [];
    const add = (sli: 'success' | 'latency', w: RollingWindow, x: SliStatus) => {
      for (const [window, ms] of Object.entries(BURN_WINDOWS) as [keyof typeof BURN_WINDOWS, number][]) {
        const sum = w.sum(ms, now);
        const burnRate = x.burnRates[window];
        rows.push({
          sli,
          window,
          events: sum.total,
          badRatio: sum.total === 0 ? 0 : (sum.total - sum.good) / sum.total,
          burnRate,
          budgetSpent: (burnRate * ms) / this.windowMs,
          alertAt: window === '5m' || window === '1h' ? PAGE_BURN_RATE : TICKET_BURN_RATE,
        });
      }
    };
    add('success', this.window, st.success);
    if (st.latency !== undefined) add('latency', this.latencyWindow, st.latency);
    return rows;
  }

  /** The control plane's views: `status` (budget left, page/ticket) and `burns` (per window). */
  operations(): readonly ComponentOperation[] {
    return [
      {
        name: 'status',
        type: 'view',
        summary: 'Error budget left and burn rates of each SLI, with page and ticket verdicts',
        input: s.object({}),
        run: () => this.status(),
      },
      {
        name: 'burns',
        type: 'view',
        summary: 'Burn rate per window (5m, 30m, 1h, 6h) and the share of the budget each spent',
        input: s.object({}),
        run: () => this.burns(),
      },
    ];
  }

  /** The SLO as a component: its state, budgets and burn rates. */
  snapshot(): Snapshot {
    const st = this.status();
    const gauges: Record<string, number> = {};
    const put = (prefix: string, x: SliStatus | undefined) => {
      gauges[`${prefix}ErrorBudgetRemaining`] = x?.errorBudgetRemaining ?? 1;
      for (const w of Object.keys(BURN_WINDOWS))
        gauges[`${prefix}BurnRate${w}`] = x?.burnRates[w as keyof typeof BURN_WINDOWS] ?? 0;
    };
    put('success', st.success);
    put('latency', st.latency);
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges,
      counters: { ...this.totals },
      details: {
        objective: this.objective,
        latency: this.latency,
        windowMs: this.windowMs,
        source: st.source,
      },
    };
  }

  /**
   * Stops reading the source on a timer and, for a latency objective, stops asking it to time
   * its executions (the counts stay readable).
   */
  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.stopReading?.();
  }
}

/**
 * Tracks an SLO over a component (a pipeline): success ratio from its counters and, optionally,
 * latency from its duration histogram, over a rolling window (30 days of 1-minute buckets by
 * default), with burn rates over 5 min, 30 min, 1 h and 6 h. With `registry`, the SLO is
 * exported like any component (`bulwark_slo_success_burn_rate1h{name}`, …) and the default alert
 * rules page on it.
 *
 * @example
 * ```ts
 * import { createRegistry, type Component } from 'bulwark';
 * import { sloTracker } from 'bulwark/metrics';
 * let successes = 0;
 * const source: Component = {
 *   kind: 'pipeline', name: 'checkout',
 *   descriptor: { kind: 'pipeline', help: 'calls', states: ['idle'], gauges: {}, counters: { successes: 'ok calls' } },
 *   snapshot: () => ({ kind: 'pipeline', name: 'checkout', state: 'idle', gauges: {}, counters: { successes, failures: 0 } }),
 *   onEvent: () => Object.assign(() => {}, { dispose() {}, [Symbol.dispose]() {} }),
 * };
 * const slo = sloTracker({ source, objective: 0.999, registry: createRegistry() });
 * successes += 10;
 * console.log(slo.status().success.ratio); // 1
 * slo.stop();
 * ```
 */
export function sloTracker(options: SloOptions): SloTracker {
  return new SloTracker(options);
}
