/** The types of alerts: rules, alerts, transitions, notifications, notifiers; the rule schema. @module */

import { ms, stringMap } from '../core/common-schemas.js';
import { s } from '../core/schema.js';
import { type AlertExpr, exprSchema } from './expressions.js';

/**
 * An alert rule.
 *
 * @example
 * ```ts
 * import type { AlertRule } from 'bulwark/metrics';
 * const rule: AlertRule = {
 *   name: 'HighRejections',
 *   expr: { kind: 'rate', metric: 'bulwark_bulkhead_rejections_total', windowMs: 300_000, op: '>', threshold: 1 },
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
  /** The alert's identity: its rule and the labels of its series (stable when the rule changes). */
  readonly fingerprint?: string;
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
  /** The ids of the silences that hold back its notifications (absent when none). */
  readonly silencedBy?: readonly string[];
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

/** The schema of an `AlertRule`. @internal */
export const ruleSchema = s.object({
  name: s.string({ pattern: /^[^\s{}]+$/, patternRule: 'a rule name without spaces or braces' }),
  expr: exprSchema,
  forMs: s.optional(ms),
  keepFiringForMs: s.optional(ms),
  severity: s.optional(s.string()),
  labels: s.optional(stringMap),
  annotations: s.optional(stringMap),
});
