/**
 * The default alert rules. They read the generic families of the registry's components
 * (`bulwark_component_state`, and gauges by their name: any `dead`, any `inFlight` with a
 * `limit`), so they cover every component that reports such figures.
 */

import { ms } from '../core/common-schemas.js';
import { s } from '../core/schema.js';
import type { AlertContext, SeriesValue } from './expressions.js';
import type { AlertRule } from './manager.js';
import { STATE_FAMILY } from './recorder.js';

/** Options of `defaultAlertRules()`. */
export interface DefaultRulesOptions {
  /** How long a breaker must stay open, ms. Default 60 000. */
  breakerOpenForMs?: number;
  /** Window for dead-letter growth, ms. Default 600 000 (10 min). */
  deadLetterWindowMs?: number;
  /** Share of its limit in use (gauge `inFlight` ÷ gauge `limit`) above which a component alerts. Default 0.9. */
  saturationRatio?: number;
  /** How long readiness must be false (outside a shutdown), ms. Default 60 000. */
  notReadyForMs?: number;
  /** How long a critical check must fail, ms. Default 0. */
  criticalCheckForMs?: number;
}

const optionsSchema = s.object({
  breakerOpenForMs: s.optional(ms),
  deadLetterWindowMs: s.optional(s.duration({ positive: true })),
  saturationRatio: s.optional(s.ratio()),
  notReadyForMs: s.optional(ms),
  criticalCheckForMs: s.optional(ms),
});

/** Components of `kind` whose state is `state` now. */
const inState = (ctx: AlertContext, kind: string, state: string): SeriesValue[] =>
  ctx
    .select(STATE_FAMILY, { kind, state })
    .filter((x) => x.value === 1)
    .map((x) => ({ labels: { kind, name: x.labels.name ?? '' }, value: 1 }));

/** Metric names of the samples ending in `suffix`. */
const named = (ctx: AlertContext, suffix: string): string[] => [
  ...new Set(ctx.samples.filter((x) => x.name.endsWith(suffix)).map((x) => x.name)),
];

/**
 * The default rules: a circuit breaker open longer than 1 min; a critical health check failing;
 * dead letters growing (any component gauge `dead` higher than 10 min ago); a component above 90 %
 * of its limit (gauges `inFlight` ÷ `limit`); readiness false outside a shutdown (a health monitor
 * in state `notReady`); an SLO burning its budget fast (state `page`: critical) or steadily
 * (`ticket`: warning).
 *
 * @example
 * ```ts
 * import { defaultAlertRules } from 'bulwark/metrics';
 * console.log(defaultAlertRules().map((r) => r.name));
 * ```
 */
export function defaultAlertRules(options: DefaultRulesOptions = {}): AlertRule[] {
  optionsSchema.parse(options, 'defaultAlertRules');
  const deadWindowMs = options.deadLetterWindowMs ?? 600_000;
  const saturation = options.saturationRatio ?? 0.9;
  const state = (kind: string, st: string) => ({
    kind: 'value' as const,
    metric: STATE_FAMILY,
    match: { kind, state: st },
    op: '==' as const,
    threshold: 1,
  });
  // Deliberate repetition: the rules are rows of data (name, expression, severity, summary); their
  // fields are the AlertRule shape, their values differ in meaning.
  return [
    {
      name: 'BulwarkCircuitOpen',
      expr: state('circuitBreaker', 'open'),
      forMs: options.breakerOpenForMs ?? 60_000,
      severity: 'warning',
      annotations: { summary: 'Circuit breaker {{ $labels.name }} has been open for over a minute' },
    },
    {
      name: 'BulwarkCriticalCheckFailing',
      expr: {
        kind: 'custom',
        evaluate: (ctx) => {
          const critical = new Set(
            ctx
              .select('bulwark_health_check_critical')
              .filter((x) => x.value === 1)
              .map((x) => x.labels.name),
          );
          return inState(ctx, 'healthCheck', 'fail').filter((x) => critical.has(x.labels.name));
        },
      },
      forMs: options.criticalCheckForMs ?? 0,
      severity: 'critical',
      annotations: { summary: 'Critical health check {{ $labels.name }} is failing' },
    },
    {
      name: 'BulwarkDeadLetterGrowing',
      // A gauge: a fall (dead items requeued or purged) is not a reset.
      expr: {
        kind: 'custom',
        evaluate: (ctx) =>
          named(ctx, '_dead').flatMap((metric) =>
            ctx
              .delta(metric, deadWindowMs)
              .filter((x) => x.value > 0)
              .map((x) => ({ labels: { ...x.labels, metric }, value: x.value })),
          ),
      },
      severity: 'warning',
      annotations: { summary: '{{ $labels.name }}: {{ $value }} more dead items in the last 10 minutes' },
    },
    {
      name: 'BulwarkSaturated',
      expr: {
        kind: 'custom',
        evaluate: (ctx) =>
          named(ctx, '_in_flight').flatMap((metric) => {
            const limits = new Map(
              ctx.select(metric.replace(/_in_flight$/, '_limit')).map((x) => [x.labels.name, x.value]),
            );
            return ctx.select(metric).flatMap((x) => {
              const limit = limits.get(x.labels.name);
              if (limit === undefined || !(limit > 0) || !Number.isFinite(limit)) return [];
              const value = x.value / limit;
              return value > saturation ? [{ labels: { ...x.labels, metric }, value }] : [];
            });
          }),
      },
      severity: 'warning',
      annotations: { summary: '{{ $labels.name }} is at {{ $value }} of its limit' },
    },
    {
      name: 'BulwarkNotReady',
      expr: state('healthMonitor', 'notReady'),
      forMs: options.notReadyForMs ?? 60_000,
      severity: 'critical',
      annotations: { summary: 'Health monitor {{ $labels.name }} has not been ready for over a minute' },
    },
    {
      name: 'BulwarkSloBurnRatePage',
      expr: state('slo', 'page'),
      severity: 'critical',
      annotations: { summary: 'SLO {{ $labels.name }} burns its error budget over 14.4× (1 h and 5 min)' },
    },
    {
      name: 'BulwarkSloBurnRateTicket',
      expr: state('slo', 'ticket'),
      severity: 'warning',
      annotations: { summary: 'SLO {{ $labels.name }} burns its error budget over 6× (6 h and 30 min)' },
    },
  ];
}
