/**
 * Who reads durations. Timing a call costs a clock read (~40-50 ns, a tenth of a four-policy
 * pipeline), so a component that CAN time every call (a pipeline, `timing: 'auto'`) does so only
 * while something reads its durations: a metrics reader over a registry it is in
 * (`createMetrics`, the control plane), an SLO with a latency objective over it, or a listener
 * of its per-call `execution` events. Consumers declare themselves here; components count them.
 */

import type { Component } from './component.js';
import { type Disposer, makeDisposer } from './events.js';

/** A component that times its calls only while something reads the durations. @internal */
export interface DurationSource {
  /** One more (`1`) or one fewer (`-1`) reader of this component's durations. */
  _durationReaders(delta: 1 | -1): void;
}

/** Tells `component` that it has one more or one fewer reader (no-op for other components). @internal */
export function countDurationReader(component: Component, delta: 1 | -1): void {
  const f = (component as Partial<DurationSource>)._durationReaders;
  if (typeof f === 'function') f.call(component, delta);
}

/**
 * Declares that something reads `component`'s durations (its `durationSeconds` histogram) from now
 * on: a pipeline with `timing: 'auto'` (the default) times every execution until the returned
 * disposer runs. A registry does the same for all its members (`registry.readDurations()`).
 *
 * @example
 * ```ts
 * import { pipeline, readDurations, timeout } from 'bulwark';
 * const api = pipeline({ name: 'api' }, timeout(1_000));
 * const stop = readDurations(api); // e.g. a latency SLO over `api`
 * await api.execute(() => 'ok');
 * api.snapshot().histograms?.durationSeconds?.count; // 1
 * stop(); // nothing reads them any more: no clock read beyond what the timeout needs
 * ```
 */
export function readDurations(component: Component): Disposer {
  countDurationReader(component, 1);
  return makeDisposer(() => countDurationReader(component, -1));
}

/** `registry.readDurations()`, for a registry that has it (a duck-typed stand-in may not). @internal */
export function readRegistryDurations(registry: object): Disposer {
  const f = (registry as { readDurations?: unknown }).readDurations;
  return typeof f === 'function' ? (f.call(registry) as Disposer) : makeDisposer(() => {});
}
