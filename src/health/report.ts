/**
 * The monitor's report: the statuses of the monitor and of each check, as the degradation rules
 * read them, and how they combine.
 */

import type { ComponentType, HealthCheck, HealthStatus } from './check.js';
import type { DegradationLevel } from './degradation.js';
import type { LatencyPercentiles } from './latency.js';

/** One check in a `HealthReport`. */
export interface CheckReport {
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

/** The monitor's report at one moment: what the degradation rules read. */
export interface HealthReport {
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
  readonly checks: readonly CheckReport[];
}

/** The report of one check. @internal */
export function checkReport(c: HealthCheck): CheckReport {
  return {
    name: c.name,
    component: c.component,
    status: c.status === 'pending' ? 'warn' : c.status,
    critical: c.critical,
    latencyMs: c.percentiles(),
    consecutiveFailures: c.consecutiveFailures,
    pending: c.status === 'pending',
    liveness: c.liveness,
    measurement: c.measurement,
    componentType: c.componentType,
    output: c.last?.output,
  };
}

/** The worst of the statuses. @internal */
export function worst(statuses: readonly HealthStatus[]): HealthStatus {
  let s: HealthStatus = 'pass';
  for (const x of statuses) {
    if (x === 'fail') return 'fail';
    if (x === 'warn') s = 'warn';
  }
  return s;
}

/** A critical check failing → `fail`; any other failure, warning or pending check → `warn`. @internal */
export function aggregate(checks: readonly CheckReport[]): HealthStatus {
  let s: HealthStatus = 'pass';
  for (const c of checks) {
    if (c.status === 'fail' && c.critical) return 'fail';
    if (c.status !== 'pass') s = 'warn';
  }
  return s;
}
