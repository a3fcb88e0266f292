/**
 * The alert manager: evaluates alert rules (src/metrics/expressions.ts) over the samples of a
 * registry's components, with a `for` duration (pending until the condition has held that long,
 * then firing), `keepFiringFor` against flapping, severity, labels and templated annotations.
 * States of an alert: inactive → pending → firing → resolved (notified once) → inactive. One
 * alert instance per matching series. The manager is itself a component (`alertManager`): its
 * state is its worst alert, and every alert transition is an `alert` event.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import {
  clockSchema,
  duck,
  ms,
  nameSchema,
  positiveMs,
  registrySchema,
  stringMap,
} from '../core/common-schemas.js';
import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import { eventBase, type StateChange } from '../core/component-kit.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter, reportError } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { defaultAlertRules } from './default-rules.js';
import {
  type AlertContext,
  type AlertExpr,
  evalExpr,
  exprSchema,
  longestWindow,
  matches,
  renderTemplate,
  type SeriesValue,
  seriesKey,
} from './expressions.js';
import { History } from './history.js';
import type { Metrics } from './metrics.js';
import type { NamedSample } from './recorder.js';

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
  /** The metrics whose samples are evaluated (`createMetrics({ registry })`). */
  metrics: Metrics;
  /** The rules. Default `defaultAlertRules()`. */
  rules?: readonly AlertRule[];
  /** Where firing and resolved notifications go. Default none. */
  notifiers?: readonly Notifier[];
  /** Evaluation interval for `start()`, ms. Default 15 000. */
  intervalMs?: number;
  /** Clock for evaluation times and the interval. Default the metrics' clock. */
  clock?: Clock;
  /**
   * Sample history kept for rates, increases and deltas, ms, at least. The history always covers
   * the longest window of the rules (a ratio selector's default 300 000 included) and grows to
   * the longest window a `custom` rule asks `ctx.rate`/`ctx.increase`/`ctx.delta` for. Default
   * 3 600 000 (1 h) when a rule is `custom` (so its first windows have their baseline), else 0.
   */
  historyMs?: number;
  /** The manager's name (as a component). Default `alerts`. */
  name?: string;
  /** Where the manager registers as a component. */
  registry?: Registry;
}

const ruleSchema = s.object({
  name: s.string({ pattern: /^[^\s{}]+$/, patternRule: 'a rule name without spaces or braces' }),
  expr: exprSchema,
  forMs: s.optional(ms),
  keepFiringForMs: s.optional(ms),
  severity: s.optional(s.string()),
  labels: s.optional(stringMap),
  annotations: s.optional(stringMap),
});
const optionsSchema = s.object({
  metrics: duck<Metrics>('metrics made by createMetrics()', ['collect', 'samples']),
  rules: s.optional(s.array(ruleSchema)),
  notifiers: s.optional(s.array(duck<Notifier>('a notifier (an object with notify())', ['notify']))),
  intervalMs: s.optional(positiveMs),
  clock: s.optional(clockSchema),
  historyMs: s.optional(s.duration({ max: 7 * 86_400_000 })),
  name: s.optional(nameSchema),
  registry: s.optional(registrySchema),
});

/** States of an alert manager: its worst alert. */
export type AlertManagerState = 'ok' | 'pending' | 'firing';

/** Events of an alert manager: its state changes, and every alert transition. */
export type AlertManagerEvent =
  | (EventBase & { readonly kind: 'alertManager' } & StateChange<AlertManagerState>)
  | (EventBase & {
      readonly kind: 'alertManager';
      readonly event: 'alert';
      /** `error` for a critical alert firing, `warn` for another firing, `info` otherwise (for logs). */
      readonly level: 'info' | 'warn' | 'error';
      readonly rule: string;
      readonly from: AlertState;
      readonly to: AlertState;
      readonly alert: Alert;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    alertManager: AlertManagerEvent;
  }
}

/**
 * What an alert manager reports as a component.
 *
 * @example
 * ```ts
 * import { ALERT_MANAGER_DESCRIPTOR } from 'bulwark/metrics';
 * console.log(ALERT_MANAGER_DESCRIPTOR.states); // [ 'ok', 'pending', 'firing' ]
 * ```
 */
export const ALERT_MANAGER_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'alertManager',
  help: 'Evaluates alert rules over the metrics of a registry and notifies firing and resolved alerts.',
  category: 'alerts',
  states: ['ok', 'pending', 'firing'],
  gauges: {
    firing: 'Alerts firing now.',
    pending: 'Alerts pending now (condition holding, for not yet elapsed).',
    rules: 'Rules evaluated.',
  },
  counters: {
    evaluations: 'Evaluations of every rule.',
    ruleErrors: 'Rule evaluations that threw.',
    notifications: 'Notifications handed to notifiers.',
    notificationFailures: 'Notifications a notifier failed to deliver.',
  },
});

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
 * Evaluates alert rules over a registry's metrics. Call `evaluate()` yourself (tests, a
 * scheduler) or `start()` to evaluate every `intervalMs` on the clock.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createAlerts, createMetrics } from 'bulwark/metrics';
 * const alerts = createAlerts({ metrics: createMetrics({ registry: createRegistry() }) }).start();
 * // later
 * await alerts.stop();
 * ```
 */
export class AlertManager {
  readonly kind = 'alertManager' as const;
  readonly name: string;
  readonly descriptor: ComponentDescriptor = ALERT_MANAGER_DESCRIPTOR;
  readonly rules: readonly AlertRule[];
  readonly intervalMs: number;
  private readonly metrics: Metrics;
  private readonly notifiers: readonly Notifier[];
  private readonly clock: Clock;
  private readonly history = new History();
  private readonly instances = new Map<string, Map<string, Instance>>();
  private readonly emitter = new PolicyEmitter<AlertManagerEvent>();
  private readonly counts = { evaluations: 0, ruleErrors: 0, notifications: 0, notificationFailures: 0 };
  private state: AlertManagerState = 'ok';
  private timer: TimerHandle | null = null;
  private running = false;
  /** Bumped by every `start()` and `stop()`: a tick of an older run never re-arms the timer. */
  private generation = 0;
  private pending: Promise<void> = Promise.resolve();
  private readonly deliveries = new Set<Promise<void>>();

  constructor(options: AlertsOptions) {
    const o = optionsSchema.parse(options, 'createAlerts');
    this.metrics = o.metrics;
    this.name = o.name ?? 'alerts';
    this.rules = (o.rules as readonly AlertRule[] | undefined) ?? defaultAlertRules();
    const names = new Set<string>();
    this.rules.forEach((r, i) => {
      if (names.has(r.name))
        throw new ConfigError(`createAlerts.rules[${i}].name`, 'a name no other rule has', r.name);
      names.add(r.name);
    });
    this.notifiers = o.notifiers ?? [];
    this.intervalMs = o.intervalMs ?? 15_000;
    this.clock = o.clock ?? o.metrics.clock;
    const custom = this.rules.some((r) => r.expr.kind === 'custom');
    this.history.keepMs = Math.max(
      o.historyMs ?? (custom ? 3_600_000 : 0),
      ...this.rules.map((r) => longestWindow(r.expr)),
    );
    for (const r of this.rules) this.instances.set(r.name, new Map());
    joinRegistry(o.registry, this);
  }

  /** Subscribes to the manager's events: `stateChange` and `alert` (every alert transition). */
  onEvent(listener: Listener<AlertManagerEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** The manager as a component: its worst alert, alerts firing and pending, and its counters. */
  snapshot(): Snapshot {
    let firing = 0;
    let pending = 0;
    for (const byKey of this.instances.values())
      for (const i of byKey.values()) {
        if (i.state === 'firing') firing++;
        else if (i.state === 'pending') pending++;
      }
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: { firing, pending, rules: this.rules.length },
      counters: { ...this.counts },
      details: { alerts: this.alerts().map((a) => ({ rule: a.rule, state: a.state, labels: a.labels })) },
    };
  }

  /** The current alerts (pending and firing; resolved ones only during the evaluation that resolved them). */
  alerts(): Alert[] {
    const out: Alert[] = [];
    for (const r of this.rules)
      for (const i of this.instances.get(r.name)!.values()) out.push(this.view(r, i));
    return out;
  }

  /**
   * Evaluates every rule once, now: updates alert states, emits an `alert` event per transition
   * and hands firing/resolved transitions to the notifiers without waiting for their delivery (a
   * slow webhook must not skew `for` timing; a notifier that fails is reported as a process
   * warning; `flush()` awaits deliveries in flight). Returns the transitions.
   */
  async evaluate(): Promise<AlertTransition[]> {
    const now = this.clock.now();
    const samples = this.metrics.samples();
    this.history.record(now, samples);
    const ctx = this.context(now, samples);
    const transitions: AlertTransition[] = [];
    this.counts.evaluations++;
    for (const rule of this.rules) {
      let active: readonly SeriesValue[];
      try {
        active = evalExpr(rule.expr, ctx);
      } catch (error) {
        this.counts.ruleErrors++;
        reportError(`Alert rule ${rule.name}`, error);
        continue;
      }
      this.step(rule, active, now, transitions);
    }
    for (const t of transitions) this.tell(t);
    for (const t of transitions) if (t.to === 'firing' || t.to === 'resolved') this.deliver(t);
    this.setState();
    return transitions;
  }

  private tell(t: AlertTransition): void {
    if (!this.emitter.wants('alert')) return;
    const a = t.alert;
    const level = t.to === 'firing' ? (a.severity === 'critical' ? 'error' : 'warn') : 'info';
    this.emitter.emit({
      ...eventBase('alertManager', this.name),
      event: 'alert',
      level,
      rule: a.rule,
      from: t.from,
      to: t.to,
      alert: a,
    });
  }

  private deliver(t: AlertTransition): void {
    const n: AlertNotification = { status: t.to as 'firing' | 'resolved', alert: t.alert, at: t.at };
    for (const notifier of this.notifiers) {
      this.counts.notifications++;
      const d = (async () => {
        try {
          await notifier.notify(n);
        } catch (error) {
          this.counts.notificationFailures++;
          reportError(`An alert notifier (${t.alert.rule})`, error);
        }
      })();
      this.deliveries.add(d);
      void d.then(() => this.deliveries.delete(d));
    }
  }

  private setState(): void {
    const snap = this.snapshot();
    const to: AlertManagerState =
      (snap.gauges.firing ?? 0) > 0 ? 'firing' : (snap.gauges.pending ?? 0) > 0 ? 'pending' : 'ok';
    const from = this.state;
    if (to === from) return;
    this.state = to;
    if (this.emitter.wants('stateChange'))
      this.emitter.emit({ ...eventBase('alertManager', this.name), event: 'stateChange', from, to });
  }

  /**
   * Waits for the notifications in flight (handed to notifiers by `evaluate()`) to be delivered
   * or to fail.
   *
   * @example
   * ```ts
   * import { createRegistry } from 'bulwark';
   * import { createAlerts, createMetrics } from 'bulwark/metrics';
   * const alerts = createAlerts({ metrics: createMetrics({ registry: createRegistry() }) });
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
 * Makes an alert manager over a registry's metrics.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createFakeClock } from 'bulwark/testing';
 * import { createAlerts, createMetrics } from 'bulwark/metrics';
 * const clock = createFakeClock();
 * const metrics = createMetrics({ registry: createRegistry(), clock });
 * const alerts = createAlerts({ metrics, rules: [
 *   { name: 'NotReady', expr: { kind: 'value', metric: 'bulwark_component_state', match: { kind: 'healthMonitor', state: 'notReady' }, op: '==', threshold: 1 }, forMs: 60_000 },
 * ] });
 * console.log(await alerts.evaluate()); // [] (no health monitor registered)
 * ```
 */
export function createAlerts(options: AlertsOptions): AlertManager {
  return new AlertManager(options);
}
