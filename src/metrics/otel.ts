/**
 * OpenTelemetry metrics (`@opentelemetry/api`, an optional peer): every family of the registry's
 * components as an instrument of the meter `bulwark`, read from snapshots at collection time.
 * Instruments are made from the descriptor of each kind when its first component joins the
 * registry; counters and gauges are observable instruments; a component's histograms are
 * replayed into an OTel histogram with the same bucket boundaries (the observations added since
 * the last collection, per bucket, at values chosen so that the sum is exact).
 */

import { duck } from '../core/common-schemas.js';
import type { Component, ComponentDescriptor, HistogramSnapshot } from '../core/component.js';
import { type Disposer, makeDisposer, reportError } from '../core/events.js';
import { s } from '../core/schema.js';
import type { Metrics } from './metrics.js';
import { exportedValue, isMs, metricName, STATE_FAMILY, snakeCase, statesOf } from './recorder.js';

// Structural types of the part of `@opentelemetry/api` used here, so the published .d.ts does not
// import the optional peer. An OTel `Meter` is assignable to `MeterLike`.

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

/** The callback of a batch observation. */
type BatchCallback = (result: OtelBatchObservableResultLike) => void;

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
    options?: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): OtelHistogramLike;
  createObservableCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): OtelObservableLike;
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): OtelObservableLike;
  addBatchObservableCallback(callback: BatchCallback, observables: OtelObservableLike[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: OtelObservableLike[]): void;
}

/** Options of `otelMetrics()`. */
export interface OtelOptions {
  /** The metrics to export (`createMetrics({ registry })`). */
  metrics: Metrics;
  /** The meter. Default: `metrics.getMeter('bulwark')` of `@opentelemetry/api`'s global provider. */
  meter?: MeterLike;
}

const optionsSchema = s.object({
  metrics: duck<Metrics>('metrics made by createMetrics()', ['collect', 'samples']),
  meter: s.optional(
    duck<MeterLike>('an OpenTelemetry Meter', ['createObservableGauge', 'addBatchObservableCallback']),
  ),
});

/**
 * The OpenTelemetry name of a Prometheus family: `bulwark_circuit_breaker_in_flight` of kind
 * `circuitBreaker` → `bulwark.circuit_breaker.in_flight`; counters lose `_total`, histograms
 * `_seconds` (their unit is `s`), figures in ms lose `Ms` (exported in seconds, unit `s`);
 * `bulwark_component_state` → `bulwark.component.state`.
 *
 * @example
 * ```ts
 * import { otelName } from 'bulwark/metrics';
 * console.log(otelName('bulkhead', 'inFlight', 'gauge')); // bulwark.bulkhead.in_flight
 * ```
 */
export function otelName(kind: string, field: string, type: 'gauge' | 'counter' | 'histogram'): string {
  const f = type === 'histogram' ? field.replace(/Seconds$/, '') : isMs(field) ? field.slice(0, -2) : field;
  return `bulwark.${snakeCase(kind)}.${snakeCase(f)}`;
}

/**
 * Values for `n[i]` new observations per bucket whose sum is `sum`: inside each bucket
 * (`(bounds[i-1], bounds[i]]`, the last one above the last bound), at one relative position for
 * every finite bucket, the rest of the sum given to the `+Inf` bucket. The sum is exact whenever
 * some placement inside the buckets can reach it. @internal
 */
export function replayValues(bounds: readonly number[], n: readonly number[], sum: number): number[] {
  const lo = (i: number) => (i === 0 ? 0 : bounds[i - 1]!);
  let a = 0; // sum at the bottom of each finite bucket
  let b = 0; // extra sum per unit of relative position
  for (let i = 0; i < bounds.length; i++) {
    a += n[i]! * lo(i);
    b += n[i]! * (bounds[i]! - lo(i));
  }
  const inf = n[bounds.length] ?? 0;
  const top = bounds.length === 0 ? 0 : bounds[bounds.length - 1]!;
  let t = 0.5;
  if (inf === 0 && b > 0) t = Math.min(1, Math.max(1e-9, (sum - a) / b));
  else if (inf > 0 && b > 0) t = Math.min(1, Math.max(1e-9, (sum - a - inf * top * 1.000001) / b));
  const out: number[] = [];
  let used = 0;
  for (let i = 0; i < bounds.length; i++) {
    const v = lo(i) + t * (bounds[i]! - lo(i));
    out.push(v);
    used += n[i]! * v;
  }
  out.push(inf > 0 ? Math.max(top * 1.000001, (sum - used) / inf) : top);
  return out;
}

interface KindInstruments {
  readonly descriptor: ComponentDescriptor;
  readonly gauges: Map<string, OtelObservableLike>;
  readonly counters: Map<string, OtelObservableLike>;
}

/**
 * Exports a registry's components through OpenTelemetry. Resolves to a disposer that removes the
 * callbacks (instruments stay in the meter, reporting nothing more).
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { createRegistry } from 'bulwark';
 * import { createMetrics, otelMetrics } from 'bulwark/metrics';
 * const provider = new MeterProvider();
 * const stop = await otelMetrics({ metrics: createMetrics({ registry: createRegistry() }), meter: provider.getMeter('bulwark') });
 * stop();
 * ```
 */
export async function otelMetrics(options: OtelOptions): Promise<Disposer> {
  const o = optionsSchema.parse(options, 'otelMetrics');
  const meter = o.meter ?? (await globalMeter());
  const registry = o.metrics.registry;
  const kinds = new Map<string, KindInstruments>();
  const histograms = new Map<string, OtelHistogramLike>();
  /** What was replayed so far, per component and histogram. */
  const replayed = new WeakMap<Component, Map<string, { counts: number[]; sum: number }>>();
  const callbacks: { cb: BatchCallback; list: OtelObservableLike[] }[] = [];
  const state = meter.createObservableGauge(otelStateName, {
    description: 'State of each Bulwark component: 1 for its current state, 0 for the others.',
  });
  const observeOne = (c: Component, result: OtelBatchObservableResultLike): void => {
    const inst = kinds.get(c.kind);
    if (inst === undefined) return;
    const snap = c.snapshot();
    for (const st of statesOf(c.descriptor, snap.state))
      result.observe(state, st === snap.state ? 1 : 0, { kind: c.kind, name: c.name, state: st });
    const attrs = { name: c.name };
    for (const [field, o] of inst.gauges) {
      const v = snap.gauges[field];
      if (typeof v === 'number') result.observe(o, exportedValue(field, v), attrs);
    }
    for (const [field, o] of inst.counters) {
      const v = snap.counters[field];
      if (typeof v === 'number') result.observe(o, exportedValue(field, v), attrs);
    }
    for (const [field, h] of Object.entries(snap.histograms ?? {})) replay(c, field, h);
  };
  const replay = (c: Component, field: string, h: HistogramSnapshot): void => {
    const key = metricName(c.kind, 'histogram', field);
    let hist = histograms.get(key);
    if (hist === undefined) {
      hist = meter.createHistogram(otelName(c.kind, field, 'histogram'), {
        description: c.descriptor.histograms?.[field] ?? `${c.kind} ${field}`,
        unit: 's',
        advice: { explicitBucketBoundaries: [...h.bounds] },
      });
      histograms.set(key, hist);
    }
    let per = replayed.get(c);
    if (per === undefined) {
      per = new Map();
      replayed.set(c, per);
    }
    const done = per.get(field);
    const delta = h.counts.map((n, i) => n - (done?.counts[i] ?? 0));
    if (delta.some((d) => d < 0)) return void per.set(field, { counts: [...h.counts], sum: h.sum }); // reset
    const values = replayValues(h.bounds, delta, h.sum - (done?.sum ?? 0));
    const attrs = { name: c.name };
    for (let i = 0; i < delta.length; i++) for (let j = 0; j < delta[i]!; j++) hist.record(values[i]!, attrs);
    per.set(field, { counts: [...h.counts], sum: h.sum });
  };
  const addKind = (c: Component): void => {
    if (kinds.has(c.kind)) return;
    const d = c.descriptor;
    const inst: KindInstruments = { descriptor: d, gauges: new Map(), counters: new Map() };
    for (const [field, help] of Object.entries(d.gauges))
      inst.gauges.set(
        field,
        meter.createObservableGauge(otelName(c.kind, field, 'gauge'), { description: help }),
      );
    for (const [field, help] of Object.entries(d.counters))
      inst.counters.set(
        field,
        meter.createObservableCounter(otelName(c.kind, field, 'counter'), unit(field, help)),
      );
    kinds.set(c.kind, inst);
    // One batch per kind (an SDK keeps only the observations of a batch's own instruments).
    const list = [state, ...inst.gauges.values(), ...inst.counters.values()];
    const cb: BatchCallback = (result) => {
      for (const component of registry.list(c.kind)) {
        try {
          observeOne(component, result);
        } catch (error) {
          reportError(`OpenTelemetry collection of ${component.kind} ${component.name}`, error);
        }
      }
    };
    meter.addBatchObservableCallback(cb, list);
    callbacks.push({ cb, list });
  };
  const stopWatch = registry.watch(({ type, component }) => type === 'added' && addKind(component), {
    replay: true,
  });
  return makeDisposer(() => {
    stopWatch();
    for (const { cb, list } of callbacks) meter.removeBatchObservableCallback(cb, list);
  });
}

const unit = (field: string, description: string) =>
  isMs(field) ? { description, unit: 's' } : { description };

const otelStateName = STATE_FAMILY.replace(/_/g, '.');

async function globalMeter(): Promise<MeterLike> {
  try {
    const api = (await import('@opentelemetry/api')) as unknown as {
      metrics: { getMeter(name: string): MeterLike };
    };
    return api.metrics.getMeter('bulwark');
  } catch (error) {
    throw new Error(
      'otelMetrics() needs the optional peer @opentelemetry/api: npm install @opentelemetry/api (or pass { meter })',
      { cause: error },
    );
  }
}
