/**
 * The schema of a Redis client option: any object with the methods the component calls (an
 * ioredis `Redis` or `Cluster`, or a test double).
 */

import { type Schema, s } from '../core/schema.js';

/**
 * A schema accepting an object that has every method of `methods`, else a `ConfigError` that
 * expects `rule` (default `an ioredis client`).
 *
 * @example
 * ```ts nocheck
 * const schema = s.object({ client: clientSchema<RedisCacheClient>(['get', 'set', 'del']) });
 * ```
 */
export function clientSchema<T>(methods: readonly string[], rule = 'an ioredis client'): Schema<T> {
  return s.custom<T>(rule, (v, path) =>
    typeof v === 'object' &&
    v !== null &&
    methods.every((m) => typeof (v as Record<string, unknown>)[m] === 'function')
      ? (v as T)
      : s.fail(path, rule, v),
  );
}
