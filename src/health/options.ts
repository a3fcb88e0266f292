/**
 * Validation of the options of `bulwark/health` at the subpath boundary, with zod: a bad option
 * throws the core's `ConfigError`, whose `option` is the dotted path (`healthMonitor.checks[0].timeoutMs`).
 * @internal
 */

import { z } from 'zod';
import { ConfigError } from '../core/errors.js';

/** A function value (zod 4 has no function schema usable as a value type). @internal */
export function fn<T>(): z.ZodType<T> {
  return z.custom<T>((v) => typeof v === 'function', { message: 'a function' });
}

/** The longest delay a Node.js timer honours (2^31 - 1 ms); longer ones fire at once. @internal */
export const MAX_TIMER_MS = 2_147_483_647;

/** Milliseconds: a finite number from 0 to `MAX_TIMER_MS`. @internal */
export const ms = z
  .number()
  .finite()
  .nonnegative()
  .max(MAX_TIMER_MS, 'at most 2147483647 ms (the longest Node.js timer)');
/** Milliseconds for an interval, timeout or deadline: from 1 to `MAX_TIMER_MS`. @internal */
export const positiveMs = z
  .number()
  .finite()
  .min(1, 'at least 1 ms')
  .max(MAX_TIMER_MS, 'at most 2147483647 ms (the longest Node.js timer)');
/** A positive integer. @internal */
export const posInt = z.number().int().positive();

/**
 * Parses `value` with `schema`; on failure throws a `ConfigError` naming the first bad field. @internal
 */
export function parse<T>(owner: string, schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let path = owner;
  for (const p of issue.path) path += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const option = `${path}.${key}`;
    throw new ConfigError(option, '', undefined, `${option} is not a known option (a typo?)`);
  }
  throw new ConfigError(path, '', pick(value, issue.path), `${path}: ${issue.message}`);
}

function pick(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}
