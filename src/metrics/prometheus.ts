/**
 * Prometheus exposition through prom-client (an optional peer). At each scrape the registry's
 * components are read once (`metrics.collect()`); a family seen for the first time is added to
 * the prom-client registry as a custom metric whose values come from that read. The hot path
 * never calls prom-client.
 */

import { duck } from '../core/common-schemas.js';
import { s } from '../core/schema.js';
import type { Metrics } from './metrics.js';
import { flatten, type MetricFamily } from './recorder.js';

/**
 * What an HTTP handler serves at `/metrics`: `bulwark/health`'s handlers take it as `metrics`.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createMetrics, type MetricsExporter, prometheusExporter } from 'bulwark/metrics';
 * const exporter: MetricsExporter = prometheusExporter({ metrics: createMetrics({ registry: createRegistry() }) });
 * const { contentType, body } = await exporter();
 * ```
 */
export type MetricsExporter = () => Promise<{ contentType: string; body: string }>;

/** The part of a prom-client `Registry` the exporter uses. */
export interface PromRegistryLike {
  readonly contentType: string;
  registerMetric(metric: never): void;
  metrics(): Promise<string>;
}

/** Options of `prometheusExporter()`. */
export interface PrometheusExporterOptions {
  /** The metrics to export (`createMetrics({ registry })`). */
  metrics: Metrics;
  /**
   * A prom-client `Registry` to add Bulwark's metrics to (so one `/metrics` serves yours and
   * ours). Default: a new Registry, made on the first scrape (prom-client loaded then).
   */
  promRegistry?: PromRegistryLike;
}

const metricsSchema = duck<Metrics>('metrics made by createMetrics()', ['collect', 'samples']);
const optionsSchema = s.object({
  metrics: metricsSchema,
  promRegistry: s.optional(duck<PromRegistryLike>('a prom-client Registry', ['registerMetric', 'metrics'])),
});

interface PromValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** prom-client custom metric: `get()` is called by the registry at scrape time. */
class FamilyMetric {
  /** The prom-client-visible name: an OpenMetrics registry renames it in place (drops `_total`). */
  name: string;
  readonly #family: string;

  constructor(
    family: MetricFamily,
    private readonly read: () => readonly MetricFamily[],
  ) {
    this.name = family.name;
    this.#family = family.name;
    this.help = family.help;
    this.type = family.type;
  }
  readonly help: string;
  readonly type: string;

  /** `registry.resetMetrics()` calls this: the values live in the components. */
  reset(): void {}

  get(): { name: string; help: string; type: string; values: PromValue[]; aggregator: string } {
    const f = this.read().find((x) => x.name === this.#family);
    const hist = f?.type === 'histogram';
    // Histogram series carry their own names (`_bucket`, `_sum`, `_count`); others take the
    // metric's (which an OpenMetrics registry may have renamed).
    const values: PromValue[] = flatten(f === undefined ? [] : [f]).map((x) => ({
      ...(hist ? { metricName: x.name } : {}),
      labels: { ...x.labels },
      value: x.value,
    }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

/**
 * Binds `metrics` to a prom-client registry: call the returned function before each
 * `promRegistry.metrics()` to read the components once and add the families not seen before.
 * `prometheusExporter()` does it for you.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { createRegistry } from 'bulwark';
 * import { createMetrics, registerPrometheus } from 'bulwark/metrics';
 * const promRegistry = new Registry();
 * const refresh = registerPrometheus(createMetrics({ registry: createRegistry() }), promRegistry);
 * refresh();
 * console.log(await promRegistry.metrics()); // '' (or your own metrics)
 * ```
 */
export function registerPrometheus(metrics: Metrics, promRegistry: PromRegistryLike): () => void {
  const m = metricsSchema.parse(metrics, 'registerPrometheus.metrics');
  const registered = new Set<string>();
  let last: readonly MetricFamily[] = [];
  const read = () => last;
  return () => {
    last = m.collect();
    for (const f of last) {
      if (registered.has(f.name)) continue;
      registered.add(f.name);
      promRegistry.registerMetric(new FamilyMetric(f, read) as never);
    }
  };
}

async function loadPromRegistry(): Promise<PromRegistryLike> {
  try {
    const prom = (await import('prom-client')) as unknown as { Registry: new () => PromRegistryLike };
    return new prom.Registry();
  } catch (error) {
    throw new Error(
      'prometheusExporter() needs the optional peer prom-client: npm install prom-client (or pass { promRegistry })',
      { cause: error },
    );
  }
}

/**
 * Makes the Prometheus exporter: `() => Promise<{ contentType, body }>`, ready for an HTTP
 * handler (`bulwark/health`'s `metrics` option, or your own route). Each call reads every
 * component of the registry once.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createMetrics, prometheusExporter } from 'bulwark/metrics';
 * const exporter = prometheusExporter({ metrics: createMetrics({ registry: createRegistry() }) });
 * const { contentType } = await exporter();
 * console.log(contentType); // text/plain; version=0.0.4; charset=utf-8
 * ```
 */
export function prometheusExporter(options: PrometheusExporterOptions): MetricsExporter {
  const o = optionsSchema.parse(options, 'prometheusExporter');
  let ready: Promise<{ promRegistry: PromRegistryLike; refresh: () => void }> | null = null;
  const setup = async () => {
    const promRegistry = o.promRegistry ?? (await loadPromRegistry());
    return { promRegistry, refresh: registerPrometheus(o.metrics, promRegistry) };
  };
  return async () => {
    if (ready === null) {
      ready = setup();
      ready.catch(() => {
        ready = null;
      });
    }
    const { promRegistry, refresh } = await ready;
    refresh();
    return { contentType: promRegistry.contentType, body: await promRegistry.metrics() };
  };
}
