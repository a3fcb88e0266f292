/**
 * What a health check is: a function run in the background with a timeout, plus how its results
 * are reported (component, measurement, unit) and judged (thresholds, critical, liveness).
 */

import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { fn, parse, posInt, positiveMs } from './options.js';

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
  /** How many latencies to keep for p50/p90/p99. Default 100. */
  historySize?: number;
  /**
   * Counts for liveness. Only local checks may (event loop, a deadlock detector): a liveness probe
   * that depends on a shared dependency restarts every instance during that dependency's outage.
   * Default false; the dependency checks (http, tcp, postgres, redis, queue) refuse true.
   */
  liveness?: boolean;
}

/** A check ready for `createHealthMonitor({ checks })`: every option resolved. */
export interface HealthCheck {
  readonly name: string;
  readonly component: string;
  readonly componentType: ComponentType;
  readonly measurement: string;
  readonly critical: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly historySize: number;
  readonly liveness: boolean;
  /** True for checks of external dependencies (they may not count for liveness). */
  readonly dependency: boolean;
  readonly run: CheckFunction;
  /** Releases what the check holds (called by `monitor.close()`). */
  readonly close?: () => void | Promise<void>;
}

const NAME = /^[A-Za-z0-9_.\-/]+$/;

const checkSchema = z.strictObject({
  name: z
    .string()
    .regex(NAME, 'letters, digits, _ . - / only (no ":" — it separates component and measurement)'),
  component: z.string().min(1).optional(),
  componentType: z.string().min(1).optional(),
  measurement: z.string().min(1).optional(),
  critical: z.boolean().optional(),
  intervalMs: positiveMs.optional(),
  timeoutMs: positiveMs.optional(),
  failureThreshold: posInt.optional(),
  successThreshold: posInt.optional(),
  historySize: posInt.max(100_000).optional(),
  liveness: z.boolean().optional(),
  run: fn<CheckFunction>(),
  close: fn<() => void>().optional(),
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
  return Object.freeze({
    name: o.name,
    component: o.component ?? o.name,
    componentType: o.componentType ?? defaults.componentType,
    measurement: o.measurement ?? defaults.measurement ?? 'responseTime',
    critical: o.critical ?? defaults.critical ?? true,
    intervalMs: o.intervalMs ?? defaults.intervalMs ?? 10_000,
    timeoutMs: o.timeoutMs ?? 2_000,
    failureThreshold: o.failureThreshold ?? 2,
    successThreshold: o.successThreshold ?? 1,
    historySize: o.historySize ?? 100,
    liveness: o.liveness ?? false,
    dependency: defaults.dependency,
    run: o.run,
    ...(o.close === undefined ? {} : { close: o.close }),
  });
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
