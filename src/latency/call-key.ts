/**
 * The key option shared by `cache` and `coalesce`: a function `(ctx) => string` that names the
 * call; calls with the same key share a cached value or one execution.
 */

import { ConfigError } from '../core/errors.js';
import type { Context } from '../core/policy.js';

/** A function that names a call. */
export type KeyFunction = (ctx: Context) => string;

/**
 * Validates a `key` option: a function, else a `ConfigError` naming `option`.
 *
 * @example
 * ```ts nocheck
 * this.key = checkKeyFunction('cache.key', options.key);
 * ```
 */
export function checkKeyFunction(option: string, value: unknown): KeyFunction {
  if (typeof value !== 'function') throw new ConfigError(option, 'a function (ctx) => string', value);
  return value as KeyFunction;
}

/**
 * The key of one call: `key(ctx)`, which must return a string (else a `ConfigError` naming
 * `option`, e.g. `cache.key(ctx)`). Throws what `key` throws; the policy turns it into a rejection.
 *
 * @example
 * ```ts nocheck
 * const k = callKey(this.key, ctx, 'cache.key(ctx)');
 * ```
 */
export function callKey(key: KeyFunction, ctx: Context, option: string): string {
  const k = key(ctx);
  if (typeof k !== 'string') throw new ConfigError(option, 'a string', k);
  return k;
}
