/**
 * The recorder: reads every component of a registry — its snapshot and its kind's descriptor —
 * into metric families at scrape time. Nothing here knows a component kind: names, help texts,
 * states, counters, gauges and histograms all come from `Component.descriptor` and
 * `Component.snapshot()` (see docs/conventions.md), so a new component gets metrics by
 * implementing the interface.
 *
 * Names: `bulwark_component_state{kind,name,state}` (1 for the current state, 0 for the other
 * states of the descriptor), `bulwark_<kind>_<gauge>{name}`, `bulwark_<kind>_<counter>_total{name}`
 * and `bulwark_<kind>_<histogram>_seconds{name}` (camelCase turned to snake_case; a histogram
 * name's own `Seconds` suffix is dropped first). A gauge or counter in milliseconds (`…Ms`) is
 * exported in seconds (`…_seconds`, value ÷ 1000), as Prometheus wants base units.
 */

import type { ComponentDescriptor, HistogramSnapshot, Snapshot } from '../core/component.js';
import { reportError } from '../core/events.js';
import type { Registry } from '../core/registry.js';

/** One sample of a counter or gauge. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One series of a histogram: cumulative counts per upper bound (`+Inf` last), sum and count. */
export interface HistogramSample {
  readonly labels: Readonly<Record<string, string>>;
  /** Upper bounds, seconds (without `+Inf`). */
  readonly bounds: readonly number[];
  /** Cumulative counts, one per bound plus `+Inf`. */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** What a family measures, for the exporters (OpenTelemetry instruments are made from it). */
export interface FamilySource {
  /** The component kind (`undefined` for `bulwark_component_state`). */
  readonly kind: string | undefined;
  /** The snapshot field (`gauges.inFlight` → `inFlight`), or `state`. */
  readonly field: string;
}

/** A metric family as collected. */
export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly source: FamilySource;
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly source: FamilySource;
      readonly samples: readonly HistogramSample[];
    };

/** A flat sample with its metric name (histograms as `_bucket{le}`, `_sum`, `_count`). */
export interface NamedSample extends Sample {
  readonly name: string;
}

/**
 * The name of the state family.
 *
 * @example
 * ```ts
 * import { STATE_FAMILY } from 'bulwark/metrics';
 * console.log(STATE_FAMILY); // bulwark_component_state
 * ```
 */
export const STATE_FAMILY = 'bulwark_component_state';
const STATE_HELP =
  'State of each Bulwark component: 1 for its current state, 0 for the other states its kind can report.';

/**
 * `inFlight` → `in_flight`, `circuitBreaker` → `circuit_breaker`, `p99Ms` → `p99_ms`; characters
 * not allowed in a Prometheus name become `_`.
 *
 * @example
 * ```ts
 * import { snakeCase } from 'bulwark/metrics';
 * console.log(snakeCase('circuitBreaker'), snakeCase('inFlight')); // circuit_breaker in_flight
 * ```
 */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
}

/**
 * The Prometheus name of a component figure.
 *
 * @example
 * ```ts
 * import { metricName } from 'bulwark/metrics';
 * console.log(metricName('bulkhead', 'gauge', 'inFlight')); // bulwark_bulkhead_in_flight
 * console.log(metricName('pipeline', 'counter', 'successes')); // bulwark_pipeline_successes_total
 * console.log(metricName('pipeline', 'histogram', 'durationSeconds')); // bulwark_pipeline_duration_seconds
 * console.log(metricName('healthCheck', 'gauge', 'latencyP99Ms')); // bulwark_health_check_latency_p99_seconds
 * ```
 */
export function metricName(kind: string, type: 'gauge' | 'counter' | 'histogram', field: string): string {
  const base = `bulwark_${snakeCase(kind)}_`;
  if (type === 'histogram') return `${base}${snakeCase(field.replace(/Seconds$/, ''))}_seconds`;
  // Prometheus wants base units: a figure in milliseconds is exported in seconds.
  const name = isMs(field) ? `${snakeCase(field.slice(0, -2))}_seconds` : snakeCase(field);
  return type === 'gauge' ? base + name : `${base}${name}_total`;
}

const names = new Map<string, string>();
/** `metricName`, memoised (a scrape names every figure of every component). */
function cachedName(kind: string, type: 'gauge' | 'counter' | 'histogram', field: string): string {
  const key = `${kind}\u0000${type}\u0000${field}`;
  let name = names.get(key);
  if (name === undefined) {
    name = metricName(kind, type, field);
    if (names.size < 10_000) names.set(key, name);
  }
  return name;
}

/** True for a figure in milliseconds (`…Ms`): exported in seconds (value ÷ 1000). @internal */
export function isMs(field: string): boolean {
  return /[a-z0-9]Ms$/.test(field);
}

/** The exported value of a figure: milliseconds become seconds. @internal */
export function exportedValue(field: string, value: number): number {
  return isMs(field) ? value / 1000 : value;
}

interface Building {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly source: FamilySource;
  readonly samples: (Sample | HistogramSample)[];
}

/** Turns a histogram snapshot (per-bucket counts) into a cumulative sample. @internal */
export function cumulativeSample(
  labels: Readonly<Record<string, string>>,
  h: HistogramSnapshot,
): HistogramSample {
  const cumulative: number[] = [];
  let acc = 0;
  for (let i = 0; i <= h.bounds.length; i++) {
    acc += h.counts[i] ?? 0;
    cumulative.push(acc);
  }
  return { labels, bounds: h.bounds, cumulative, sum: h.sum, count: acc };
}

/**
 * Reads every component of `registry` into metric families (one snapshot per component). A
 * component whose `snapshot()` throws is left out of this read and reported as a process warning:
 * a scrape never fails because of one component.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { collectFamilies } from 'bulwark/metrics';
 * console.log(collectFamilies(createRegistry()).length); // 0: nothing registered
 * ```
 */
export function collectFamilies(registry: Registry): MetricFamily[] {
  const families = new Map<string, Building>();
  const states: Sample[] = [];
  const family = (
    name: string,
    help: string,
    type: Building['type'],
    source: FamilySource,
  ): Building['samples'] => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, help, type, source, samples: [] };
      families.set(name, f);
    }
    return f.samples;
  };
  for (const component of registry.list()) {
    let snap: Snapshot;
    try {
      snap = component.snapshot();
    } catch (error) {
      reportError(`The snapshot() of ${component.kind} ${component.name}`, error);
      continue;
    }
    const d = component.descriptor;
    const kind = component.kind;
    const name = component.name;
    for (const state of statesOf(d, snap.state))
      states.push({ labels: { kind, name, state }, value: state === snap.state ? 1 : 0 });
    const labels = { name };
    for (const [type, values, helps] of [
      ['gauge', snap.gauges, d.gauges],
      ['counter', snap.counters, d.counters],
    ] as const) {
      for (const field of fieldsOf(helps, values)) {
        const value = values[field];
        if (typeof value !== 'number') continue;
        const help = helps[field] ?? `${kind} ${field}`;
        family(cachedName(kind, type, field), help, type, { kind, field }).push({
          labels,
          value: exportedValue(field, value),
        });
      }
    }
    const hs = snap.histograms ?? {};
    for (const field of Object.keys(hs)) {
      const h = hs[field]!;
      const help = d.histograms?.[field] ?? `${kind} ${field}, seconds`;
      family(cachedName(kind, 'histogram', field), help, 'histogram', { kind, field }).push(
        cumulativeSample(labels, h),
      );
    }
  }
  const out: MetricFamily[] = [];
  if (states.length > 0)
    out.push({
      name: STATE_FAMILY,
      help: STATE_HELP,
      type: 'gauge',
      source: { kind: undefined, field: 'state' },
      samples: states,
    });
  for (const f of families.values()) out.push(f as MetricFamily);
  return out;
}

/** The descriptor's states, plus the current one when the descriptor lacks it. @internal */
export function statesOf(d: ComponentDescriptor, current: string): readonly string[] {
  return d.states.includes(current) ? d.states : [...d.states, current];
}

/** The descriptor's names, then any the snapshot has beyond them. */
function fieldsOf(
  helps: Readonly<Record<string, string>>,
  values: Readonly<Record<string, number>>,
): string[] {
  const out = Object.keys(helps);
  for (const k of Object.keys(values)) if (!Object.hasOwn(helps, k)) out.push(k);
  return out;
}

/**
 * Flattens metric families into named samples, histograms Prometheus-style.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { collectFamilies, flatten } from 'bulwark/metrics';
 * console.log(flatten(collectFamilies(createRegistry()))); // []
 * ```
 */
export function flatten(families: readonly MetricFamily[]): NamedSample[] {
  const out: NamedSample[] = [];
  for (const f of families) {
    if (f.type !== 'histogram') {
      for (const s of f.samples) out.push({ name: f.name, labels: s.labels, value: s.value });
      continue;
    }
    for (const s of f.samples) {
      s.bounds.forEach((b, i) => {
        out.push({
          name: `${f.name}_bucket`,
          labels: { ...s.labels, le: String(b) },
          value: s.cumulative[i]!,
        });
      });
      out.push({ name: `${f.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      out.push({ name: `${f.name}_sum`, labels: s.labels, value: s.sum });
      out.push({ name: `${f.name}_count`, labels: s.labels, value: s.count });
    }
  }
  return out;
}
