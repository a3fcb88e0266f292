/**
 * One run of a health check: its function under a timeout (a hung run is abandoned at the
 * timeout; at most `MAX_HUNG` abandoned runs may still be unsettled before no new one starts),
 * and the normalisation of what it returned.
 */

import type { Clock } from '../core/clock.js';
import type { CheckResult, HealthCheck, HealthStatus, LastRun } from './check.js';

/** What one run found. @internal */
export interface CheckRun extends LastRun {
  /** True when the run was abandoned at its timeout. */
  readonly timedOut: boolean;
}

/** At most this many timed-out runs of one check may still be unsettled before it stops starting new ones. */
const MAX_HUNG = 3;

const failed = (output: string, latencyMs: number, time: number, timedOut = false): CheckRun => ({
  status: 'fail',
  observedValue: undefined,
  observedUnit: undefined,
  output,
  latencyMs,
  time,
  timedOut,
});

/** Runs `c` once under its timeout. @internal */
export function runCheck(c: HealthCheck, clock: Clock): Promise<CheckRun> {
  const t0 = clock.now();
  if (c.hung >= MAX_HUNG) {
    return Promise.resolve(
      failed(
        `${c.hung} earlier runs have not ended after their ${c.timeoutMs} ms timeout; not starting another`,
        Number.NaN,
        clock.date(),
      ),
    );
  }
  const controller = new AbortController();
  c.controller = controller;
  return new Promise<CheckRun>((resolve) => {
    let done = false;
    const timer = clock.setTimeout(() => {
      if (done) return;
      done = true;
      c.hung++;
      controller.abort(new Error(`health check "${c.name}" timed out after ${c.timeoutMs} ms`));
      resolve(failed(`timed out after ${c.timeoutMs} ms`, c.timeoutMs, clock.date(), true));
    }, c.timeoutMs);
    timer.unref();
    const finish = (r: CheckRun) => {
      if (done) {
        c.hung--; // a timed-out run has ended at last
        return;
      }
      done = true;
      clock.clearTimeout(timer);
      resolve(r);
    };
    new Promise<CheckResult>((res) => res(c.run(controller.signal))).then(
      (v) => finish(normalize(v, clock.now() - t0, clock.date())),
      (error: unknown) => finish(failed(messageOf(error), clock.now() - t0, clock.date())),
    );
  });
}

function normalize(v: CheckResult, latencyMs: number, time: number): CheckRun {
  if (v === false) {
    return {
      status: 'fail',
      observedValue: latencyMs,
      observedUnit: 'ms',
      output: 'check returned false',
      latencyMs,
      time,
      timedOut: false,
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
      timedOut: false,
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
    timedOut: false,
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
