/**
 * Alert expressions with Prometheus semantics, evaluated in process over the samples of a
 * registry's components: a threshold on a metric, a rate, increase or delta over a window, a ratio
 * of two sums, or any computation (`custom`). Pure: the samples and their history come in an
 * `AlertContext`.
 */

import { stringMap } from '../core/common-schemas.js';
import { type Schema, s } from '../core/schema.js';
import type { NamedSample } from './recorder.js';

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

/** The fields of an expression over one metric in a window (`rate`, `increase`, `delta`). */
interface WindowedExpr<K extends string> {
  readonly kind: K;
  readonly metric: string;
  readonly match?: LabelMatch;
  readonly windowMs: number;
  readonly op: AlertOp;
  readonly threshold: number;
}

/**
 * An alert expression. Every series for which it holds is an active alert.
 *
 * @example
 * ```ts
 * import type { AlertExpr } from 'bulwark/metrics';
 * const failureRatio: AlertExpr = {
 *   kind: 'ratio',
 *   numerator: { metric: 'bulwark_pipeline_failures_total', fn: 'rate', windowMs: 300_000 },
 *   denominator: { metric: 'bulwark_pipeline_successes_total', fn: 'rate', windowMs: 300_000 },
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
  | WindowedExpr<'rate'>
  /** `increase(metric{match}[window]) op threshold` (a gauge's rises count too; falls are resets). */
  | WindowedExpr<'increase'>
  /**
   * `delta(metric{match}[window]) op threshold`, for gauges (`bulwark_durable_queue_dead`, …): the last
   * value minus the value at the window's start. A fall is a fall, not a counter reset.
   */
  | WindowedExpr<'delta'>
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

export const compare = (op: AlertOp, a: number, b: number): boolean => {
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

export const matches = (labels: Readonly<Record<string, string>>, match: LabelMatch | undefined): boolean => {
  if (match === undefined) return true;
  for (const k in match) if (labels[k] !== match[k]) return false;
  return true;
};

export const seriesKey = (name: string, labels: Readonly<Record<string, string>>): string =>
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

/** The window of a ratio selector that has none. */
export const DEFAULT_SELECTOR_WINDOW_MS = 300_000;

const selectorWindow = (s: Selector): number =>
  (s.fn ?? 'value') === 'value' ? 0 : (s.windowMs ?? DEFAULT_SELECTOR_WINDOW_MS);

export const longestWindow = (e: AlertExpr): number => {
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

/**
 * The series of `metric` that hold `e` now.
 * @internal
 */
export function evalExpr(e: AlertExpr, ctx: AlertContext): readonly SeriesValue[] {
  switch (e.kind) {
    case 'value':
      return ctx.select(e.metric, e.match).filter((x) => compare(e.op, x.value, e.threshold));
    case 'rate':
    case 'increase':
    case 'delta':
      return ctx[e.kind](e.metric, e.windowMs, e.match).filter((x) => compare(e.op, x.value, e.threshold));
    case 'ratio': {
      const num = sumBy(e.numerator, e.by ?? [], ctx);
      const den = sumBy(e.denominator, e.by ?? [], ctx);
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

/** One side of a ratio, summed by the `by` labels. */
function sumBy(
  sel: Selector,
  by: readonly string[],
  ctx: AlertContext,
): Map<string, { labels: Record<string, string>; value: number }> {
  const fn = sel.fn ?? 'value';
  const w = sel.windowMs ?? DEFAULT_SELECTOR_WINDOW_MS;
  const xs = fn === 'value' ? ctx.select(sel.metric, sel.match) : ctx[fn](sel.metric, w, sel.match);
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
}

const opSchema = s.oneOf(['>', '>=', '<', '<=', '==', '!='] as const);
const metricSchema = s.string({ pattern: /^[A-Za-z_:][A-Za-z0-9_:]*$/, patternRule: 'a metric name' });
const windowSchema = s.duration({ positive: true });
const selectorSchema = s.object({
  metric: metricSchema,
  match: s.optional(stringMap),
  fn: s.optional(s.oneOf(['value', 'rate', 'increase', 'delta'] as const)),
  windowMs: s.optional(windowSchema),
});
const windowed = (kind: 'rate' | 'increase' | 'delta') =>
  s.object({
    kind: s.oneOf([kind]),
    metric: metricSchema,
    match: s.optional(stringMap),
    windowMs: windowSchema,
    op: opSchema,
    threshold: s.number(),
  });
const EXPRS: Record<AlertExpr['kind'], Schema<unknown>> = {
  value: s.object({
    kind: s.oneOf(['value']),
    metric: metricSchema,
    match: s.optional(stringMap),
    op: opSchema,
    threshold: s.number(),
  }),
  rate: windowed('rate'),
  increase: windowed('increase'),
  delta: windowed('delta'),
  ratio: s.object({
    kind: s.oneOf(['ratio']),
    numerator: selectorSchema,
    denominator: selectorSchema,
    by: s.optional(s.array(s.string())),
    op: opSchema,
    threshold: s.number(),
  }),
  custom: s.object({ kind: s.oneOf(['custom']), evaluate: s.fn() }),
};

/** The schema of an `AlertExpr` (by its `kind`). @internal */
export const exprSchema: Schema<AlertExpr> = s.custom<AlertExpr>(
  `an alert expression (kind ${Object.keys(EXPRS).join(', ')})`,
  (v, path) => {
    const kind = typeof v === 'object' && v !== null ? (v as { kind?: unknown }).kind : undefined;
    const schema = typeof kind === 'string' ? EXPRS[kind as AlertExpr['kind']] : undefined;
    if (schema === undefined)
      return s.fail(
        `${path}.kind`,
        `one of ${Object.keys(EXPRS)
          .map((k) => `'${k}'`)
          .join(', ')}`,
        kind,
      );
    return schema.parse(v, path) as AlertExpr;
  },
);
