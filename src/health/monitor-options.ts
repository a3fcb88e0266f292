/** The options of `createHealthMonitor()` and their schema. @module */

import type { Clock } from '../core/clock.js';
import type { Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { HealthCheck } from './check.js';
import type { DegradationOptions } from './degradation.js';
import { clockSchema, nameSchema, registrySchema } from './options.js';
import type { HealthReport } from './report.js';

/** Options of `createHealthMonitor()`. */
export interface HealthMonitorOptions {
  /** The checks (from `httpCheck`, `postgresCheck`, `customCheck`, …). Names must be unique. */
  checks: readonly HealthCheck[];
  /** Named subsets of checks, served at `/health/<group>`, e.g. `{ db: ['postgres', 'redis'] }`. */
  groups?: Record<string, readonly string[]>;
  /** Degradation rules and hysteresis, or false for none (level stays `normal`). */
  degradation?: DegradationOptions<HealthReport> | false;
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
  /** The monitor's name (as a component). Default `health`. */
  name?: string;
  /** Where the monitor and its checks register as components. */
  registry?: Registry;
  clock?: Clock;
}

/** The schema of `HealthMonitorOptions`. @internal */
export const monitorSchema = s.object({
  checks: s.array(
    s.custom<HealthCheck>('a check made by httpCheck(), customCheck(), … (from bulwark/health)', (v, path) =>
      v instanceof HealthCheck
        ? v
        : s.fail(path, 'a check made by httpCheck(), customCheck(), … (from bulwark/health)', v),
    ),
  ),
  groups: s.optional(
    s.record(s.array(s.string()), { pattern: /^[A-Za-z0-9_.-]+$/, rule: 'letters, digits, _ . - only' }),
  ),
  degradation: s.optional(
    s.custom<DegradationOptions<HealthReport> | false>('false, or degradation options', (v, path) =>
      v === false || (typeof v === 'object' && v !== null && !Array.isArray(v))
        ? (v as DegradationOptions<HealthReport> | false)
        : s.fail(path, 'false, or degradation options', v),
    ),
  ),
  autoStart: s.optional(s.boolean()),
  version: s.optional(s.string({ minLength: 0 })),
  releaseId: s.optional(s.string({ minLength: 0 })),
  serviceId: s.optional(s.string({ minLength: 0 })),
  description: s.optional(s.string({ minLength: 0 })),
  notes: s.optional(s.array(s.string({ minLength: 0 }))),
  name: s.optional(nameSchema),
  registry: s.optional(registrySchema),
  clock: s.optional(clockSchema),
});
