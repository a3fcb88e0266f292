/**
 * The alert manager: evaluates alert rules (src/metrics/expressions.ts) over the samples of a
 * registry's components, with a `for` duration (pending until the condition has held that long,
 * then firing), `keepFiringFor` against flapping, severity, labels and templated annotations.
 * States of an alert: inactive → pending → firing → resolved (notified once) → inactive. One
 * alert instance per matching series. The manager is itself a component (`alertManager`): its
 * state is its worst alert, and every alert transition is an `alert` event.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import { clockSchema, duck, nameSchema, positiveMs, registrySchema } from '../core/common-schemas.js';
import type { ComponentDescriptor, ComponentOperation, Snapshot } from '../core/component.js';
import { eventBase, type StateChange } from '../core/component-kit.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter, reportError } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { alertOperations } from './alert-operations.js';
import {
  type Alert,
  type AlertNotification,
  type AlertRule,
  type AlertState,
  type AlertTransition,
  type Notifier,
  ruleSchema,
} from './alert-types.js';
import { defaultAlertRules } from './default-rules.js';
import {
  type AlertContext,
  evalExpr,
  longestWindow,
  matches,
  renderTemplate,
  type SeriesValue,
  seriesKey,
} from './expressions.js';
import { History } from './history.js';
import type { Metrics } from './metrics.js';
import type { NamedSample } from './recorder.js';
import { Silences } from './silences.js';

export type { Alert, AlertNotification, AlertRule, AlertState, AlertTransition, Notifier };

// Deliberate repetition: documented option fields (intervalMs, name, registry, clock) that every
// component's options have, each with its own default and meaning.
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
    silences: 'Silences active now.',
  },
  counters: {
    evaluations: 'Evaluations of every rule.',
    ruleErrors: 'Rule evaluations that threw.',
    notifications: 'Notifications handed to notifiers.',
    notificationFailures: 'Notifications a notifier failed to deliver.',
    silencedNotifications: 'Firing notifications held back by a silence.',
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
  private ruleList: AlertRule[];
  /** The silences: silenced alerts are evaluated and shown, not notified. */
  readonly silences: Silences;
  /** Alerts whose firing was notified (a resolution is notified only after a firing was). */
  private readonly notified = new Set<string>();
  readonly intervalMs: number;
  private readonly metrics: Metrics;
  private readonly notifiers: readonly Notifier[];
  private readonly clock: Clock;
  private readonly history = new History();
  private readonly instances = new Map<string, Map<string, Instance>>();
  private readonly emitter = new PolicyEmitter<AlertManagerEvent>();
  private readonly counts = {
    evaluations: 0,
    ruleErrors: 0,
    notifications: 0,
    notificationFailures: 0,
    silencedNotifications: 0,
  };
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
    this.ruleList = [...((o.rules as readonly AlertRule[] | undefined) ?? defaultAlertRules())];
    const names = new Set<string>();
    this.ruleList.forEach((r, i) => {
      if (names.has(r.name))
        throw new ConfigError(`createAlerts.rules[${i}].name`, 'a name no other rule has', r.name);
      names.add(r.name);
    });
    this.notifiers = o.notifiers ?? [];
    this.intervalMs = o.intervalMs ?? 15_000;
    this.clock = o.clock ?? o.metrics.clock;
    this.silences = new Silences(this.clock);
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
      gauges: { firing, pending, rules: this.rules.length, silences: this.silences.active },
      counters: { ...this.counts },
      details: {
        alerts: this.alerts().map((a) => ({
          rule: a.rule,
          state: a.state,
          labels: a.labels,
          ...(a.silencedBy === undefined ? {} : { silencedBy: a.silencedBy }),
        })),
      },
    };
  }

  /** The rules evaluated. */
  get rules(): readonly AlertRule[] {
    return this.ruleList;
  }

  /**
   * Adds a rule, or replaces the rule of the same name (its alerts carry on and the next
   * evaluation judges them by the new expression). The rule is validated first (ConfigError).
   * Returns true when it was added, false when it replaced one.
   *
   * @example
   * ```ts
   * import { createRegistry } from 'bulwark';
   * import { createAlerts, createMetrics } from 'bulwark/metrics';
   * const alerts = createAlerts({ metrics: createMetrics({ registry: createRegistry() }), rules: [] });
   * alerts.putRule({ name: 'Rejections', expr: { kind: 'rate', metric: 'bulwark_bulkhead_rejections_total', windowMs: 60_000, op: '>', threshold: 1 } });
   * console.log(alerts.rules.length); // 1
   * ```
   */
  putRule(rule: AlertRule, path = 'putRule(rule)'): boolean {
    const r = ruleSchema.parse(rule, path) as AlertRule;
    const at = this.ruleList.findIndex((x) => x.name === r.name);
    if (at >= 0) this.ruleList[at] = r;
    else {
      this.ruleList.push(r);
      this.instances.set(r.name, new Map());
    }
    this.history.keepMs = Math.max(this.history.keepMs, longestWindow(r.expr));
    return at < 0;
  }

  /**
   * Deletes a rule; its firing alerts are resolved (and notified as such). Returns false when no
   * rule has that name.
   */
  deleteRule(name: string): boolean {
    const at = this.ruleList.findIndex((x) => x.name === name);
    if (at < 0) return false;
    const rule = this.ruleList[at]!;
    const now = this.clock.now();
    const out: AlertTransition[] = [];
    this.step(rule, [], now, out); // pending → inactive, firing → resolved (keepFiringFor waived)
    for (const i of this.instances.get(name)!.values())
      if (i.state === 'firing')
        out.push({
          from: 'firing',
          to: 'resolved',
          alert: { ...this.view(rule, i), state: 'resolved', resolvedAt: now },
          at: now,
        });
    this.ruleList.splice(at, 1);
    this.instances.delete(name);
    this.publish(out);
    this.setState();
    return true;
  }

  /** The control plane's operations: rules and alerts views, rule CRUD, silences. */
  operations(): readonly ComponentOperation[] {
    return alertOperations(this);
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
    this.publish(transitions);
    this.setState();
    return transitions;
  }

  /**
   * Emits the transitions and notifies: a firing alert unless silenced (held back, it is notified
   * at a later evaluation once no silence covers it), a resolution only after its firing was.
   */
  private publish(transitions: readonly AlertTransition[]): void {
    for (const t of transitions) this.tell(t);
    const key = (a: Alert) => a.fingerprint ?? seriesKey(a.rule, a.labels);
    for (const t of transitions) {
      if (t.to !== 'resolved' || !this.notified.delete(key(t.alert))) continue;
      this.deliver(t);
    }
    const fresh = new Set(transitions.filter((t) => t.to === 'firing').map((t) => key(t.alert)));
    for (const a of this.alerts()) {
      if (a.state !== 'firing' || this.notified.has(key(a))) continue;
      if (a.silencedBy !== undefined) {
        if (fresh.has(key(a))) this.counts.silencedNotifications++;
        continue;
      }
      this.notified.add(key(a));
      this.deliver({ from: 'pending', to: 'firing', alert: a, at: a.firedAt ?? this.clock.now() });
    }
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
    const silencedBy = this.silences.silencing(labels);
    return {
      ...(silencedBy.length === 0 ? {} : { silencedBy }),
      rule: rule.name,
      fingerprint: seriesKey(rule.name, i.labels),
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
