/**
 * Alert rules with Prometheus semantics, evaluated in process over the sink's samples:
 * an expression (a threshold on a metric, a rate or increase over a window, a ratio of two), a
 * `for` duration (pending until the condition has held that long, then firing), `keepFiringFor`
 * against flapping, severity, labels and templated annotations. States: inactive → pending →
 * firing → resolved (notified once) → inactive. One alert instance per matching series.
 */

import { z } from 'zod';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { type Disposer, makeDisposer, reportError } from '../core/events.js';
import type { Metrics, NamedSample } from './sink.js';
import { parseOptions } from './validate.js';

/** Comparison of an expression's value with its threshold. */
export type AlertOp = '>' | '>=' | '<' | '<=' | '==' | '!=';

/** A set of label matchers: every label must equal the value given. */
export type LabelMatch = Readonly<Record<string, string>>;

/** One value of a series: its labels and its value. */
export interface SeriesValue {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** What a `custom` expression gets: the samples now and a history for rates. */
export interface AlertContext {
  /** Evaluation time (the alert clock's `now()`). */
  readonly now: number;
  /** The samples read now. */
  readonly samples: readonly NamedSample[];
  /** Instant values of `metric` matching `match`. */
  select(metric: string, match?: LabelMatch): SeriesValue[];
  /** Increase of each matching counter over the last `windowMs` (resets handled). */
  increase(metric: string, windowMs: number, match?: LabelMatch): SeriesValue[];
  /** Per-second rate of each matching counter over the last `windowMs`. */
  rate(metric: string, windowMs: number, match?: LabelMatch): SeriesValue[];
  /** Change of each matching gauge over the last `windowMs` (last value − value at the start; may be negative). */
  delta(metric: string, windowMs: number, match?: LabelMatch): SeriesValue[];
}

/** A selector of one side of a ratio: instant values, or a rate/increase over `windowMs`. */
export interface Selector {
  readonly metric: string;
  readonly match?: LabelMatch;
  /** `value` (default) or `rate`/`increase` (counters) or `delta` (gauges) over `windowMs`. */
  readonly fn?: 'value' | 'rate' | 'increase' | 'delta';
  /** The window of `rate`/`increase`/`delta`, ms. Default 300 000 (5 min). */
  readonly windowMs?: number;
}

/**
 * An alert expression. Every series for which it holds is an active alert.
 *
 * @example
 * ```ts
 * import type { AlertExpr } from 'bulwark/metrics';
 * const failureRatio: AlertExpr = {
 *   kind: 'ratio',
 *   numerator: { metric: 'bulwark_calls_total', match: { outcome: 'failure' }, fn: 'rate', windowMs: 300_000 },
 *   denominator: { metric: 'bulwark_calls_total', fn: 'rate', windowMs: 300_000 },
 *   by: ['name'],
 *   op: '>',
 *   threshold: 0.05,
 * };
 * ```
 */
export type AlertExpr =
  /** `metric{match} op threshold`. */
  | {
      readonly kind: 'value';
      readonly metric: string;
      readonly match?: LabelMatch;
      readonly op: AlertOp;
      readonly threshold: number;
    }
  /** `rate(metric{match}[window]) op threshold` (per second). */
  | {
      readonly kind: 'rate';
      readonly metric: string;
      readonly match?: LabelMatch;
      readonly windowMs: number;
      readonly op: AlertOp;
      readonly threshold: number;
    }
  /** `increase(metric{match}[window]) op threshold` (a gauge's rises count too; falls are resets). */
  | {
      readonly kind: 'increase';
      readonly metric: string;
      readonly match?: LabelMatch;
      readonly windowMs: number;
      readonly op: AlertOp;
      readonly threshold: number;
    }
  /**
   * `delta(metric{match}[window]) op threshold`, for gauges (`bulwark_queue_jobs`, …): the last
   * value minus the value at the window's start. A fall is a fall, not a counter reset.
   */
  | {
      readonly kind: 'delta';
      readonly metric: string;
      readonly match?: LabelMatch;
      readonly windowMs: number;
      readonly op: AlertOp;
      readonly threshold: number;
    }
  /**
   * `sum by (by) (numerator) / sum by (by) (denominator) op threshold`; series with a zero
   * denominator are left out.
   */
  | {
      readonly kind: 'ratio';
      readonly numerator: Selector;
      readonly denominator: Selector;
      readonly by?: readonly string[];
      readonly op: AlertOp;
      readonly threshold: number;
    }
  /** Any computation: returns the series for which the condition holds (with their values). */
  | { readonly kind: 'custom'; evaluate(ctx: AlertContext): readonly SeriesValue[] };

/**
 * An alert rule.
 *
 * @example
 * ```ts
 * import type { AlertRule } from 'bulwark/metrics';
 * const rule: AlertRule = {
 *   name: 'HighRejections',
 *   expr: { kind: 'rate', metric: 'bulwark_calls_total', match: { outcome: 'rejected' }, windowMs: 300_000, op: '>', threshold: 1 },
 *   forMs: 120_000,
 *   severity: 'warning',
 *   annotations: { summary: '{{ $labels.name }} rejects {{ $value }} calls/s' },
 * };
 * ```
 */
export interface AlertRule {
  /** The alert name (`alertname`). */
  readonly name: string;
  readonly expr: AlertExpr;
  /** How long the condition must hold before the alert fires, ms. Default 0 (fires at once). */
  readonly forMs?: number;
  /**
   * How long a firing alert keeps firing after its condition stops holding, ms (Prometheus'
   * `keep_firing_for`: counted from the first evaluation where the condition no longer holds;
   * reset when it holds again). Default 0.
   */
  readonly keepFiringForMs?: number;
  /** `critical`, `warning`, `info` … Default `warning`. */
  readonly severity?: string;
  /** Extra labels of the alert. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Annotations, templated: `{{ $value }}` is the value, `{{ $labels.x }}` a label (the
   * series' labels and the rule's). E.g. `{ summary: 'Breaker {{ $labels.name }} open' }`.
   */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** States of an alert instance. `resolved` is reported once, then the alert is gone (inactive). */
export type AlertState = 'inactive' | 'pending' | 'firing' | 'resolved';

/** An alert instance (one per rule and series). */
export interface Alert {
  readonly rule: string;
  readonly state: AlertState;
  readonly severity: string;
  /** Series labels plus the rule's labels, `alertname` and `severity`. */
  readonly labels: Readonly<Record<string, string>>;
  /** Rendered annotations. */
  readonly annotations: Readonly<Record<string, string>>;
  /** The last value for which the condition held. */
  readonly value: number;
  /** When the condition started holding (clock ms). */
  readonly activeAt: number;
  /** When it started firing (clock ms), if it did. */
  readonly firedAt: number | undefined;
  /** When it resolved (clock ms), if it did. */
  readonly resolvedAt: number | undefined;
}

/** A state change of an alert instance. */
export interface AlertTransition {
  readonly from: AlertState;
  readonly to: AlertState;
  readonly alert: Alert;
  /** Evaluation time (clock ms). */
  readonly at: number;
}

/** What a notifier receives: firing and resolved transitions. */
export interface AlertNotification {
  readonly status: 'firing' | 'resolved';
  readonly alert: Alert;
  readonly at: number;
}

/**
 * Something that delivers notifications (log, webhook, …).
 *
 * @example
 * ```ts
 * import type { Notifier } from 'bulwark/metrics';
 * const console_: Notifier = { notify: (n) => console.log(n.status, n.alert.rule) };
 * ```
 */
export interface Notifier {
  notify(notification: AlertNotification): Promise<void> | void;
}

/** Options of `createAlerts()`. */
export interface AlertsOptions {
  /** The sink whose samples are evaluated. */
  metrics: Metrics;
  /** The rules. Default `defaultAlertRules()`. */
  rules?: readonly AlertRule[];
  /** Where firing and resolved notifications go. Default none. */
  notifiers?: readonly Notifier[];
  /** Evaluation interval for `start()`, ms. Default 15 000. */
  intervalMs?: number;
  /** Clock for evaluation times and the interval. Default the sink's clock. */
  clock?: Clock;
  /**
   * Sample history kept for rates, increases and deltas, ms, at least. The history always covers
   * the longest window of the rules (a ratio selector's default 300 000 included) and grows to
   * the longest window a `custom` rule asks `ctx.rate`/`ctx.increase`/`ctx.delta` for. Default
   * 3 600 000 (1 h) when a rule is `custom` (so its first windows have their baseline), else 0.
   */
  historyMs?: number;
}

const opSchema = z.enum(['>', '>=', '<', '<=', '==', '!=']);
const matchSchema = z.record(z.string(), z.string()).optional();
const selectorSchema = z
  .object({
    metric: z.string().min(1),
    match: matchSchema,
    fn: z.enum(['value', 'rate', 'increase', 'delta']).optional(),
    windowMs: z.number().positive().optional(),
  })
  .strict();
const exprSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('value'),
      metric: z.string().min(1),
      match: matchSchema,
      op: opSchema,
      threshold: z.number(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('rate'),
      metric: z.string().min(1),
      match: matchSchema,
      windowMs: z.number().positive(),
      op: opSchema,
      threshold: z.number(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('increase'),
      metric: z.string().min(1),
      match: matchSchema,
      windowMs: z.number().positive(),
      op: opSchema,
      threshold: z.number(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('delta'),
      metric: z.string().min(1),
      match: matchSchema,
      windowMs: z.number().positive(),
      op: opSchema,
      threshold: z.number(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('ratio'),
      numerator: selectorSchema,
      denominator: selectorSchema,
      by: z.array(z.string()).optional(),
      op: opSchema,
      threshold: z.number(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('custom'),
      evaluate: z.custom<(ctx: AlertContext) => readonly SeriesValue[]>(
        (f) => typeof f === 'function',
        'must be a function',
      ),
    })
    .strict(),
]);
const ruleSchema = z
  .object({
    name: z.string().min(1),
    expr: exprSchema,
    forMs: z.number().min(0).optional(),
    keepFiringForMs: z.number().min(0).optional(),
    severity: z.string().min(1).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .strict();
const optionsSchema = z
  .object({
    metrics: z.custom<Metrics>(
      (m) => typeof m === 'object' && m !== null && typeof (m as Metrics).samples === 'function',
      'must be a sink made by createMetrics()',
    ),
    rules: z.array(ruleSchema).optional(),
    notifiers: z
      .array(z.custom<Notifier>((n) => typeof (n as Notifier)?.notify === 'function', 'must have notify()'))
      .optional(),
    intervalMs: z.number().positive().optional(),
    clock: z.custom<Clock>((c) => typeof (c as Clock)?.now === 'function', 'must be a Clock').optional(),
    historyMs: z
      .number()
      .min(0)
      .max(7 * 86_400_000)
      .optional(),
  })
  .strict();

const compare = (op: AlertOp, a: number, b: number): boolean => {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
};

const matches = (labels: Readonly<Record<string, string>>, match: LabelMatch | undefined): boolean => {
  if (match === undefined) return true;
  for (const k in match) if (labels[k] !== match[k]) return false;
  return true;
};

const seriesKey = (name: string, labels: Readonly<Record<string, string>>): string =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;

/**
 * Renders `{{ $value }}` and `{{ $labels.name }}` in a template.
 *
 * @example
 * ```ts
 * import { renderTemplate } from 'bulwark/metrics';
 * console.log(renderTemplate('{{ $labels.name }} at {{ $value }}', { name: 'db' }, 0.5)); // db at 0.5
 * ```
 */
export function renderTemplate(
  template: string,
  labels: Readonly<Record<string, string>>,
  value: number,
): string {
  return template.replace(/\{\{\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}/g, (_m, what, label) =>
    what === 'value'
      ? String(Number.isInteger(value) ? value : Number(value.toPrecision(6)))
      : (labels[label] ?? ''),
  );
}

/** History of the samples (for rates and increases): per series, (time, value) points. */
class History {
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

/** The window of a ratio selector that has none. */
const DEFAULT_SELECTOR_WINDOW_MS = 300_000;

const selectorWindow = (s: Selector): number =>
  (s.fn ?? 'value') === 'value' ? 0 : (s.windowMs ?? DEFAULT_SELECTOR_WINDOW_MS);

const longestWindow = (e: AlertExpr): number => {
  switch (e.kind) {
    case 'rate':
    case 'increase':
    case 'delta':
      return e.windowMs;
    case 'ratio':
      return Math.max(selectorWindow(e.numerator), selectorWindow(e.denominator));
    default:
      return 0;
  }
};

interface Instance {
  state: AlertState;
  labels: Readonly<Record<string, string>>;
  value: number;
  activeAt: number;
  firedAt: number | undefined;
  /** When the condition stopped holding while firing (Prometheus' `KeepFiringSince`). */
  keepFiringSince: number | undefined;
  resolvedAt: number | undefined;
}

/**
 * Evaluates alert rules over a sink. Call `evaluate()` yourself (tests, a scheduler) or
 * `start()` to evaluate every `intervalMs` on the clock.
 *
 * @example
 * ```ts
 * import { createAlerts, createMetrics } from 'bulwark/metrics';
 * const alerts = createAlerts({ metrics: createMetrics() }).start();
 * // later
 * await alerts.stop();
 * ```
 */
export class AlertManager {
  readonly rules: readonly AlertRule[];
  readonly intervalMs: number;
  private readonly metrics: Metrics;
  private readonly notifiers: readonly Notifier[];
  private readonly clock: Clock;
  private readonly history = new History();
  private readonly instances = new Map<string, Map<string, Instance>>();
  private listeners: ((t: AlertTransition) => void)[] = [];
  private timer: TimerHandle | null = null;
  private running = false;
  /** Bumped by every `start()` and `stop()`: a tick of an older run never re-arms the timer. */
  private generation = 0;
  private pending: Promise<void> = Promise.resolve();
  private readonly deliveries = new Set<Promise<void>>();

  constructor(options: AlertsOptions) {
    const o = parseOptions('createAlerts', optionsSchema, options);
    this.metrics = o.metrics;
    this.rules = (o.rules as readonly AlertRule[] | undefined) ?? defaultAlertRules();
    const names = new Set<string>();
    for (const r of this.rules) {
      if (names.has(r.name))
        throw new TypeError(`createAlerts.rules: two rules are named ${r.name}; names must be unique`);
      names.add(r.name);
    }
    this.notifiers = o.notifiers ?? [];
    this.intervalMs = o.intervalMs ?? 15_000;
    this.clock = o.clock ?? o.metrics.clock ?? systemClock;
    const custom = this.rules.some((r) => r.expr.kind === 'custom');
    this.history.keepMs = Math.max(
      o.historyMs ?? (custom ? 3_600_000 : 0),
      ...this.rules.map((r) => longestWindow(r.expr)),
    );
    for (const r of this.rules) this.instances.set(r.name, new Map());
  }

  /** Subscribes to every state change (pending, firing, resolved, inactive). Returns a disposer. */
  onTransition(listener: (t: AlertTransition) => void): Disposer {
    this.listeners = [...this.listeners, listener];
    return makeDisposer(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  }

  /** The current alerts (pending and firing; resolved ones only during the evaluation that resolved them). */
  alerts(): Alert[] {
    const out: Alert[] = [];
    for (const r of this.rules)
      for (const i of this.instances.get(r.name)!.values()) out.push(this.view(r, i));
    return out;
  }

  /**
   * Evaluates every rule once, now: updates alert states, tells the transition listeners and
   * hands firing/resolved transitions to the notifiers without waiting for their delivery (a slow
   * webhook must not skew `for` timing; a notifier that fails is reported as a process warning;
   * `flush()` awaits deliveries in flight). Returns the transitions.
   */
  async evaluate(): Promise<AlertTransition[]> {
    const now = this.clock.now();
    const samples = await this.metrics.samples();
    this.history.record(now, samples);
    const ctx = this.context(now, samples);
    const transitions: AlertTransition[] = [];
    for (const rule of this.rules) {
      let active: readonly SeriesValue[];
      try {
        active = this.evalExpr(rule.expr, ctx);
      } catch (error) {
        reportError(`Alert rule ${rule.name}`, error);
        continue;
      }
      this.step(rule, active, now, transitions);
    }
    for (const t of transitions) {
      for (const l of this.listeners) {
        try {
          l(t);
        } catch (error) {
          reportError('An alert transition listener', error);
        }
      }
    }
    for (const t of transitions) {
      if (t.to !== 'firing' && t.to !== 'resolved') continue;
      const n: AlertNotification = { status: t.to, alert: t.alert, at: t.at };
      for (const notifier of this.notifiers) {
        const d = (async () => {
          try {
            await notifier.notify(n);
          } catch (error) {
            reportError(`An alert notifier (${t.alert.rule})`, error);
          }
        })();
        this.deliveries.add(d);
        void d.then(() => this.deliveries.delete(d));
      }
    }
    return transitions;
  }

  /**
   * Waits for the notifications in flight (handed to notifiers by `evaluate()`) to be delivered
   * or to fail.
   *
   * @example
   * ```ts
   * import { createAlerts, createMetrics } from 'bulwark/metrics';
   * const alerts = createAlerts({ metrics: createMetrics() });
   * await alerts.evaluate();
   * await alerts.flush();
   * ```
   */
  async flush(): Promise<void> {
    while (this.deliveries.size > 0) await Promise.all([...this.deliveries]);
  }

  /**
   * Evaluates now, then every `intervalMs` after the previous evaluation ended (the timer does
   * not keep the process alive).
   */
  start(): this {
    if (this.running) return this;
    this.running = true;
    const gen = ++this.generation;
    const tick = () => {
      this.timer = null;
      if (!this.running || gen !== this.generation) return;
      const run = this.pending.then(() =>
        this.evaluate().then(
          () => {},
          (error) => reportError('Alert evaluation', error),
        ),
      );
      this.pending = run;
      void run.then(() => {
        if (this.running && gen === this.generation && this.timer === null) {
          this.timer = this.clock.setTimeout(tick, this.intervalMs);
          this.timer.unref();
        }
      });
    };
    tick();
    return this;
  }

  /** Stops the interval; waits for an evaluation in progress and the notifications in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.generation++;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.pending;
    await this.flush();
  }

  private context(now: number, samples: readonly NamedSample[]): AlertContext {
    const history = this.history;
    return {
      now,
      samples,
      select: (metric, match) =>
        samples
          .filter((s) => s.name === metric && matches(s.labels, match))
          .map((s) => ({ labels: s.labels, value: s.value })),
      increase: (metric, windowMs, match) => {
        history.need(windowMs);
        return history
          .increase(metric, windowMs, now, match)
          .map((x) => ({ labels: x.labels, value: x.inc }));
      },
      rate: (metric, windowMs, match) => {
        history.need(windowMs);
        return history
          .increase(metric, windowMs, now, match)
          .map((x) => ({ labels: x.labels, value: x.spanS > 0 ? x.inc / x.spanS : 0 }));
      },
      delta: (metric, windowMs, match) => {
        history.need(windowMs);
        return history.delta(metric, windowMs, now, match);
      },
    };
  }

  private evalExpr(e: AlertExpr, ctx: AlertContext): readonly SeriesValue[] {
    switch (e.kind) {
      case 'value':
        return ctx.select(e.metric, e.match).filter((s) => compare(e.op, s.value, e.threshold));
      case 'rate':
        return ctx.rate(e.metric, e.windowMs, e.match).filter((s) => compare(e.op, s.value, e.threshold));
      case 'increase':
        return ctx.increase(e.metric, e.windowMs, e.match).filter((s) => compare(e.op, s.value, e.threshold));
      case 'delta':
        return ctx.delta(e.metric, e.windowMs, e.match).filter((s) => compare(e.op, s.value, e.threshold));
      case 'ratio': {
        const by = e.by ?? [];
        const side = (sel: Selector) => {
          const fn = sel.fn ?? 'value';
          const w = sel.windowMs ?? DEFAULT_SELECTOR_WINDOW_MS;
          const xs =
            fn === 'value'
              ? ctx.select(sel.metric, sel.match)
              : fn === 'rate'
                ? ctx.rate(sel.metric, w, sel.match)
                : fn === 'increase'
                  ? ctx.increase(sel.metric, w, sel.match)
                  : ctx.delta(sel.metric, w, sel.match);
          const sums = new Map<string, { labels: Record<string, string>; value: number }>();
          for (const x of xs) {
            const labels: Record<string, string> = {};
            for (const k of by) labels[k] = x.labels[k] ?? '';
            const k = seriesKey('', labels);
            const cur = sums.get(k);
            if (cur === undefined) sums.set(k, { labels, value: x.value });
            else cur.value += x.value;
          }
          return sums;
        };
        const num = side(e.numerator);
        const den = side(e.denominator);
        const out: SeriesValue[] = [];
        for (const [k, n] of num) {
          const d = den.get(k);
          if (d === undefined || d.value === 0) continue;
          const value = n.value / d.value;
          if (compare(e.op, value, e.threshold)) out.push({ labels: n.labels, value });
        }
        return out;
      }
      case 'custom':
        return e.evaluate(ctx);
    }
  }

  private step(rule: AlertRule, active: readonly SeriesValue[], now: number, out: AlertTransition[]): void {
    const instances = this.instances.get(rule.name)!;
    const forMs = rule.forMs ?? 0;
    const keepMs = rule.keepFiringForMs ?? 0;
    const seen = new Set<string>();
    const emit = (from: AlertState, to: AlertState, i: Instance) =>
      out.push({ from, to, alert: this.view(rule, i), at: now });
    for (const s of active) {
      const k = seriesKey('', s.labels);
      seen.add(k);
      let i = instances.get(k);
      if (i === undefined || i.state === 'resolved') {
        i = {
          state: forMs === 0 ? 'firing' : 'pending',
          labels: s.labels,
          value: s.value,
          activeAt: now,
          firedAt: undefined,
          keepFiringSince: undefined,
          resolvedAt: undefined,
        };
        if (forMs === 0) i.firedAt = now;
        instances.set(k, i);
        emit('inactive', i.state, i);
      }
      i.value = s.value;
      i.keepFiringSince = undefined;
      if (i.state === 'pending' && now - i.activeAt >= forMs) {
        i.state = 'firing';
        i.firedAt = now;
        emit('pending', 'firing', i);
      }
    }
    for (const [k, i] of instances) {
      if (seen.has(k)) continue;
      if (i.state === 'resolved') {
        // Reported once; now gone.
        instances.delete(k);
        continue;
      }
      if (i.state === 'pending') {
        instances.delete(k);
        emit('pending', 'inactive', { ...i, state: 'inactive' });
        continue;
      }
      // firing, condition no longer holds: keep firing for keepMs from the first such evaluation
      if (keepMs > 0) {
        if (i.keepFiringSince === undefined) i.keepFiringSince = now;
        if (now - i.keepFiringSince < keepMs) continue;
      }
      i.state = 'resolved';
      i.resolvedAt = now;
      emit('firing', 'resolved', i);
    }
  }

  private view(rule: AlertRule, i: Instance): Alert {
    const severity = rule.severity ?? 'warning';
    const labels = { ...i.labels, ...rule.labels, alertname: rule.name, severity };
    const annotations: Record<string, string> = {};
    for (const [k, t] of Object.entries(rule.annotations ?? {}))
      annotations[k] = renderTemplate(t, labels, i.value);
    return {
      rule: rule.name,
      state: i.state,
      severity,
      labels,
      annotations,
      value: i.value,
      activeAt: i.activeAt,
      firedAt: i.firedAt,
      resolvedAt: i.resolvedAt,
    };
  }
}

/**
 * Makes an alert manager over a sink.
 *
 * @example
 * ```ts
 * import { createFakeClock } from 'bulwark/testing';
 * import { createAlerts, createMetrics } from 'bulwark/metrics';
 * const clock = createFakeClock();
 * const metrics = createMetrics({ clock });
 * const alerts = createAlerts({ metrics, clock, rules: [
 *   { name: 'NotReady', expr: { kind: 'value', metric: 'bulwark_ready', op: '==', threshold: 0 }, forMs: 60_000 },
 * ] });
 * console.log(await alerts.evaluate()); // [] (no health monitor: no bulwark_ready sample)
 * ```
 */
export function createAlerts(options: AlertsOptions): AlertManager {
  return new AlertManager(options);
}

/** Options of `defaultAlertRules()`. */
export interface DefaultRulesOptions {
  /** How long a breaker must stay open, ms. Default 60 000. */
  breakerOpenForMs?: number;
  /** Window for dead-letter growth, ms. Default 600 000 (10 min). */
  deadLetterWindowMs?: number;
  /** Bulkhead use that alerts (active ÷ limit). Default 0.9. */
  bulkheadUse?: number;
  /** How long readiness must be false (outside a shutdown), ms. Default 60 000. */
  notReadyForMs?: number;
  /** How long a critical check must fail, ms. Default 0. */
  criticalCheckForMs?: number;
}

/**
 * The default rules: a breaker open longer than 1 min; a critical health check failing; a
 * dead-letter queue growing (dead count higher than 10 min ago); a bulkhead above 90 % of its
 * limit; readiness false outside a shutdown.
 *
 * @example
 * ```ts
 * import { defaultAlertRules } from 'bulwark/metrics';
 * console.log(defaultAlertRules().map((r) => r.name));
 * ```
 */
export function defaultAlertRules(options: DefaultRulesOptions = {}): AlertRule[] {
  return [
    {
      name: 'BulwarkCircuitOpen',
      expr: {
        kind: 'value',
        metric: 'bulwark_circuit_state',
        match: { state: 'open' },
        op: '==',
        threshold: 1,
      },
      forMs: options.breakerOpenForMs ?? 60_000,
      severity: 'warning',
      annotations: { summary: 'Circuit breaker {{ $labels.name }} has been open for over a minute' },
    },
    {
      name: 'BulwarkCriticalCheckFailing',
      expr: {
        kind: 'value',
        metric: 'bulwark_health_status',
        match: { critical: 'true' },
        op: '==',
        threshold: 0,
      },
      forMs: options.criticalCheckForMs ?? 0,
      severity: 'critical',
      annotations: { summary: 'Critical health check {{ $labels.check }} is failing' },
    },
    {
      name: 'BulwarkDeadLetterGrowing',
      // bulwark_queue_jobs is a gauge: a fall (dead jobs requeued or purged) is not a reset.
      expr: {
        kind: 'delta',
        metric: 'bulwark_queue_jobs',
        match: { state: 'dead' },
        windowMs: options.deadLetterWindowMs ?? 600_000,
        op: '>',
        threshold: 0,
      },
      severity: 'warning',
      annotations: {
        summary: 'Queue {{ $labels.queue }}: {{ $value }} more dead jobs in the last 10 minutes',
      },
    },
    {
      name: 'BulwarkBulkheadSaturated',
      expr: {
        kind: 'ratio',
        numerator: { metric: 'bulwark_bulkhead_active' },
        denominator: { metric: 'bulwark_bulkhead_limit' },
        by: ['name'],
        op: '>',
        threshold: options.bulkheadUse ?? 0.9,
      },
      severity: 'warning',
      annotations: { summary: 'Bulkhead {{ $labels.name }} is at {{ $value }} of its limit' },
    },
    {
      name: 'BulwarkNotReady',
      expr: {
        kind: 'custom',
        evaluate: (ctx) => {
          const shutting = ctx.select('bulwark_shutting_down').some((s) => s.value === 1);
          return shutting ? [] : ctx.select('bulwark_ready').filter((s) => s.value === 0);
        },
      },
      forMs: options.notReadyForMs ?? 60_000,
      severity: 'critical',
      annotations: { summary: 'The service has not been ready for over a minute (and is not shutting down)' },
    },
  ];
}
