/**
 * The health monitor: runs checks in the background (each on its own interval, never two runs of
 * one check at once, each bounded by its timeout), judges them with consecutive thresholds, and
 * answers liveness, readiness and startup, a health+json report, a snapshot for metrics, and a
 * degradation level.
 */

import { z } from 'zod';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { type Disposer, Emitter, type Listener, reportError } from '../core/events.js';
import type { CheckResult, ComponentType, HealthCheck, HealthStatus } from './check.js';
import {
  Degradation,
  type DegradationChange,
  type DegradationLevel,
  type DegradationOptions,
} from './degradation.js';
import { LatencyHistory, type LatencyPercentiles } from './latency-history.js';
import { parse } from './options.js';

/** One check in a `HealthSnapshot`. */
export interface CheckSnapshot {
  readonly name: string;
  readonly component: string;
  /** The judged status (after thresholds). A check not yet run reports `warn` with `pending: true`. */
  readonly status: HealthStatus;
  readonly critical: boolean;
  /** p50/p90/p99 of the last `historySize` runs, or null before the first run. */
  readonly latencyMs: LatencyPercentiles | null;
  readonly consecutiveFailures: number;
  /** True until the check's first run ends. */
  readonly pending: boolean;
  readonly liveness: boolean;
  readonly measurement: string;
  readonly componentType: ComponentType;
  /** The last run's output (may hold details: do not expose it publicly). */
  readonly output: string | undefined;
}

/** The monitor's state at one moment: what metrics exporters and alert rules read. */
export interface HealthSnapshot {
  /**
   * Worst of the checks: a critical check failing → `fail`; any other failure, warning or pending
   * check → `warn`. `fail` while shutting down, as `/health` answers (the checks keep their own statuses).
   */
  readonly status: HealthStatus;
  readonly ready: boolean;
  readonly live: boolean;
  readonly started: boolean;
  readonly shuttingDown: boolean;
  readonly level: DegradationLevel;
  readonly checks: readonly CheckSnapshot[];
}

/** A check object of `application/health+json`. */
export interface HealthJsonCheck {
  componentId: string;
  componentType: string;
  observedValue?: unknown;
  observedUnit?: string;
  status: HealthStatus;
  time: string;
  output?: string;
}

/** An `application/health+json` document (draft-inadarei-api-health-check-06). */
export interface HealthJson {
  status: HealthStatus;
  version?: string;
  releaseId?: string;
  serviceId?: string;
  description?: string;
  notes?: string[];
  output?: string;
  checks?: Record<string, HealthJsonCheck[]>;
}

/** Which report: the full health (or a group), or a probe. */
export type ProbeKind = 'live' | 'ready' | 'startup';

/** Events of `monitor.on('change', …)`. */
export type HealthChangeEvent =
  | {
      readonly type: 'check';
      readonly name: string;
      readonly component: string;
      readonly from: HealthStatus | 'pending';
      readonly to: HealthStatus;
      readonly output: string | undefined;
    }
  | {
      readonly type: 'ready' | 'live' | 'started' | 'shuttingDown';
      readonly from: boolean;
      readonly to: boolean;
    }
  | DegradationChange;

/** Options of `createHealthMonitor()`. */
export interface HealthMonitorOptions {
  /** The checks (from `httpCheck`, `postgresCheck`, `customCheck`, …). Names must be unique. */
  checks: readonly HealthCheck[];
  /** Named subsets of checks, served at `/health/<group>`, e.g. `{ db: ['postgres', 'redis'] }`. */
  groups?: Record<string, readonly string[]>;
  /** Degradation rules and hysteresis, or false for none (level stays `normal`). */
  degradation?: DegradationOptions<HealthSnapshot> | false;
  /** Start running the checks at once. Default true (else call `start()`). */
  autoStart?: boolean;
  /** health+json `version` (shown only with details). */
  version?: string;
  /** health+json `releaseId` (shown only with details). */
  releaseId?: string;
  /** health+json `serviceId`. */
  serviceId?: string;
  /** health+json `description`. */
  description?: string;
  /** health+json `notes` (shown only with details). */
  notes?: readonly string[];
  clock?: Clock;
}

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

/** At most this many timed-out runs of one check may still be unsettled before it stops starting new ones. */
const MAX_HUNG = 3;

interface RunResult {
  status: HealthStatus;
  observedValue: unknown;
  observedUnit: string | undefined;
  output: string | undefined;
  latencyMs: number;
  time: number;
}

interface CheckState {
  readonly check: HealthCheck;
  status: HealthStatus | 'pending';
  last: RunResult | undefined;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  passedOnce: boolean;
  running: Promise<void> | undefined;
  controller: AbortController | undefined;
  hung: number;
  timer: TimerHandle | undefined;
  readonly history: LatencyHistory;
  readonly createdAt: number;
}

const monitorSchema = z.strictObject({
  checks: z.array(
    z.custom<HealthCheck>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as HealthCheck).name === 'string' &&
        typeof (v as HealthCheck).run === 'function' &&
        typeof (v as HealthCheck).intervalMs === 'number',
      { message: 'a check made by httpCheck(), customCheck(), … (from bulwark/health)' },
    ),
  ),
  groups: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.array(z.string())).optional(),
  degradation: z.union([z.literal(false), z.looseObject({})]).optional(),
  autoStart: z.boolean().optional(),
  version: z.string().optional(),
  releaseId: z.string().optional(),
  serviceId: z.string().optional(),
  description: z.string().optional(),
  notes: z.array(z.string()).optional(),
  clock: z
    .custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function', {
      message: 'a Clock',
    })
    .optional(),
});

/**
 * Runs health checks and answers health, liveness, readiness and startup. See `createHealthMonitor()`.
 *
 * @example
 * ```ts
 * import { createHealthMonitor, customCheck, type HealthMonitor } from 'bulwark/health';
 * const monitor: HealthMonitor = createHealthMonitor({ checks: [customCheck({ name: 'self', run: () => true })] });
 * await monitor.runNow();
 * console.log(monitor.probeJson('ready').status); // pass
 * await monitor.close();
 * ```
 */
export class HealthMonitor {
  /** The degradation tracker fed by this monitor (attach a load shedder to it). */
  readonly degradation: Degradation<HealthSnapshot> | undefined;
  private readonly clock: Clock;
  private readonly states: CheckState[];
  private readonly byName = new Map<string, CheckState>();
  private readonly groups: ReadonlyMap<string, readonly CheckState[]>;
  private readonly emitter = new Emitter<HealthChangeEvent>();
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

  constructor(options: HealthMonitorOptions) {
    const o = parse('healthMonitor', monitorSchema, options);
    this.clock = o.clock ?? systemClock;
    const now = this.clock.now();
    this.states = o.checks.map((check, i) => {
      if (this.byName.has(check.name)) {
        throw new ConfigError(
          `healthMonitor.checks[${i}].name`,
          'unique',
          check.name,
          `healthMonitor.checks[${i}].name "${check.name}" is used by another check; give each check its own name`,
        );
      }
      const st: CheckState = {
        check,
        status: 'pending',
        last: undefined,
        consecutiveFailures: 0,
        consecutiveSuccesses: 0,
        passedOnce: false,
        running: undefined,
        controller: undefined,
        hung: 0,
        timer: undefined,
        history: new LatencyHistory(check.historySize),
        createdAt: now,
      };
      this.byName.set(check.name, st);
      return st;
    });
    const groups = new Map<string, CheckState[]>();
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
          return st;
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
    const d = options.degradation;
    this.degradation =
      d === false ? undefined : new Degradation<HealthSnapshot>({ clock: this.clock, ...(d ?? {}) });
    this.degradation?.on('change', (e) => {
      this.emitter.emit(e);
      this.recompute(false);
    });
    this.recompute(false);
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
    for (const st of this.states) {
      if (st.timer !== undefined) this.clock.clearTimeout(st.timer);
      st.timer = undefined;
      st.controller?.abort(new Error('health monitor closed'));
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
    const list = names === undefined ? this.states : names.map((n) => this.state(n));
    await Promise.all(list.map((st) => this.runOne(st)));
  }

  /**
   * Marks the service as shutting down (readiness fails at once, health reports `fail`), or
   * back. `gracefulShutdown({ monitor })` calls it.
   */
  setShuttingDown(value = true): void {
    if (value === this.shuttingDown) return;
    this.shuttingDown = value;
    this.emitter.emit({ type: 'shuttingDown', from: !value, to: value });
    this.recompute(true);
  }

  /** True while shutting down. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Subscribes to changes of a check's status, readiness, liveness, startup and level. */
  on(_event: 'change', listener: Listener<HealthChangeEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** The names of the groups. */
  get groupNames(): readonly string[] {
    return [...this.groups.keys()];
  }

  /** The state now, for metrics and alerting. */
  snapshot(): HealthSnapshot {
    const checks = this.states.map((st) => this.checkSnapshot(st));
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
    const details = options.details === true;
    let states: readonly CheckState[] = this.states;
    let status: HealthStatus;
    if (options.group !== undefined) {
      const g = this.groups.get(options.group);
      if (g === undefined) return undefined;
      states = g;
      status = worst(g.map((st) => this.checkSnapshot(st).status));
    } else {
      status = aggregate(this.states.map((st) => this.checkSnapshot(st)));
    }
    let output: string | undefined;
    if (this.shuttingDown) {
      status = 'fail';
      output = 'shutting down';
    } else if (status !== 'pass') {
      output = states
        .filter((st) => st.status === 'fail' || st.status === 'warn')
        .map(
          (st) =>
            `${st.check.name}: ${st.status}${st.last?.output === undefined ? '' : ` (${st.last.output})`}`,
        )
        .join('; ');
    }
    return this.document(status, output, states, details);
  }

  /** The document of a probe: `live`, `ready` or `startup` (status pass or fail). */
  probeJson(kind: ProbeKind, options: { details?: boolean } = {}): HealthJson {
    const details = options.details === true;
    let pass: boolean;
    let states: readonly CheckState[];
    let output: string | undefined;
    switch (kind) {
      case 'live':
        pass = this.live;
        states = this.states.filter((st) => st.check.liveness);
        if (!pass) output = `liveness check failing: ${names(states.filter((st) => st.status === 'fail'))}`;
        break;
      case 'startup':
        pass = this.started;
        states = this.states.filter((st) => st.check.critical);
        if (!pass) output = `starting: waiting for ${names(states.filter((st) => !st.passedOnce))}`;
        break;
      default: {
        pass = this.ready;
        states = this.states.filter((st) => st.check.critical);
        if (!pass) output = this.notReadyReason();
      }
    }
    return this.document(pass ? 'pass' : 'fail', output, states, details);
  }

  private notReadyReason(): string {
    if (this.shuttingDown) return 'shutting down';
    if (!this.started) {
      return `starting: waiting for ${names(this.states.filter((st) => st.check.critical && !st.passedOnce))}`;
    }
    if (!this.live) return 'not live';
    const failing = this.states.filter((st) => st.check.critical && st.status === 'fail');
    return `critical check failing: ${names(failing)}`;
  }

  private document(
    status: HealthStatus,
    output: string | undefined,
    states: readonly CheckState[],
    details: boolean,
  ): HealthJson {
    const doc: HealthJson = { status };
    const m = this.meta;
    if (details && m.version !== undefined) doc.version = m.version;
    if (details && m.releaseId !== undefined) doc.releaseId = m.releaseId;
    if (m.serviceId !== undefined) doc.serviceId = m.serviceId;
    if (m.description !== undefined) doc.description = m.description;
    if (details && m.notes !== undefined) doc.notes = [...m.notes];
    if (details && output !== undefined && output !== '') doc.output = output;
    const checks: Record<string, HealthJsonCheck[]> = {};
    for (const st of states) {
      const c = st.check;
      const key = `${c.component}:${c.measurement}`;
      const last = st.last;
      const entry: HealthJsonCheck = {
        componentId: c.component,
        componentType: c.componentType,
        status: st.status === 'pending' ? 'warn' : st.status,
        time: new Date(last?.time ?? this.clock.date()).toISOString(),
      };
      if (details) {
        if (last === undefined) {
          entry.output = 'not checked yet';
        } else {
          if (last.observedValue !== undefined) entry.observedValue = last.observedValue;
          if (last.observedUnit !== undefined) entry.observedUnit = last.observedUnit;
          // The draft: output SHOULD be omitted for `pass` — kept only for the note that a failing
          // run has not yet reached the failure threshold.
          const o = entry.status === 'pass' && last.status === 'pass' ? undefined : this.describeOutput(st);
          if (o !== undefined) entry.output = o;
        }
      }
      const list = checks[key];
      if (list === undefined) checks[key] = [entry];
      else list.push(entry);
    }
    doc.checks = checks;
    return doc;
  }

  /** The last output, with a note when the judged status differs from the last run's. */
  private describeOutput(st: CheckState): string | undefined {
    const last = st.last!;
    if (st.status === last.status) return last.output;
    const c = st.check;
    const note =
      last.status === 'fail'
        ? `failed ${st.consecutiveFailures} of ${c.failureThreshold} consecutive runs before reporting fail`
        : `passed ${st.consecutiveSuccesses} of ${c.successThreshold} consecutive runs before reporting pass`;
    return last.output === undefined ? note : `${last.output} (${note})`;
  }

  private state(name: string): CheckState {
    const st = this.byName.get(name);
    if (st === undefined) throw new UnknownCheckError(name, [...this.byName.keys()]);
    return st;
  }

  private checkSnapshot(st: CheckState): CheckSnapshot {
    const c = st.check;
    return {
      name: c.name,
      component: c.component,
      status: st.status === 'pending' ? 'warn' : st.status,
      critical: c.critical,
      latencyMs: st.history.percentiles(),
      consecutiveFailures: st.consecutiveFailures,
      pending: st.status === 'pending',
      liveness: c.liveness,
      measurement: c.measurement,
      componentType: c.componentType,
      output: st.last?.output,
    };
  }

  /** Runs a check unless it is running (then its run is returned). */
  private runOne(st: CheckState): Promise<void> {
    if (st.running !== undefined) return st.running;
    if (this.closed) return Promise.resolve();
    if (st.timer !== undefined) {
      this.clock.clearTimeout(st.timer);
      st.timer = undefined;
    }
    const p = this.execute(st).then(
      (r) => {
        st.running = undefined;
        st.controller = undefined;
        if (this.closed) return;
        this.record(st, r);
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

  private execute(st: CheckState): Promise<RunResult> {
    const c = st.check;
    const clock = this.clock;
    const t0 = clock.now();
    if (st.hung >= MAX_HUNG) {
      return Promise.resolve({
        status: 'fail',
        observedValue: undefined,
        observedUnit: undefined,
        output: `${st.hung} earlier runs have not ended after their ${c.timeoutMs} ms timeout; not starting another`,
        latencyMs: Number.NaN,
        time: clock.date(),
      });
    }
    const controller = new AbortController();
    st.controller = controller;
    return new Promise<RunResult>((resolve) => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        st.hung++;
        controller.abort(new Error(`health check "${c.name}" timed out after ${c.timeoutMs} ms`));
        resolve({
          status: 'fail',
          observedValue: undefined,
          observedUnit: undefined,
          output: `timed out after ${c.timeoutMs} ms`,
          latencyMs: c.timeoutMs,
          time: clock.date(),
        });
      }, c.timeoutMs);
      timer.unref();
      const finish = (r: RunResult) => {
        if (done) {
          st.hung--; // a timed-out run has ended at last
          return;
        }
        done = true;
        clock.clearTimeout(timer);
        resolve(r);
      };
      new Promise<CheckResult>((res) => res(c.run(controller.signal))).then(
        (v) => {
          const latencyMs = clock.now() - t0;
          finish(normalize(v, latencyMs, clock.date()));
        },
        (error: unknown) => {
          const latencyMs = clock.now() - t0;
          finish({
            status: 'fail',
            observedValue: undefined,
            observedUnit: undefined,
            output: messageOf(error),
            latencyMs,
            time: clock.date(),
          });
        },
      );
    });
  }

  private record(st: CheckState, r: RunResult): void {
    if (!Number.isNaN(r.latencyMs)) st.history.add(r.latencyMs);
    st.last = r;
    if (r.status === 'fail') {
      st.consecutiveFailures++;
      st.consecutiveSuccesses = 0;
    } else {
      st.consecutiveSuccesses++;
      st.consecutiveFailures = 0;
    }
    const c = st.check;
    const from = st.status;
    let to: HealthStatus;
    if (from === 'pending') to = r.status;
    else if (r.status === 'fail')
      to = from === 'fail' || st.consecutiveFailures >= c.failureThreshold ? 'fail' : from;
    else to = from !== 'fail' || st.consecutiveSuccesses >= c.successThreshold ? r.status : 'fail';
    st.status = to;
    if (to !== 'fail') st.passedOnce = true;
    if (to !== from) {
      this.emitter.emit({ type: 'check', name: c.name, component: c.component, from, to, output: r.output });
    }
    this.recompute(true);
  }

  /** Recomputes live/started, feeds degradation, recomputes ready; emits what changed. */
  private recompute(feed: boolean): void {
    const live = this.states.every((st) => !st.check.liveness || st.status !== 'fail');
    if (live !== this.live) {
      this.live = live;
      this.emitter.emit({ type: 'live', from: !live, to: live });
    }
    if (!this.started && this.states.every((st) => !st.check.critical || st.passedOnce)) {
      this.started = true;
      this.emitter.emit({ type: 'started', from: false, to: true });
    }
    if (feed && this.degradation !== undefined) {
      this.degradation.update(this.snapshot()); // may emit a level change (which recomputes)
    }
    const ready =
      this.started &&
      this.live &&
      !this.shuttingDown &&
      this.states.every((st) => !st.check.critical || st.status !== 'fail');
    if (ready !== this.ready) {
      this.ready = ready;
      this.emitter.emit({ type: 'ready', from: !ready, to: ready });
    }
  }
}

function normalize(v: CheckResult, latencyMs: number, time: number): RunResult {
  if (v === false) {
    return {
      status: 'fail',
      observedValue: latencyMs,
      observedUnit: 'ms',
      output: 'check returned false',
      latencyMs,
      time,
    };
  }
  if (v === true || v === undefined || v === null || typeof v !== 'object') {
    return {
      status: 'pass',
      observedValue: latencyMs,
      observedUnit: 'ms',
      output: undefined,
      latencyMs,
      time,
    };
  }
  const raw: unknown = v.status;
  const known = raw === undefined || raw === 'pass' || raw === 'warn' || raw === 'fail';
  const status: HealthStatus = known ? ((raw as HealthStatus | undefined) ?? 'pass') : 'fail';
  const own = v.observedValue !== undefined;
  return {
    status,
    observedValue: own ? v.observedValue : latencyMs,
    observedUnit: own ? v.observedUnit : 'ms',
    output: known
      ? v.output
      : `check returned an unknown status ${JSON.stringify(raw) ?? String(raw)} (expected "pass", "warn" or "fail")${v.output === undefined ? '' : `: ${v.output}`}`,
    latencyMs,
    time,
  };
}

function messageOf(error: unknown, depth = 0): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (error.message === '' && error instanceof AggregateError && error.errors.length > 0) {
      return error.errors.map((e) => messageOf(e, depth + 1)).join('; ');
    }
    const msg = error.message || error.name;
    let out = typeof code === 'string' && !msg.includes(code) ? `${code}: ${msg}` : msg;
    // Keep the cause: fetch's 'fetch failed' says nothing without its 'connect ECONNREFUSED …'.
    if (error.cause !== undefined && depth < 3) {
      const cause = messageOf(error.cause, depth + 1);
      if (cause !== '' && !out.includes(cause)) out += `: ${cause}`;
    }
    return out;
  }
  return String(error);
}

function names(states: readonly CheckState[]): string {
  return states.map((st) => st.check.name).join(', ');
}

function worst(statuses: readonly HealthStatus[]): HealthStatus {
  let s: HealthStatus = 'pass';
  for (const x of statuses) {
    if (x === 'fail') return 'fail';
    if (x === 'warn') s = 'warn';
  }
  return s;
}

function aggregate(checks: readonly CheckSnapshot[]): HealthStatus {
  let s: HealthStatus = 'pass';
  for (const c of checks) {
    if (c.status === 'fail' && c.critical) return 'fail';
    if (c.status !== 'pass') s = 'warn';
  }
  return s;
}

/**
 * Makes a health monitor: it runs the checks in the background (timers unref'd: it never keeps
 * the process alive), and answers `snapshot()`, `healthJson()`, `probeJson('live'|'ready'|'startup')`
 * and `on('change')`. Mount it with `healthHandler`, `fastifyHealth` or `expressHealth`.
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
 * console.log(monitor.snapshot().ready); // true
 * up = false;
 * await clock.tick(1_000);
 * console.log(monitor.snapshot().status, monitor.snapshot().level); // fail critical-only
 * await monitor.close();
 * ```
 */
export function createHealthMonitor(options: HealthMonitorOptions): HealthMonitor {
  return new HealthMonitor(options);
}
