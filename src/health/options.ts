/**
 * Validation of the options of `bulwark/health` at the subpath boundary, on the core's one
 * validator (`s` of src/core/schema.ts): a bad option throws `ConfigError`, whose `option` is the
 * dotted path (`healthMonitor.checks[0].timeoutMs`).
 * @internal
 */

import { type Schema, s } from '../core/schema.js';

export {
  clockSchema,
  duck,
  MAX_TIMER_MS,
  ms,
  nameSchema,
  positiveMs,
  registrySchema,
  stringMap,
} from '../core/common-schemas.js';

/** A function value. @internal */
export function fn<T>(): Schema<T> {
  return s.fn<never>() as unknown as Schema<T>;
}

/** A positive integer. @internal */
export const posInt: Schema<number> = s.int({ min: 1 });

/** Parses `value` with `schema`, naming `owner` in errors. @internal */
export function parse<T>(owner: string, schema: Schema<T>, value: unknown): T {
  return schema.parse(value, owner);
}
