/**
 * The health monitor: runs checks in the background (each on its own interval, never two runs of
 * one check at once, each bounded by its timeout), and answers liveness, readiness and startup,
 * a health+json report and a degradation level. The monitor is a component (`healthMonitor`:
 * state `starting`, `ready`, `notReady` or `shuttingDown`), and so is each of its checks.
 */

import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import type { ComponentDescriptor, ComponentOperation, Snapshot } from '../core/component.js';
import { eventBase, type StateChange } from '../core/component-kit.js';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter, reportError } from '../core/events.js';
import type { HealthCheck, HealthStatus } from './check.js';
import { DEGRADATION_LEVELS, Degradation, type DegradationLevel } from './degradation.js';
import { type HealthJson, healthDocument } from './health-json.js';
import { type HealthMonitorOptions, monitorSchema } from './monitor-options.js';
import { parse } from './options.js';
import { type HealthOverride, LEVEL_TARGET, Overrides, overrideOperations } from './override.js';
import { aggregate, type CheckReport, checkReport, type HealthReport, worst } from './report.js';

export type { CheckReport, HealthMonitorOptions, HealthReport };

/** Which report: the full health (or a group), or a probe. */
export type ProbeKind = 'live' | 'ready' | 'startup';

/** States of a health monitor. */
export type HealthMonitorState = 'starting' | 'ready' | 'notReady' | 'shuttingDown';

/** Events of a health monitor: its state, liveness and degradation level changes. */
export type HealthMonitorEvent =
  | (EventBase & { readonly kind: 'healthMonitor' } & StateChange<HealthMonitorState>)
  | (EventBase & {
      readonly kind: 'healthMonitor';
      readonly event: 'liveChange';
      readonly from: boolean;
      readonly to: boolean;
    })
  | (EventBase & {
      readonly kind: 'healthMonitor';
      readonly event: 'levelChange';
      readonly from: DegradationLevel;
      readonly to: DegradationLevel;
      /** The level the rules aim at now. */
      readonly target: DegradationLevel;
    });

// Deliberate repetition: event-map augmentation and descriptor literal, as every component has (the
// same keys; the values differ in meaning).
declare module '../core/events.js' {
  interface PolicyEventMap {
    healthMonitor: HealthMonitorEvent;
  }
}

/**
 * What a health monitor reports as a component.
 *
 * @example
 * ```ts
 * import { HEALTH_MONITOR_DESCRIPTOR } from 'bulwark/health';
 * console.log(HEALTH_MONITOR_DESCRIPTOR.states); // [ 'ready', 'starting', 'notReady', 'shuttingDown' ]
 * ```
 */
export const HEALTH_MONITOR_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'healthMonitor',
  help: 'Runs health checks and answers liveness, readiness and startup.',
  category: 'health',
  states: ['ready', 'starting', 'notReady', 'shuttingDown'],
  gauges: {
    checks: 'Checks the monitor runs.',
    failingChecks: 'Checks whose judged status is fail.',
    live: '1 while live (no liveness check failing), else 0.',
    degradationLevel: 'Degradation level: 0 normal, 1 limited, 2 critical-only, 3 offline.',
  },
  counters: {},
});

/**
 * A check was asked for by a name the monitor does not know (`runNow(['typo'])`).
 *
 * @example
 * ```ts
 * import { createHealthMonitor, UnknownCheckError } from 'bulwark/health';
 * const monitor = createHealthMonitor({ checks: [] });
 * const err = await monitor.runNow(['db']).catch((e: unknown) => e);
 * console.log(err instanceof UnknownCheckError); // true
 * ```
 */
export class UnknownCheckError extends BulwarkError {
  override readonly code: 'UNKNOWN_CHECK' = 'UNKNOWN_CHECK';
  constructor(name: string, known: readonly string[]) {
    super('UNKNOWN_CHECK', `No health check named "${name}"; the checks are ${known.join(', ') || '(none)'}`);
  }
}

interface CheckState {
  readonly check: HealthCheck;
  running: Promise<void> | undefined;
  timer: TimerHandle | undefined;
}

/**
 * Runs health checks and answers health, liveness, readiness and startup. See `createHealthMonitor()`.
 *
 * @example
 * ```ts
 * import { createHealthMonitor, customCheck, type HealthMonitor } from 'bulwark/health';
 * const monitor: HealthMonitor = createHealthMonitor({ checks: [customCheck({ name: 'self', run: () => true })] });
 * await monitor.runNow();
 * console.log(monitor.probeJson('ready').status, monitor.snapshot().state); // pass ready
 * await monitor.close();
 * ```
 */
export class HealthMonitor {
  readonly kind = 'healthMonitor' as const;
  readonly name: string;
  readonly descriptor: ComponentDescriptor = HEALTH_MONITOR_DESCRIPTOR;
  /** The degradation tracker fed by this monitor (attach a load shedder to it). */
  readonly degradation: Degradation<HealthReport> | undefined;
  /** The checks, in the order given. */
  readonly checks: readonly HealthCheck[];
  private readonly clock: Clock;
  private readonly states: CheckState[];
  private readonly byName = new Map<string, CheckState>();
  private readonly groups: ReadonlyMap<string, readonly HealthCheck[]>;
  private readonly emitter = new PolicyEmitter<HealthMonitorEvent>();
  private readonly meta: Pick<
    HealthMonitorOptions,
    'version' | 'releaseId' | 'serviceId' | 'description' | 'notes'
  >;
  private started = false;
  private ready = false;
  private live = true;
  private shuttingDown = false;
  private running = false;
  private closed = false;
  private state: HealthMonitorState = 'starting';
  private readonly forced: Overrides;

  constructor(options: HealthMonitorOptions) {
    const o = parse('healthMonitor', monitorSchema, options);
    this.clock = o.clock ?? systemClock;
    this.name = o.name ?? 'health';
    this.forced = new Overrides(this.clock, (target) => {
      if (target === LEVEL_TARGET) this.degradation?.force(undefined);
      else if (this.byName.has(target)) this.byName.get(target)!.check.forced = undefined;
      this.recompute(true);
    });
    this.states = o.checks.map((check, i) => {
      const at = `healthMonitor.checks[${i}]`;
      if (this.byName.has(check.name)) {
        throw new ConfigError(
          `${at}.name`,
          'unique',
          check.name,
          `${at}.name "${check.name}" is used by another check; give each check its own name`,
        );
      }
      if (check.owner !== undefined)
        throw new ConfigError(
          at,
          'a check no other monitor runs',
          check.name,
          `${at} ("${check.name}") already belongs to another health monitor; make one check per monitor`,
        );
      const st: CheckState = { check, running: undefined, timer: undefined };
      this.byName.set(check.name, st);
      return st;
    });
    for (const st of this.states) st.check.owner = this;
    this.checks = this.states.map((st) => st.check);
    const groups = new Map<string, HealthCheck[]>();
    for (const [group, names] of Object.entries(o.groups ?? {})) {
      groups.set(
        group,
        names.map((n, i) => {
          const st = this.byName.get(n);
          if (st === undefined) {
            throw new ConfigError(
              `healthMonitor.groups.${group}[${i}]`,
              'the name of a check',
              n,
              `healthMonitor.groups.${group}[${i}]: no check is named "${n}" (the checks are ${[...this.byName.keys()].join(', ')})`,
            );
          }
          return st.check;
        }),
      );
    }
    this.groups = groups;
    this.meta = {
      ...(o.version === undefined ? {} : { version: o.version }),
      ...(o.releaseId === undefined ? {} : { releaseId: o.releaseId }),
      ...(o.serviceId === undefined ? {} : { serviceId: o.serviceId }),
      ...(o.description === undefined ? {} : { description: o.description }),
      ...(o.notes === undefined ? {} : { notes: o.notes }),
    };
    const d = o.degradation;
    this.degradation =
      d === false ? undefined : new Degradation<HealthReport>({ clock: this.clock, ...(d ?? {}) });
    this.degradation?.on('change', (e) => {
      if (this.emitter.wants('levelChange'))
        this.emitter.emit({
          ...eventBase('healthMonitor', this.name),
          event: 'levelChange',
          from: e.from,
          to: e.to,
          target: e.target,
        });
      this.recompute(false);
    });
    this.recompute(false);
    if (o.registry !== undefined) {
      o.registry.register(this);
      for (const c of this.checks) o.registry.register(c);
    }
    if (o.autoStart !== false) this.start();
  }

  /** Starts the background checks (each runs at once, then every `intervalMs`). Idempotent. */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    for (const st of this.states) void this.runOne(st);
  }

  /** Stops the checks: timers cleared, running checks aborted. The monitor keeps its last state. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    this.degradation?.close();
    this.forced.close();
    for (const st of this.states) {
      if (st.timer !== undefined) this.clock.clearTimeout(st.timer);
      st.timer = undefined;
      st.check.controller?.abort(new Error('health monitor closed'));
    }
    await Promise.all(
      this.states.map(async (st) => {
        try {
          await st.check.close?.();
        } catch (error) {
          reportError(`health check "${st.check.name}" close()`, error);
        }
      }),
    );
  }

  /**
   * Runs every check now (or the named ones) and resolves when they have ended — a check already
   * running is awaited, not started again.
   */
  async runNow(names?: readonly string[]): Promise<void> {
    const list = names === undefined ? this.states : names.map((n) => this.stateOf(n));
    await Promise.all(list.map((st) => this.runOne(st)));
  }

  /**
   * Marks the service as shutting down (readiness fails at once, health reports `fail`), or
   * back. `gracefulShutdown({ monitor })` calls it.
   */
  setShuttingDown(value = true): void {
    if (value === this.shuttingDown) return;
    this.shuttingDown = value;
    this.recompute(true);
  }

  /** True while shutting down. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Subscribes to the monitor's events: `stateChange`, `liveChange`, `levelChange` (each check has its own `onEvent`). */
  onEvent(listener: Listener<HealthMonitorEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** The names of the groups. */
  get groupNames(): readonly string[] {
    return [...this.groups.keys()];
  }

  /** The monitor as a component: its state, checks, failing checks, liveness and level. */
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: {
        checks: this.states.length,
        failingChecks: this.checks.filter((c) => c.status === 'fail').length,
        live: this.live ? 1 : 0,
        degradationLevel: DEGRADATION_LEVELS.indexOf(this.degradation?.level ?? 'normal'),
      },
      counters: {},
      details: {
        level: this.degradation?.level ?? 'normal',
        checks: this.checks.map((c) => ({ name: c.name, status: c.status })),
        overrides: this.forced.list(),
      },
    };
  }

  /** The report now: statuses of the monitor and of each check (what degradation rules read). */
  report(): HealthReport {
    const checks = this.checks.map(checkReport);
    return {
      status: this.shuttingDown ? 'fail' : aggregate(checks),
      ready: this.ready,
      live: this.live,
      started: this.started,
      shuttingDown: this.shuttingDown,
      level: this.degradation?.level ?? 'normal',
      checks,
    };
  }

  /**
   * The `application/health+json` document of every check (or of a group: undefined when there
   * is no such group). With `details: false` (the default), observed values, outputs, version,
   * releaseId and notes are left out. Shutting down, the status is `fail`.
   */
  healthJson(options: { details?: boolean; group?: string } = {}): HealthJson | undefined {
    let checks: readonly HealthCheck[] = this.checks;
    let status: HealthStatus;
    if (options.group !== undefined) {
      const g = this.groups.get(options.group);
      if (g === undefined) return undefined;
      checks = g;
      status = worst(g.map((c) => checkReport(c).status));
    } else {
      status = aggregate(this.checks.map(checkReport));
    }
    let output: string | undefined;
    if (this.shuttingDown) {
      status = 'fail';
      output = 'shutting down';
    } else if (status !== 'pass') {
      output = checks
        .filter((c) => c.status === 'fail' || c.status === 'warn')
        .map((c) => `${c.name}: ${c.status}${c.last?.output === undefined ? '' : ` (${c.last.output})`}`)
        .join('; ');
    }
    const notes = this.forced
      .list()
      .map((f) => `override: ${f.target} = ${f.value} by ${f.actor}: ${f.reason}`);
    const meta =
      notes.length === 0 ? this.meta : { ...this.meta, notes: [...(this.meta.notes ?? []), ...notes] };
    return healthDocument(meta, status, output, checks, options.details === true, this.clock.date());
  }

  /**
   * Forces a check's status for `durationMs` (an operator's override, ended by itself or by
   * `releaseOverride`): readiness, liveness, health+json and the degradation rules read it.
   */
  forceCheck(
    name: string,
    status: HealthStatus,
    o: { durationMs: number; reason: string; actor?: string },
  ): HealthOverride {
    const check = this.stateOf(name).check;
    const override = this.forced.set(name, status, o.durationMs, o.reason, o.actor ?? 'api');
    check.forced = { status, override };
    this.recompute(true);
    return override;
  }

  /** Forces the degradation level for `durationMs` (attached shedders follow). */
  forceLevel(
    level: DegradationLevel,
    o: { durationMs: number; reason: string; actor?: string },
  ): HealthOverride {
    const d = this.degradation;
    if (d === undefined)
      throw new BulwarkError('NO_DEGRADATION', `Health monitor "${this.name}" has no degradation level`);
    const override = this.forced.set(LEVEL_TARGET, level, o.durationMs, o.reason, o.actor ?? 'api');
    d.force(level);
    return override;
  }

  /** Ends an override now (a check's name, or `degradationLevel`); returns it, if there was one. */
  releaseOverride(target: string): HealthOverride | undefined {
    return this.forced.release(target);
  }

  /** The overrides in force. */
  overrides(): HealthOverride[] {
    return this.forced.list();
  }

  /** True when the monitor tracks a degradation level. */
  get hasDegradation(): boolean {
    return this.degradation !== undefined;
  }

  /** The control plane's operations: `overrides`, `forceCheck`, `forceLevel`, `releaseOverride`. */
  operations(): readonly ComponentOperation[] {
    return overrideOperations(this);
  }

  /** The document of a probe: `live`, `ready` or `startup` (status pass or fail). */
  probeJson(kind: ProbeKind, options: { details?: boolean } = {}): HealthJson {
    let pass: boolean;
    let checks: readonly HealthCheck[];
    let output: string | undefined;
    switch (kind) {
      case 'live':
        pass = this.live;
        checks = this.checks.filter((c) => c.liveness);
        if (!pass) output = `liveness check failing: ${names(checks.filter((c) => c.status === 'fail'))}`;
        break;
      case 'startup':
        pass = this.started;
        checks = this.checks.filter((c) => c.critical);
        if (!pass) output = `starting: waiting for ${names(checks.filter((c) => !c.passedOnce))}`;
        break;
      default: {
        pass = this.ready;
        checks = this.checks.filter((c) => c.critical);
        if (!pass) output = this.notReadyReason();
      }
    }
    return healthDocument(
      this.meta,
      pass ? 'pass' : 'fail',
      output,
      checks,
      options.details === true,
      this.clock.date(),
    );
  }

  private notReadyReason(): string {
    if (this.shuttingDown) return 'shutting down';
    if (!this.started)
      return `starting: waiting for ${names(this.checks.filter((c) => c.critical && !c.passedOnce))}`;
    if (!this.live) return 'not live';
    return `critical check failing: ${names(this.checks.filter((c) => c.critical && c.status === 'fail'))}`;
  }

  private stateOf(name: string): CheckState {
    const st = this.byName.get(name);
    if (st === undefined) throw new UnknownCheckError(name, [...this.byName.keys()]);
    return st;
  }

  /** Runs a check unless it is running (then its run is returned). */
  private runOne(st: CheckState): Promise<void> {
    if (st.running !== undefined) return st.running;
    if (this.closed) return Promise.resolve();
    if (st.timer !== undefined) {
      this.clock.clearTimeout(st.timer);
      st.timer = undefined;
    }
    const p = st.check.execute(this.clock).then(
      (r) => {
        st.running = undefined;
        st.check.controller = undefined;
        if (this.closed) return;
        st.check.record(r);
        this.recompute(true);
        this.scheduleNext(st);
      },
      (error: unknown) => {
        st.running = undefined;
        reportError(`health monitor (check "${st.check.name}")`, error);
        if (!this.closed) this.scheduleNext(st);
      },
    );
    st.running = p;
    return p;
  }

  private scheduleNext(st: CheckState): void {
    if (!this.running || this.closed) return;
    const t = this.clock.setTimeout(() => {
      st.timer = undefined;
      void this.runOne(st);
    }, st.check.intervalMs);
    t.unref();
    st.timer = t;
  }

  /** Recomputes live/started, feeds degradation, recomputes ready and the state; emits what changed. */
  private recompute(feed: boolean): void {
    const live = this.checks.every((c) => !c.liveness || c.status !== 'fail');
    if (live !== this.live) {
      this.live = live;
      if (this.emitter.wants('liveChange'))
        this.emitter.emit({
          ...eventBase('healthMonitor', this.name),
          event: 'liveChange',
          from: !live,
          to: live,
        });
    }
    if (!this.started && this.checks.every((c) => !c.critical || c.passedOnce)) this.started = true;
    if (feed && this.degradation !== undefined) {
      this.degradation.update(this.report()); // may emit a level change (which recomputes)
    }
    this.ready =
      this.started &&
      this.live &&
      !this.shuttingDown &&
      this.checks.every((c) => !c.critical || c.status !== 'fail');
    const to: HealthMonitorState = this.shuttingDown
      ? 'shuttingDown'
      : !this.started
        ? 'starting'
        : this.ready
          ? 'ready'
          : 'notReady';
    const from = this.state;
    if (to === from) return;
    this.state = to;
    if (this.emitter.wants('stateChange'))
      this.emitter.emit({ ...eventBase('healthMonitor', this.name), event: 'stateChange', from, to });
  }
}

function names(checks: readonly HealthCheck[]): string {
  return checks.map((c) => c.name).join(', ');
}

/**
 * Makes a health monitor: it runs the checks in the background (timers unref'd: it never keeps
 * the process alive), and answers `report()`, `healthJson()`, `probeJson('live'|'ready'|'startup')`
 * and, as a component, `snapshot()` and `onEvent()`. Mount it with `healthHandler`,
 * `fastifyHealth` or `expressHealth`.
 *
 * @example
 * ```ts
 * import { createHealthMonitor, customCheck } from 'bulwark/health';
 * import { createFakeClock } from 'bulwark/testing';
 * const clock = createFakeClock();
 * let up = true;
 * const monitor = createHealthMonitor({
 *   clock,
 *   checks: [
 *     customCheck({ name: 'db', intervalMs: 1_000, failureThreshold: 1, run: () => up }),
 *     customCheck({ name: 'cache', critical: false, run: () => true }),
 *   ],
 * });
 * await monitor.runNow();
 * console.log(monitor.report().ready); // true
 * up = false;
 * await clock.tick(1_000);
 * console.log(monitor.report().status, monitor.report().level); // fail critical-only
 * await monitor.close();
 * ```
 */
export function createHealthMonitor(options: HealthMonitorOptions): HealthMonitor {
  return new HealthMonitor(options);
}
