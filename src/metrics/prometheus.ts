/**
 * Prometheus exposition through prom-client (an optional peer): the sink's families are
 * registered as custom metrics whose values are read at scrape time, so the hot path never calls
 * prom-client.
 */

import { METRIC_FAMILIES, type MetricFamily, type Metrics } from './sink.js';

/**
 * What an HTTP handler serves at `/metrics`: `bulwark/health`'s handlers take it as `metrics`.
 *
 * @example
 * ```ts
 * import { createMetrics, type MetricsExporter, prometheusExporter } from 'bulwark/metrics';
 * const exporter: MetricsExporter = prometheusExporter({ metrics: createMetrics() });
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
  /** The sink to export. */
  metrics: Metrics;
  /**
   * A prom-client `Registry` to add Bulwark's metrics to (so one `/metrics` serves yours and
   * ours). Default: a new Registry, made on the first scrape (prom-client loaded then).
   */
  registry?: PromRegistryLike;
}

interface PromValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A prom-client custom metric: `get()` is called by the registry at scrape time. */
class CollectedMetric {
  /** The prom-client-visible name: an OpenMetrics registry renames it in place (drops `_total`). */
  name: string;
  /** The family this metric reads, whatever prom-client did to `name`. */
  readonly #family: string;

  constructor(
    family: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly read: () => Promise<readonly MetricFamily[]>,
  ) {
    this.name = family;
    this.#family = family;
  }

  /** `registry.resetMetrics()` calls this: the values live in the sink, nothing to reset here. */
  reset(): void {}

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    values: PromValue[];
    aggregator: string;
  }> {
    const families = await this.read();
    const f = families.find((x) => x.name === this.#family);
    const values: PromValue[] = [];
    if (f !== undefined && f.type === 'histogram') {
      for (const s of f.samples) {
        s.bounds.forEach((b, i) => {
          values.push({
            metricName: `${f.name}_bucket`,
            labels: { ...s.labels, le: b },
            value: s.cumulative[i]!,
          });
        });
        values.push({ metricName: `${f.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
        values.push({ metricName: `${f.name}_sum`, labels: { ...s.labels }, value: s.sum });
        values.push({ metricName: `${f.name}_count`, labels: { ...s.labels }, value: s.count });
      }
    } else if (f !== undefined) {
      for (const s of f.samples) values.push({ labels: { ...s.labels }, value: s.value });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

/**
 * Registers the sink's metrics in `registry` (a prom-client Registry). Values are read from the
 * sink when the registry is scraped; one scrape reads the sink once.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { createMetrics, registerPrometheus } from 'bulwark/metrics';
 * const registry = new Registry();
 * registerPrometheus(createMetrics(), registry);
 * console.log((await registry.metrics()).includes('bulwark_calls_total'));
 * ```
 */
export function registerPrometheus(metrics: Metrics, registry: PromRegistryLike): void {
  let pending: Promise<MetricFamily[]> | null = null;
  const read = (): Promise<MetricFamily[]> => {
    if (pending === null) {
      const p = metrics.collect();
      pending = p;
      // Every get() of one registry.metrics() call starts synchronously, so they share this read.
      p.then(
        () => {
          if (pending === p) pending = null;
        },
        () => {
          if (pending === p) pending = null;
        },
      );
    }
    return pending;
  };
  for (const f of METRIC_FAMILIES)
    registry.registerMetric(new CollectedMetric(f.name, f.help, f.type, read) as never);
}

/**
 * Makes the Prometheus exporter: `() => Promise<{ contentType, body }>`, ready for an HTTP
 * handler (`bulwark/health`'s `metrics` option, or your own route).
 *
 * @example
 * ```ts
 * import { createMetrics, prometheusExporter } from 'bulwark/metrics';
 * const exporter = prometheusExporter({ metrics: createMetrics() });
 * const { contentType, body } = await exporter();
 * console.log(contentType); // text/plain; version=0.0.4; charset=utf-8
 * ```
 */
export function prometheusExporter(options: PrometheusExporterOptions): MetricsExporter {
  const metrics = options?.metrics;
  if (metrics === undefined || typeof metrics.collect !== 'function')
    throw new TypeError('prometheusExporter() needs { metrics }: a sink made by createMetrics()');
  let ready: Promise<PromRegistryLike> | null = null;
  const setup = async (): Promise<PromRegistryLike> => {
    let registry = options.registry;
    if (registry === undefined) {
      let prom: { Registry: new () => PromRegistryLike };
      try {
        prom = (await import('prom-client')) as unknown as { Registry: new () => PromRegistryLike };
      } catch (error) {
        throw new Error(
          'prometheusExporter() needs the optional peer prom-client: npm install prom-client (or pass { registry })',
          { cause: error },
        );
      }
      registry = new prom.Registry();
    }
    registerPrometheus(metrics, registry);
    return registry;
  };
  return async () => {
    if (ready === null) {
      ready = setup();
      ready.catch(() => {
        ready = null;
      });
    }
    const registry = await ready;
    return { contentType: registry.contentType, body: await registry.metrics() };
  };
}
