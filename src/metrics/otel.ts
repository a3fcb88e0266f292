/**
 * OpenTelemetry metrics (`@opentelemetry/api`, an optional peer): the same metrics as the
 * Prometheus exporter, as instruments of the meter `bulwark`, fed from the sink at collection
 * time. Counters and gauges are observable instruments; the duration histogram is a histogram
 * into which the calls timed since the last collection are replayed (per bucket, at the bucket's
 * exact mean, so bucket counts and the sum are exact).
 */

import { type Disposer, makeDisposer, reportError } from '../core/events.js';
import { type CallRecorder, METRIC_FAMILIES, type Metrics } from './sink.js';

// Structural types of the part of `@opentelemetry/api` used here, so the published .d.ts does not
// import the optional peer (users without it compile with skipLibCheck: false). An OTel `Meter`
// is assignable to `MeterLike`.

/** Attributes of a measurement (OTel `Attributes`, as used here). */
export type OtelAttributesLike = Readonly<Record<string, string>>;

/** An OTel observable instrument (opaque here). */
export type OtelObservableLike = object;

/** An OTel histogram, as used here. */
export interface OtelHistogramLike {
  record(value: number, attributes?: OtelAttributesLike): void;
}

/** An OTel `BatchObservableResult`, as used here. */
export interface OtelBatchObservableResultLike {
  observe(observable: OtelObservableLike, value: number, attributes?: OtelAttributesLike): void;
}

/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api`) that `otelMetrics()` uses: pass
 * any `Meter`.
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import type { MeterLike } from 'bulwark/metrics';
 * const meter: MeterLike = new MeterProvider().getMeter('bulwark');
 * ```
 */
export interface MeterLike {
  createHistogram(
    name: string,
    options?: {
      description?: string;
      unit?: string;
      advice?: { explicitBucketBoundaries?: number[] };
    },
  ): OtelHistogramLike;
  createObservableCounter(name: string, options?: { description?: string }): OtelObservableLike;
  createObservableGauge(name: string, options?: { description?: string }): OtelObservableLike;
  addBatchObservableCallback(
    callback: (result: OtelBatchObservableResultLike) => void | Promise<void>,
    observables: OtelObservableLike[],
  ): void;
  removeBatchObservableCallback(
    callback: (result: OtelBatchObservableResultLike) => void | Promise<void>,
    observables: OtelObservableLike[],
  ): void;
}

/** Options of `otelMetrics()`. */
export interface OtelOptions {
  /** The sink to export. */
  metrics: Metrics;
  /**
   * The meter (an OpenTelemetry `Meter`). Default: `metrics.getMeter('bulwark')` of
   * `@opentelemetry/api`'s global provider.
   */
  meter?: MeterLike;
}

/** Exports made so far, per meter and sink: a second `otelMetrics()` shares the first. */
const registrations = new WeakMap<MeterLike, Map<Metrics, { refs: number; stop: () => void }>>();

/**
 * The OpenTelemetry name of a family: `bulwark_calls_total` → `bulwark.calls`,
 * `bulwark_call_duration_seconds` → `bulwark.call.duration` (unit `s`).
 *
 * @example
 * ```ts
 * import { otelName } from 'bulwark/metrics';
 * console.log(otelName('bulwark_circuit_state')); // bulwark.circuit.state
 * ```
 */
export function otelName(prometheusName: string): string {
  return prometheusName
    .replace(/_total$/, '')
    .replace(/_seconds$/, '')
    .replace(/_/g, '.');
}

/**
 * Exports the sink through OpenTelemetry. Resolves to a disposer that removes the callback.
 * Calling it again for the same sink and meter does not export twice (instruments of one name
 * are one instrument in a meter: the histogram would count every call twice): it shares the
 * first export, which ends when every disposer was called.
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { createMetrics, otelMetrics } from 'bulwark/metrics';
 * const provider = new MeterProvider();
 * const stop = await otelMetrics({ metrics: createMetrics(), meter: provider.getMeter('bulwark') });
 * stop();
 * ```
 */
export async function otelMetrics(options: OtelOptions): Promise<Disposer> {
  const metrics = options?.metrics;
  if (metrics === undefined || typeof metrics.collect !== 'function')
    throw new TypeError('otelMetrics() needs { metrics }: a sink made by createMetrics()');
  let meter = options.meter;
  if (meter === undefined) {
    let api: { metrics: { getMeter(name: string): MeterLike } };
    try {
      api = (await import('@opentelemetry/api')) as unknown as typeof api;
    } catch (error) {
      throw new Error(
        'otelMetrics() needs the optional peer @opentelemetry/api: npm install @opentelemetry/api (or pass { meter })',
        {
          cause: error,
        },
      );
    }
    meter = api.metrics.getMeter('bulwark');
  }
  let byMetrics = registrations.get(meter);
  if (byMetrics === undefined) {
    byMetrics = new Map();
    registrations.set(meter, byMetrics);
  }
  const existing = byMetrics.get(metrics);
  if (existing !== undefined) {
    existing.refs++;
    return makeDisposer(() => {
      if (--existing.refs === 0) existing.stop();
    });
  }
  const observables = new Map<string, OtelObservableLike>();
  let histogram: OtelHistogramLike | null = null;
  for (const f of METRIC_FAMILIES) {
    const name = otelName(f.name);
    if (f.type === 'histogram') {
      histogram = meter.createHistogram(name, {
        description: f.help,
        unit: 's',
        advice: { explicitBucketBoundaries: [...metrics.buckets] },
      });
    } else if (f.type === 'counter') {
      observables.set(f.name, meter.createObservableCounter(name, { description: f.help }));
    } else {
      observables.set(f.name, meter.createObservableGauge(name, { description: f.help }));
    }
  }
  // What was replayed into the histogram so far, per recorder.
  const replayed = new WeakMap<CallRecorder, { counts: Float64Array; sums: Float64Array }>();
  const replay = (r: CallRecorder) => {
    if (histogram === null) return;
    let done = replayed.get(r);
    if (done === undefined) {
      done = { counts: new Float64Array(r.counts.length), sums: new Float64Array(r.counts.length) };
      replayed.set(r, done);
    }
    const attrs: OtelAttributesLike = { policy: r.policy, name: r.name };
    for (let i = 0; i < r.counts.length; i++) {
      const n = r.counts[i]! - done.counts[i]!;
      if (n <= 0) continue;
      const mean = (r.bucketSumsMs[i]! - done.sums[i]!) / n / 1000;
      for (let j = 0; j < n; j++) histogram.record(mean, attrs);
      done.counts[i] = r.counts[i]!;
      done.sums[i] = r.bucketSumsMs[i]!;
    }
  };
  const callback = async (result: OtelBatchObservableResultLike): Promise<void> => {
    try {
      for (const r of metrics.allRecorders()) replay(r);
      for (const f of await metrics.collect()) {
        if (f.type === 'histogram') continue;
        const o = observables.get(f.name);
        if (o === undefined) continue;
        for (const s of f.samples) result.observe(o, s.value, s.labels);
      }
    } catch (error) {
      reportError('bulwark/metrics OpenTelemetry collection', error);
    }
  };
  const list = [...observables.values()];
  const m = meter;
  m.addBatchObservableCallback(callback, list);
  const entry = {
    refs: 1,
    stop: () => {
      byMetrics.delete(metrics);
      m.removeBatchObservableCallback(callback, list);
    },
  };
  byMetrics.set(metrics, entry);
  return makeDisposer(() => {
    if (--entry.refs === 0) entry.stop();
  });
}
