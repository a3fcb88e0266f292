/**
 * Probes of the steady-state hypothesis and of the abort conditions: each yields a value that
 * passes when it lies within its tolerance.
 * @module
 */

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ProbeSpec } from './schema.js';
import { fillDeep } from './setup.js';
import { percentile, type WindowStats } from './traffic.js';

/** A probe's verdict. */
export interface ProbeResult {
  readonly name: string;
  readonly type: ProbeSpec['type'];
  readonly weight: number;
  /** The value measured (null when the probe failed to measure). */
  readonly value: number | string | boolean | null;
  readonly tolerance: ProbeSpec['tolerance'];
  readonly passed: boolean;
  /** Why it could not measure, if so. */
  readonly error?: string;
}

/** What a custom probe (a module export) receives as its second argument. */
export interface ProbeContext {
  /** Figures of the load over the probed window. */
  readonly window: WindowStats;
  /** The template values (`proxies`, `processes`, `files`, `api`, `env`). */
  readonly vars: Readonly<Record<string, unknown>>;
  readonly signal: AbortSignal;
}

/** A custom probe: returns a number, string or boolean (a boolean without tolerance passes when true). */
export type CustomProbe = (args: Record<string, unknown>, ctx: ProbeContext) => unknown;

/**
 * Whether `value` is within `tolerance`.
 *
 * @example
 * ```ts
 * import { withinTolerance } from 'bulwark/chaos';
 * console.log(withinTolerance(0.995, { min: 0.99 }), withinTolerance(3, { equals: 0 })); // true false
 * ```
 */
export function withinTolerance(value: unknown, tolerance: ProbeSpec['tolerance']): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'number' && Number.isNaN(value)) return false;
  const bounded =
    tolerance.min !== undefined || tolerance.max !== undefined || tolerance.equals !== undefined;
  if (!bounded) return value === true;
  if (tolerance.equals !== undefined && value !== tolerance.equals) return false;
  if (tolerance.min !== undefined && !(typeof value === 'number' && value >= tolerance.min)) return false;
  if (tolerance.max !== undefined && !(typeof value === 'number' && value <= tolerance.max)) return false;
  return true;
}

/**
 * The sum of the samples of a Prometheus text exposition matching `selector`
 * (`name` or `name{label="value",…}`; every given label must match). NaN when none matches.
 *
 * @example
 * ```ts
 * import { readMetric } from 'bulwark/chaos';
 * const text = 'jobs_total{queue="a"} 3\njobs_total{queue="b"} 4\n';
 * console.log(readMetric(text, 'jobs_total'), readMetric(text, 'jobs_total{queue="b"}')); // 7 4
 * ```
 */
export function readMetric(text: string, selector: string): number {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/.exec(selector.trim());
  if (m === null) return Number.NaN;
  const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g)].map(
    (l) => `${l[1]}="${l[2]}"`,
  );
  let sum = Number.NaN;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(m[1]!)) continue;
    const rest = line.slice(m[1]!.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const close = rest[0] === '{' ? rest.lastIndexOf('}') : -1;
    const labelText = close > 0 ? rest.slice(1, close) : '';
    if (!labels.every((l) => labelText.includes(l))) continue;
    const value = Number(
      rest
        .slice(close + 1)
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isNaN(value)) continue;
    sum = Number.isNaN(sum) ? value : sum + value;
  }
  return sum;
}

async function fetchText(
  url: string,
  method: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<[number, string]> {
  const res = await fetch(url, { method, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  return [res.status, await res.text()];
}

/**
 * Imports a module export (a path relative to `baseDir`, or a package specifier).
 *
 * @example
 * ```ts nocheck
 * const probe = await importExport('./probes.ts', 'lostMessages', 'examples/chaos');
 * ```
 */
export async function importExport(module: string, name: string, baseDir: string): Promise<unknown> {
  const spec =
    module.startsWith('.') || isAbsolute(module) ? pathToFileURL(resolve(baseDir, module)).href : module;
  const mod = (await import(spec)) as Record<string, unknown>;
  if (!(name in mod))
    throw new Error(`${module} has no export "${name}" (it has: ${Object.keys(mod).join(', ')})`);
  return mod[name];
}

/** Everything a probe may read. */
export interface ProbeEnv {
  readonly window: WindowStats;
  readonly vars: Readonly<Record<string, unknown>>;
  readonly baseDir: string;
  readonly signal: AbortSignal;
  /** Values of `increase` metric probes at the start of the run, by probe name. */
  readonly baselines: ReadonlyMap<string, number>;
  /** Fills `${…}` templates. */
  readonly fill: (text: string) => string;
}

/** Measures the value of one probe. */
export async function measure(probe: ProbeSpec, env: ProbeEnv): Promise<number | string | boolean> {
  switch (probe.type) {
    case 'successRatio':
      return env.window.successRatio;
    case 'latency':
      return percentile(env.window.latencies, probe.percentile);
    case 'http': {
      const [status] = await fetchText(env.fill(probe.url), probe.method, probe.timeoutMs, env.signal);
      return status;
    }
    case 'metric': {
      const [status, text] = await fetchText(env.fill(probe.url), 'GET', probe.timeoutMs, env.signal);
      if (status !== 200) throw new Error(`${probe.url} answered ${status}`);
      const value = readMetric(text, probe.metric);
      if (Number.isNaN(value)) throw new Error(`no sample of ${probe.metric} at ${probe.url}`);
      return probe.increase ? value - (env.baselines.get(probe.name) ?? 0) : value;
    }
    case 'module': {
      const fn = await importExport(env.fill(probe.module), probe.export, env.baseDir);
      if (typeof fn !== 'function') throw new Error(`${probe.module}#${probe.export} is not a function`);
      const out = await (fn as CustomProbe)(fillDeep(probe.arguments, env.vars), {
        window: env.window,
        vars: env.vars,
        signal: env.signal,
      });
      if (typeof out === 'number' || typeof out === 'string' || typeof out === 'boolean') return out;
      throw new Error(
        `${probe.module}#${probe.export} returned ${typeof out}, not a number, string or boolean`,
      );
    }
  }
}

/** Measures a probe and judges it against its tolerance; a failure to measure fails the probe. */
export async function runProbe(probe: ProbeSpec, env: ProbeEnv): Promise<ProbeResult> {
  const base = { name: probe.name, type: probe.type, weight: probe.weight, tolerance: probe.tolerance };
  try {
    const value = await measure(probe, env);
    const shown = typeof value === 'number' && !Number.isFinite(value) ? null : value;
    // No request in the window: a load probe has nothing to judge and does not fail an abort check.
    return { ...base, value: shown, passed: withinTolerance(value, probe.tolerance) };
  } catch (error) {
    return { ...base, value: null, passed: false, error: (error as Error).message };
  }
}
