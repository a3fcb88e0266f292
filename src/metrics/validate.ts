/**
 * Validation of `bulwark/metrics` options at the boundary, with zod: the first problem becomes a
 * `ConfigError` naming the dotted option path.
 */

import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';

/**
 * Parses `value` with `schema`; on failure throws a `ConfigError` naming `prefix.path`.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { parseOptions } from 'bulwark/metrics';
 * const opts = parseOptions('slo', z.object({ objective: z.number() }), { objective: 0.99 });
 * console.log(opts.objective);
 * ```
 */
export function parseOptions<S extends z.ZodType>(prefix: string, schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue === undefined || issue.path.length === 0 ? prefix : `${prefix}.${issue.path.join('.')}`;
  let got: unknown = value;
  for (const k of issue?.path ?? []) {
    got = typeof got === 'object' && got !== null ? (got as Record<PropertyKey, unknown>)[k] : undefined;
  }
  throw new ConfigError(path, issue?.message ?? 'valid', got, `${path}: ${issue?.message ?? 'invalid'}`);
}
