/**
 * The `application/health+json` document (draft-inadarei-api-health-check-06) of a set of checks:
 * what `/health`, `/health/<group>` and the probes answer. Details (observed values, outputs,
 * version, releaseId, notes) are included only when asked.
 */

import type { HealthCheck, HealthStatus } from './check.js';

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

/** The document's service fields. @internal */
export interface HealthMeta {
  readonly version?: string;
  readonly releaseId?: string;
  readonly serviceId?: string;
  readonly description?: string;
  readonly notes?: readonly string[];
}

/** The document of `checks` with `status` and `output`. @internal */
export function healthDocument(
  meta: HealthMeta,
  status: HealthStatus,
  output: string | undefined,
  checks: readonly HealthCheck[],
  details: boolean,
  nowMs: number,
): HealthJson {
  const doc: HealthJson = { status };
  if (details && meta.version !== undefined) doc.version = meta.version;
  if (details && meta.releaseId !== undefined) doc.releaseId = meta.releaseId;
  if (meta.serviceId !== undefined) doc.serviceId = meta.serviceId;
  if (meta.description !== undefined) doc.description = meta.description;
  if (details && meta.notes !== undefined) doc.notes = [...meta.notes];
  if (details && output !== undefined && output !== '') doc.output = output;
  const out: Record<string, HealthJsonCheck[]> = {};
  for (const c of checks) {
    const key = `${c.component}:${c.measurement}`;
    const last = c.last;
    const entry: HealthJsonCheck = {
      componentId: c.component,
      componentType: c.componentType,
      status: c.status === 'pending' ? 'warn' : c.status,
      time: new Date(last?.time ?? nowMs).toISOString(),
    };
    if (details && c.forced !== undefined) {
      const o = c.forced.override;
      entry.output = `forced ${o.value} by ${o.actor} until ${new Date(o.until).toISOString()}: ${o.reason}`;
    } else if (details) {
      if (last === undefined) {
        entry.output = 'not checked yet';
      } else {
        if (last.observedValue !== undefined) entry.observedValue = last.observedValue;
        if (last.observedUnit !== undefined) entry.observedUnit = last.observedUnit;
        // The draft: output SHOULD be omitted for `pass` — kept only for the note that a failing
        // run has not yet reached the failure threshold.
        const o = entry.status === 'pass' && last.status === 'pass' ? undefined : describeOutput(c);
        if (o !== undefined) entry.output = o;
      }
    }
    const list = out[key];
    if (list === undefined) out[key] = [entry];
    else list.push(entry);
  }
  doc.checks = out;
  return doc;
}

/** The last output, with a note when the judged status differs from the last run's. */
function describeOutput(c: HealthCheck): string | undefined {
  const last = c.last!;
  if (c.status === last.status) return last.output;
  const note =
    last.status === 'fail'
      ? `failed ${c.consecutiveFailures} of ${c.failureThreshold} consecutive runs before reporting fail`
      : `passed ${c.consecutiveSuccesses} of ${c.successThreshold} consecutive runs before reporting pass`;
  return last.output === undefined ? note : `${last.output} (${note})`;
}
