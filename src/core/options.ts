/**
 * Option validation at construction time, with messages that name the option, and
 * "dynamic" options: any per-call numeric option may be a function of the context.
 * (The core has zero runtime dependencies, so these small checks stand in for zod here.)
 */

import type { Context } from './context.js';
import { ConfigError } from './errors.js';
import type { Registry } from './registry.js';

/**
 * A numeric option that may also be computed per call from the execution context, e.g. to
 * give `critical` calls more attempts than `low` ones.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 * retry({ maxAttempts: (ctx) => (ctx.priority === 'critical' ? 10 : 3) });
 * ```
 */
export type Dynamic<T> = T | ((ctx: Context) => T);

/** A check for one number: returns the expectation text when `v` is bad, else null. */
export type NumberRule = (v: number) => string | null;

export const rules = {
  /** An integer >= min. */
  int:
    (min: number): NumberRule =>
    (v) =>
      Number.isInteger(v) && v >= min ? null : `an integer >= ${min}`,
  /** An integer >= min, or Infinity. */
  intOrInfinity:
    (min: number): NumberRule =>
    (v) =>
      (Number.isInteger(v) && v >= min) || v === Number.POSITIVE_INFINITY
        ? null
        : `an integer >= ${min} or Infinity`,
  /** A finite number >= min. */
  finite:
    (min: number): NumberRule =>
    (v) =>
      Number.isFinite(v) && v >= min ? null : `a finite number >= ${min}`,
  /** A number >= min, Infinity allowed. */
  atLeast:
    (min: number): NumberRule =>
    (v) =>
      !Number.isNaN(v) && v >= min ? null : `a number >= ${min}`,
  /** A finite number > 0. */
  positive: ((v) => (Number.isFinite(v) && v > 0 ? null : 'a finite number > 0')) as NumberRule,
  /** A ratio in (0, 1]. */
  ratio: ((v) => (v > 0 && v <= 1 ? null : 'a number in (0, 1]')) as NumberRule,
} as const;

function typeOk(v: unknown): v is number {
  return typeof v === 'number';
}

/** Validates a static number option. */
export function checkNumber(path: string, value: unknown, rule: NumberRule): number {
  if (!typeOk(value)) throw new ConfigError(path, rule(Number.NaN) ?? 'a number', value);
  const problem = rule(value);
  if (problem !== null) throw new ConfigError(path, problem, value);
  return value;
}

/** Validates an optional static number option, returning `fallback` when absent. */
export function optNumber(path: string, value: unknown, rule: NumberRule, fallback: number): number {
  return value === undefined ? fallback : checkNumber(path, value, rule);
}

/**
 * A validated dynamic number option: a constant is checked now; a function is checked each
 * time it is called.
 */
export class DynamicNumber {
  private constructor(
    readonly path: string,
    readonly constant: number,
    readonly fn: ((ctx: Context) => number) | null,
    readonly rule: NumberRule,
  ) {}

  static of(path: string, value: unknown, rule: NumberRule, fallback: number): DynamicNumber {
    if (typeof value === 'function') {
      return new DynamicNumber(path, fallback, value as (ctx: Context) => number, rule);
    }
    return new DynamicNumber(path, optNumber(path, value, rule, fallback), null, rule);
  }

  /** The value for this call. */
  get(ctx: Context): number {
    if (this.fn === null) return this.constant;
    const v = this.fn(ctx);
    if (typeof v !== 'number')
      throw new ConfigError(`${this.path}(ctx)`, this.rule(Number.NaN) ?? 'a number', v);
    const problem = this.rule(v);
    if (problem !== null) throw new ConfigError(`${this.path}(ctx)`, problem, v);
    return v;
  }
}

/** Checks that `value` is a plain object (or undefined). */
export function checkObject(path: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(path, 'an options object', value);
  }
  return value as Record<string, unknown>;
}

/** Rejects option keys that the policy does not know (catches typos like `maxAttemps`). */
export function checkKeys(path: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw ConfigError.unknown(`${path}.${key}`, known);
    }
  }
}

/** Validates a one-of string option. */
export function checkEnum<T extends string>(
  path: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new ConfigError(path, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

/** Validates an optional function option. */
export function checkFunction<F>(path: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new ConfigError(path, 'a function', value);
  return value as F;
}

/** Validates an optional string option. */
export function checkString(path: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(path, 'a non-empty string', value);
  return value;
}

/** Validates a list of priorities (`bypass`). */
export function checkPriorities(path: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new ConfigError(path, "an array of priority names, e.g. ['critical']", value);
  }
  return Object.freeze([...(value as string[])]);
}

/** Validates an optional boolean option. */
export function checkBoolean(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(path, 'a boolean', value);
  return value;
}

/** Validates the `registry` option (anything with `register`). */
export function checkRegistry(path: string, value: unknown): Registry | undefined {
  if (value === undefined) return undefined;
  if (typeof (value as { register?: unknown } | null)?.register !== 'function')
    throw new ConfigError(path, 'a registry, e.g. createRegistry()', value);
  return value as Registry;
}
