/**
 * What a health check is: a function run in the background with a timeout, plus how its results
 * are reported (component, measurement, unit) and judged (thresholds, critical, liveness). A
 * check is a component (`healthCheck`): its state is its judged status, its snapshot holds its
 * latency percentiles and run counters, and each change of status is a `stateChange` event.
 */

import type { Clock } from '../core/clock.js';
import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import { eventBase, type StateChange } from '../core/component-kit.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { type CheckRun, runCheck } from './check-run.js';
import { type LatencyPercentiles, LatencyWindow } from './latency.js';
import { fn, parse, posInt, positiveMs, registrySchema } from './options.js';
import type { ForcedStatus } from './override.js';

/** The three statuses of `application/health+json`. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** `componentType` of health+json: `component`, `datastore` or `system` (or your own word). */
export type ComponentType = 'component' | 'datastore' | 'system' | (string & {});

/** What one run of a check found. Missing fields default: status `pass`, observedValue the run's latency in ms. */
export interface CheckOutcome {
  readonly status?: HealthStatus;
  /** Any JSON value (a number, a string, …). Default: the run's duration. */
  readonly observedValue?: unknown;
  /** Unit of `observedValue`, e.g. `ms`, `percent`. Default `ms` when observedValue is the latency. */
  readonly observedUnit?: string;
  /** A human-readable explanation, shown only where details are allowed. */
  readonly output?: string;
}

/**
 * The function a check runs. It gets an `AbortSignal` aborted at the check's timeout (stop work
 * then). It passes by returning nothing or `true`; `false` or a throw fails it (the error's message
 * becomes the output); a `CheckOutcome` says more.
 */
export type CheckFunction = (signal: AbortSignal) => CheckResult | Promise<CheckResult>;

/** What a check's function returns: nothing or `true` passes, `false` fails, a `CheckOutcome` says more. */
// biome-ignore lint/suspicious/noConfusingVoidType: a check may be `async () => { await ping(); }`
export type CheckResult = CheckOutcome | boolean | undefined | void;

/** Options shared by every check. */
export interface CheckOptions {
  /** Unique name of the check (also the default `componentId`). */
  name?: string;
  /** `componentId` of health+json and the first half of the `checks` key. Default the name. */
  component?: string;
  /** Default depends on the check (`datastore` for databases, else `component`). */
  componentType?: ComponentType;
  /** The second half of the `checks` key (`component:measurement`). Default `responseTime`. */
  measurement?: string;
  /**
   * A critical check gates readiness and startup, and its failure degrades the service to
   * `critical-only`. Default true (false for `breakerCheck`).
   */
  critical?: boolean;
  /** Time between the end of a run and the start of the next. Default 10 000 ms. */
  intervalMs?: number;
  /** A run that takes longer is reported `fail` ("timed out after N ms"). Default 2 000 ms. */
  timeoutMs?: number;
  /** Consecutive failed runs before a passing check is reported `fail`. Default 2. */
  failureThreshold?: number;
  /** Consecutive passing runs before a failed check is reported `pass` again. Default 1. */
  successThreshold?: number;
  /**
   * p50/p90/p99 cover the runs of the last `latencyWindowMs` to 2 × `latencyWindowMs` (a
   * fixed-memory quantile sketch, values within ~4.4 %). Default 600 000 (10 min).
   */
  latencyWindowMs?: number;
  /**
   * Counts for liveness. Only local checks may (event loop, a deadlock detector): a liveness probe
   * that depends on a shared dependency restarts every instance during that dependency's outage.
   * Default false; the dependency checks (http, tcp, postgres, redis, queue) refuse true.
   */
  liveness?: boolean;
  /** Where the check registers as a component (a monitor also registers its checks in its own). */
  registry?: Registry;
}

/** States of a health check: its judged status, or `pending` before its first run. */
export type HealthCheckState = HealthStatus | 'pending';

/** Events of a health check: each change of its judged status. */
export type HealthCheckEvent = EventBase & {
  readonly kind: 'healthCheck';
  /** The last run's output (may hold details; logs scrub secrets). */
  readonly output: string | undefined;
} & StateChange<HealthCheckState>;

// Deliberate repetition: event-map augmentation and descriptor literal, as every component has (the
// same keys; the values differ in meaning).
declare module '../core/events.js' {
  interface PolicyEventMap {
    healthCheck: HealthCheckEvent;
  }
}

/**
 * What a health check reports as a component.
 *
 * @example
 * ```ts
 * import { HEALTH_CHECK_DESCRIPTOR } from 'bulwark/health';
 * console.log(HEALTH_CHECK_DESCRIPTOR.states); // [ 'pass', 'warn', 'fail', 'pending' ]
 * ```
 */
export const HEALTH_CHECK_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'healthCheck',
  help: 'A health check run in the background: its judged status, latency and runs.',
  category: 'health',
  states: ['pass', 'warn', 'fail', 'pending'],
  gauges: {
    critical: '1 when the check gates readiness (critical), else 0.',
    consecutiveFailures: 'Failed runs in a row.',
    latencyP50Ms: 'Median run latency over the latency window, ms.',
    latencyP90Ms: '90th percentile run latency over the latency window, ms.',
    latencyP99Ms: '99th percentile run latency over the latency window, ms.',
  },
  counters: {
    runs: 'Runs that ended (including timed-out ones).',
    failures: 'Runs that failed (including timed-out ones).',
    timeouts: 'Runs abandoned at their timeout.',
  },
});

const NAME = /^[A-Za-z0-9_.\-/]+$/;

const checkSchema = s.object({
  name: s.string({
    pattern: NAME,
    patternRule: 'letters, digits, _ . - / only (no ":" — it separates component and measurement)',
  }),
  component: s.optional(s.string()),
  componentType: s.optional(s.string()),
  measurement: s.optional(s.string()),
  critical: s.optional(s.boolean()),
  intervalMs: s.optional(positiveMs),
  timeoutMs: s.optional(positiveMs),
  failureThreshold: s.optional(posInt),
  successThreshold: s.optional(posInt),
  latencyWindowMs: s.optional(positiveMs),
  liveness: s.optional(s.boolean()),
  registry: s.optional(registrySchema),
  run: fn<CheckFunction>(),
  close: s.optional(fn<() => void | Promise<void>>()),
});

/** Internal: the defaults a factory chooses. @internal */
export interface CheckDefaults {
  readonly componentType: ComponentType;
  readonly measurement?: string;
  readonly critical?: boolean;
  readonly intervalMs?: number;
  readonly dependency: boolean;
}

/** Options of `customCheck()`. */
export interface CustomCheckOptions extends CheckOptions {
  /** Required: unique name. */
  name: string;
  /** The check. */
  run: CheckFunction;
}

/** The settings of a check, every option resolved. */
interface CheckSettings {
  readonly name: string;
  readonly component: string;
  readonly componentType: ComponentType;
  readonly measurement: string;
  readonly critical: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly latencyWindowMs: number;
  readonly liveness: boolean;
  readonly dependency: boolean;
  readonly run: CheckFunction;
  readonly close?: () => void | Promise<void>;
}

/** The last run of a check, as the monitor reports it. */
export interface LastRun {
  readonly status: HealthStatus;
  readonly observedValue: unknown;
  readonly observedUnit: string | undefined;
  readonly output: string | undefined;
  readonly latencyMs: number;
  /** Wall-clock ms. */
  readonly time: number;
}

/**
 * A health check, ready for `createHealthMonitor({ checks })`: its settings, and (once a
 * monitor runs it) its state. Made by `httpCheck`, `postgresCheck`, `customCheck`, … A check
 * belongs to one monitor.
 *
 * @example
 * ```ts
 * import { customCheck, type HealthCheck } from 'bulwark/health';
 * const check: HealthCheck = customCheck({ name: 'self', run: () => true });
 * console.log(check.snapshot().state); // pending
 * ```
 */
export class HealthCheck implements CheckSettings {
  readonly kind = 'healthCheck' as const;
  readonly descriptor: ComponentDescriptor = HEALTH_CHECK_DESCRIPTOR;
  readonly name!: string;
  readonly component!: string;
  readonly componentType!: ComponentType;
  readonly measurement!: string;
  readonly critical!: boolean;
  readonly intervalMs!: number;
  readonly timeoutMs!: number;
  readonly failureThreshold!: number;
  readonly successThreshold!: number;
  readonly latencyWindowMs!: number;
  readonly liveness!: boolean;
  /** True for checks of external dependencies (they may not count for liveness). */
  readonly dependency!: boolean;
  readonly run!: CheckFunction;
  /** Releases what the check holds (called by `monitor.close()`). */
  readonly close?: () => void | Promise<void>;
  private readonly emitter = new PolicyEmitter<HealthCheckEvent>();
  private judged: HealthCheckState = 'pending';
  private lastRun: LastRun | undefined;
  private failuresInRow = 0;
  private successesInRow = 0;
  private passed = false;
  private readonly counts = { runs: 0, failures: 0, timeouts: 0 };
  private latency: LatencyWindow | undefined;
  /** An operator's override of the status (set and ended by the monitor). @internal */
  forced: ForcedStatus | undefined;
  /** The monitor running this check. @internal */
  owner: object | undefined;
  /** Runs still unsettled after their timeout. @internal */
  hung = 0;
  /** The controller of the run in progress. @internal */
  controller: AbortController | undefined;

  /** @internal Use the factories (`customCheck`, `httpCheck`, …). */
  constructor(settings: CheckSettings, registry: Registry | undefined) {
    Object.assign(this, settings);
    joinRegistry(registry, this);
  }

  /** The judged status (`pending` before the first run), or the status an operator forced. */
  get status(): HealthCheckState {
    return this.forced?.status ?? this.judged;
  }

  /** The last run, if any. */
  get last(): LastRun | undefined {
    return this.lastRun;
  }

  // Deliberate repetition: read-only getters over private fields (one per figure), as other components
  // expose theirs.
  /** Failed runs in a row. */
  get consecutiveFailures(): number {
    return this.failuresInRow;
  }

  /** Passing runs in a row. */
  get consecutiveSuccesses(): number {
    return this.successesInRow;
  }

  /** True once the check has passed (or warned) once. */
  get passedOnce(): boolean {
    return this.passed;
  }

  /** p50/p90/p99 of the recent runs, or null before the first run. */
  percentiles(): LatencyPercentiles | null {
    return this.latency?.percentiles() ?? null;
  }

  /** Subscribes to the check's status changes. */
  onEvent(listener: Listener<HealthCheckEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** The check as a component: its status, latency percentiles and run counters. */
  snapshot(): Snapshot {
    const p = this.percentiles();
    return {
      kind: this.kind,
      name: this.name,
      state: this.status,
      gauges: {
        critical: this.critical ? 1 : 0,
        consecutiveFailures: this.failuresInRow,
        ...(p === null ? {} : { latencyP50Ms: p.p50, latencyP90Ms: p.p90, latencyP99Ms: p.p99 }),
      },
      counters: { ...this.counts },
      details: {
        component: this.component,
        measurement: this.measurement,
        liveness: this.liveness,
        intervalMs: this.intervalMs,
        timeoutMs: this.timeoutMs,
        ...(this.forced === undefined ? {} : { judged: this.judged, override: this.forced.override }),
      },
    };
  }

  /** Runs the check once (bounded by its timeout). @internal */
  execute(clock: Clock): Promise<CheckRun> {
    this.latency ??= new LatencyWindow(this.latencyWindowMs, clock);
    return runCheck(this, clock);
  }

  /** Judges one run with the thresholds; returns true when the status changed. @internal */
  record(r: CheckRun): boolean {
    this.counts.runs++;
    if (r.timedOut) this.counts.timeouts++;
    if (r.status === 'fail') this.counts.failures++;
    if (!Number.isNaN(r.latencyMs)) this.latency?.add(r.latencyMs);
    this.lastRun = r;
    if (r.status === 'fail') {
      this.failuresInRow++;
      this.successesInRow = 0;
    } else {
      this.successesInRow++;
      this.failuresInRow = 0;
    }
    const from = this.judged;
    let to: HealthStatus;
    if (from === 'pending') to = r.status;
    else if (r.status === 'fail')
      to = from === 'fail' || this.failuresInRow >= this.failureThreshold ? 'fail' : from;
    else to = from !== 'fail' || this.successesInRow >= this.successThreshold ? r.status : 'fail';
    this.judged = to;
    if (to !== 'fail') this.passed = true;
    if (to === from) return false;
    if (this.emitter.wants('stateChange'))
      this.emitter.emit({
        ...eventBase('healthCheck', this.name),
        event: 'stateChange',
        from,
        to,
        output: r.output,
      });
    return true;
  }
}

/** Builds a `HealthCheck` from options and a factory's defaults. @internal */
export function makeCheck(
  owner: string,
  options: CheckOptions & { run: CheckFunction; close?: () => void | Promise<void> },
  defaults: CheckDefaults,
): HealthCheck {
  const o = parse(owner, checkSchema, options);
  if (defaults.dependency && o.liveness === true) {
    throw new ConfigError(
      `${owner}.liveness`,
      'false',
      true,
      `${owner}.liveness must not be true: a liveness probe must not depend on an external dependency (its outage would restart every instance); let it gate readiness instead`,
    );
  }
  return new HealthCheck(
    {
      name: o.name,
      component: o.component ?? o.name,
      componentType: o.componentType ?? defaults.componentType,
      measurement: o.measurement ?? defaults.measurement ?? 'responseTime',
      critical: o.critical ?? defaults.critical ?? true,
      intervalMs: o.intervalMs ?? defaults.intervalMs ?? 10_000,
      timeoutMs: o.timeoutMs ?? 2_000,
      failureThreshold: o.failureThreshold ?? 2,
      successThreshold: o.successThreshold ?? 1,
      latencyWindowMs: o.latencyWindowMs ?? 600_000,
      liveness: o.liveness ?? false,
      dependency: defaults.dependency,
      run: o.run,
      ...(o.close === undefined ? {} : { close: o.close }),
    },
    o.registry,
  );
}

/**
 * A check of your own: `run(signal)` passes, fails (throw or `false`) or says more with a
 * `CheckOutcome`. Local checks may count for liveness (`liveness: true`).
 *
 * @example
 * ```ts
 * import { customCheck } from 'bulwark/health';
 * let lastTick = Date.now();
 * const worker = customCheck({
 *   name: 'scheduler',
 *   liveness: true,
 *   run: () => {
 *     const age = Date.now() - lastTick;
 *     return { status: age < 60_000 ? 'pass' : 'fail', observedValue: age, observedUnit: 'ms' };
 *   },
 * });
 * console.log(worker.name, worker.critical); // scheduler true
 * ```
 */
export function customCheck(options: CustomCheckOptions): HealthCheck {
  return makeCheck('customCheck', options, { componentType: 'component', dependency: false });
}
