/**
 * `createMetrics({ registry })`: the metrics of every component of a registry, read from their
 * snapshots when asked (a scrape, an alert evaluation). Nothing runs per call: components keep
 * their own counters and histograms, and the exporters (Prometheus, OpenTelemetry) read them here.
 */

import { type Clock, systemClock } from '../core/clock.js';
import { clockSchema, registrySchema } from '../core/common-schemas.js';
import { readRegistryDurations } from '../core/durations.js';
import { defaultRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { collectFamilies, flatten, type MetricFamily, type NamedSample } from './recorder.js';

/** Options of `createMetrics()`. */
export interface MetricsOptions {
  /** The components to export. Default `defaultRegistry`. */
  registry?: Registry;
  /** The clock of evaluations that read these metrics (alerts, SLOs). Default `systemClock`. */
  clock?: Clock;
}

const optionsSchema = s.object({
  registry: s.optional(registrySchema),
  clock: s.optional(clockSchema),
});

/**
 * The metrics of a registry's components. Made by `createMetrics()`.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createMetrics, type Metrics } from 'bulwark/metrics';
 * const metrics: Metrics = createMetrics({ registry: createRegistry() });
 * console.log(metrics.collect()); // []
 * ```
 */
export interface Metrics {
  /** The registry read. */
  readonly registry: Registry;
  /** The clock alert managers and SLOs made over these metrics use by default. */
  readonly clock: Clock;
  /** Reads every component now into metric families (one `snapshot()` per component). */
  collect(): MetricFamily[];
  /** `collect()`, flattened into named samples (histograms as `_bucket{le}`, `_sum`, `_count`). */
  samples(): NamedSample[];
}

/**
 * Makes the metrics of a registry (whose pipelines then time every execution, for as long as
 * the registry lives: metrics are made once per registry and never released; see
 * `Registry.readDurations`). Export them with `prometheusExporter({ metrics })` or
 * `otelMetrics({ metrics })`; evaluate alert rules over them with `createAlerts({ metrics })`.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createAlerts, createMetrics, prometheusExporter } from 'bulwark/metrics';
 * const registry = createRegistry();
 * const metrics = createMetrics({ registry });
 * createAlerts({ metrics, registry }); // the alert manager is a component too
 * const { body } = await prometheusExporter({ metrics })();
 * console.log(body.includes('bulwark_component_state{kind="alertManager"')); // true
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const o = optionsSchema.parse(options, 'createMetrics');
  const registry = o.registry ?? defaultRegistry;
  // Metrics read durations: the registry's pipelines time every execution from now on.
  readRegistryDurations(registry);
  return {
    registry,
    clock: o.clock ?? systemClock,
    collect: () => collectFamilies(registry),
    samples: () => flatten(collectFamilies(registry)),
  };
}
