/**
 * The one shape of every "change a setting at run time" operation (a bulkhead's limit, a rate
 * limit's rates, a shedder's capacity, an adaptive limit's bounds): the input is an object of
 * optional settings of which at least one must be given (checked by the schema, so a bad input is
 * a 400 naming the field), the change is applied at once (the next call sees it) and the result
 * says what the settings were before and are after.
 */

import type { ComponentOperation, OperationRole } from './component.js';
import type { JsonSchema, ObjectSchema, Schema } from './schema.js';
import { s } from './schema.js';

/** What `settingsOperation` is given. */
export interface SettingsOperationSpec<I> {
  /** The operation's name, e.g. `setLimits`. */
  readonly name: string;
  /** One line for the dashboard and the OpenAPI document. */
  readonly summary: string;
  /** The settings, each optional (at least one must be given). */
  readonly input: ObjectSchema<Record<string, Schema<unknown>>>;
  /** Checks across fields after each field passed its own rule (throw with `s.fail(path.x, …)`). */
  readonly check?: (input: I, path: string) => void;
  /** The settings now (JSON-serialisable: Infinity as null). */
  read(): Record<string, unknown>;
  /** Applies the settings given (the component validates again: it may be called in process). */
  apply(input: I): void;
  /** The least role that may change them. Default `operator`. */
  readonly role?: OperationRole;
}

/**
 * Makes a settings action: validated input (at least one field), applied at once, the result
 * `{ before, after }`.
 *
 * @example
 * ```ts
 * import { s, settingsOperation } from 'bulwark';
 * let limit = 10;
 * const op = settingsOperation<{ limit?: number }>({
 *   name: 'setLimits', summary: 'Change the limit',
 *   input: s.object({ limit: s.optional(s.int({ min: 1 })) }),
 *   read: () => ({ limit }),
 *   apply: (i) => { if (i.limit !== undefined) limit = i.limit; },
 * });
 * console.log(await op.run(op.input.parse({ limit: 20 }, 'input'), { actor: 'me', reason: 'load', dryRun: false }));
 * // { before: { limit: 10 }, after: { limit: 20 } }
 * ```
 */
export function settingsOperation<I>(
  spec: SettingsOperationSpec<I>,
): ComponentOperation<I, { before: Record<string, unknown>; after: Record<string, unknown> }> {
  const inner = spec.input;
  const keys = Object.keys(inner.shape);
  const rule = `an object with at least one of ${keys.join(', ')}`;
  const input: Schema<I> = s.custom<I>(
    rule,
    (v, path) => {
      const o = inner.parse(v, path) as Record<string, unknown>;
      if (Object.keys(o).length === 0) s.fail(path, rule, v);
      spec.check?.(o as I, path);
      return o as I;
    },
    inner.json() as JsonSchema,
  );
  const json = { ...inner.json(), minProperties: 1, description: rule };
  return {
    name: spec.name,
    type: 'action',
    summary: spec.summary,
    ...(spec.role !== undefined ? { role: spec.role } : {}),
    input: { ...input, json: () => json },
    run: (i) => {
      const before = spec.read();
      spec.apply(i);
      return { before, after: spec.read() };
    },
  };
}

/** A number as JSON: Infinity (no limit) as null. @internal */
export function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
