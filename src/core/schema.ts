/**
 * The one validation path of every subpath: small declarative schemas that check options,
 * configuration files and request bodies, throw one `ConfigError` naming the dotted path, the
 * value and the rule (with "did you mean …" for an unknown key), and emit the same rules as a
 * JSON Schema (for editors, the admin API's OpenAPI document and the docs). The core has no
 * runtime dependency, so this stands in for zod everywhere.
 */

import { ConfigError } from './errors.js';

/** A JSON Schema fragment (draft 2020-12), as produced by `Schema.json()`. */
export type JsonSchema = { readonly [key: string]: unknown };

/**
 * A schema for values of type `T`: `parse` checks (and fills defaults), `json` describes.
 *
 * @example
 * ```ts
 * import { s } from 'bulwark';
 * const opts = s.object({ limit: s.int({ min: 1 }), queueTimeoutMs: s.optional(s.duration(), 1000) });
 * const parsed = opts.parse({ limit: 3 }, 'bulkhead'); // { limit: 3, queueTimeoutMs: 1000 }
 * ```
 */
export interface Schema<T> {
  /** Checks `value` at `path` (for errors) and returns the parsed value; throws `ConfigError`. */
  parse(value: unknown, path: string): T;
  /** The rules as a JSON Schema fragment. */
  json(): JsonSchema;
  /** A short human description of the rule, e.g. `an integer >= 1`. */
  readonly rule: string;
  /** True when the key may be absent from an object. @internal */
  readonly optional?: boolean;
  /** A copy of this schema with a description (shown in the JSON Schema and generated docs). */
  describe(text: string): Schema<T>;
}

/** A schema whose key may be absent from the parsed object (an optional without a default). */
export interface OptionalSchema<T> extends Schema<T | undefined> {
  /** Type-level brand only. */
  readonly maybeAbsent: true;
}

/** The type a schema parses to. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

function make<T>(
  rule: string,
  parse: (value: unknown, path: string) => T,
  json: () => JsonSchema,
  optional = false,
): Schema<T> {
  const schema: Schema<T> = {
    parse,
    json,
    rule,
    optional,
    describe(text: string) {
      return make(rule, parse, () => ({ ...json(), description: text }), optional);
    },
  };
  return schema;
}

function fail(path: string, rule: string, value: unknown): never {
  throw new ConfigError(path, rule, value);
}

interface NumberSpec {
  /** Smallest allowed value (inclusive). */
  readonly min?: number;
  /** Largest allowed value (inclusive). */
  readonly max?: number;
  /** The value must be greater than this (exclusive). */
  readonly above?: number;
  /** Only integers. */
  readonly int?: boolean;
  /** Infinity is allowed too. */
  readonly infinity?: boolean;
}

function numberRule(spec: NumberSpec): string {
  const parts: string[] = [];
  if (spec.above !== undefined) parts.push(`> ${spec.above}`);
  if (spec.min !== undefined) parts.push(`>= ${spec.min}`);
  if (spec.max !== undefined) parts.push(`<= ${spec.max}`);
  const base = spec.int === true ? 'an integer' : 'a finite number';
  return `${base}${parts.length > 0 ? ` ${parts.join(' and ')}` : ''}${spec.infinity === true ? ' or Infinity' : ''}`;
}

function number(spec: NumberSpec = {}): Schema<number> {
  const rule = numberRule(spec);
  return make(
    rule,
    (v, path) => {
      if (typeof v !== 'number' || Number.isNaN(v)) return fail(path, rule, v);
      if (v === Number.POSITIVE_INFINITY && spec.infinity === true) return v;
      if (!Number.isFinite(v)) return fail(path, rule, v);
      if (spec.int === true && !Number.isInteger(v)) return fail(path, rule, v);
      if (spec.min !== undefined && v < spec.min) return fail(path, rule, v);
      if (spec.max !== undefined && v > spec.max) return fail(path, rule, v);
      if (spec.above !== undefined && v <= spec.above) return fail(path, rule, v);
      return v;
    },
    () => ({
      type: spec.int === true ? 'integer' : 'number',
      ...(spec.min !== undefined ? { minimum: spec.min } : {}),
      ...(spec.max !== undefined ? { maximum: spec.max } : {}),
      ...(spec.above !== undefined ? { exclusiveMinimum: spec.above } : {}),
    }),
  );
}

interface StringSpec {
  /** Minimum length (default 1: empty strings are refused). */
  readonly minLength?: number;
  readonly maxLength?: number;
  /** A pattern the whole string must match. */
  readonly pattern?: RegExp;
  /** What the pattern means, for the error (e.g. `a host:port`). */
  readonly patternRule?: string;
}

function string(spec: StringSpec = {}): Schema<string> {
  const minLength = spec.minLength ?? 1;
  const rule = spec.patternRule ?? (minLength > 0 ? 'a non-empty string' : 'a string');
  return make(
    rule,
    (v, path) => {
      if (typeof v !== 'string' || v.length < minLength) return fail(path, rule, v);
      if (spec.maxLength !== undefined && v.length > spec.maxLength)
        return fail(path, `${rule} of at most ${spec.maxLength} characters`, v);
      if (spec.pattern !== undefined && !spec.pattern.test(v)) return fail(path, rule, v);
      return v;
    },
    () => ({
      type: 'string',
      ...(minLength > 0 ? { minLength } : {}),
      ...(spec.maxLength !== undefined ? { maxLength: spec.maxLength } : {}),
      ...(spec.pattern !== undefined ? { pattern: spec.pattern.source } : {}),
    }),
  );
}

function oneOf<const T extends string | number | boolean>(values: readonly T[]): Schema<T> {
  const rule = `one of ${values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ')}`;
  return make(
    rule,
    (v, path) => (values.includes(v as T) ? (v as T) : fail(path, rule, v)),
    () => ({ enum: [...values] }),
  );
}

function optional<T>(schema: Schema<T>): OptionalSchema<T>;
function optional<T>(schema: Schema<T>, fallback: T): Schema<T>;
function optional<T>(schema: Schema<T>, fallback?: T): Schema<T | undefined> {
  const made = make<T | undefined>(
    schema.rule,
    (v, path) => (v === undefined ? fallback : schema.parse(v, path)),
    () => (fallback === undefined ? schema.json() : { ...schema.json(), default: fallback }),
    true,
  );
  return fallback === undefined ? ({ ...made, maybeAbsent: true } as OptionalSchema<T>) : made;
}

/** Options for `s.object`. */
interface ObjectSpec {
  /** Unknown keys are refused (default true: catches typos). */
  readonly strict?: boolean;
}

type ObjectOut<Shape extends Record<string, Schema<unknown>>> = {
  [K in keyof Shape as Shape[K] extends { readonly maybeAbsent: true } ? never : K]: Infer<Shape[K]>;
} & {
  [K in keyof Shape as Shape[K] extends { readonly maybeAbsent: true } ? K : never]?: Exclude<
    Infer<Shape[K]>,
    undefined
  >;
};

/** A schema for an object whose keys are known. Unknown keys are refused (with "did you mean"). */
export interface ObjectSchema<Shape extends Record<string, Schema<unknown>>>
  extends Schema<ObjectOut<Shape>> {
  /** The schemas of the keys. */
  readonly shape: Shape;
}

function object<Shape extends Record<string, Schema<unknown>>>(
  shape: Shape,
  spec: ObjectSpec = {},
): ObjectSchema<Shape> {
  const keys = Object.keys(shape);
  const rule = 'an object';
  const base = make<ObjectOut<Shape>>(
    rule,
    (v, path) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(path, 'an options object', v);
      const input = v as Record<string, unknown>;
      if (spec.strict !== false) {
        for (const key of Object.keys(input)) {
          if (!Object.hasOwn(shape, key)) throw ConfigError.unknown(`${path}.${key}`, keys);
        }
      }
      const out: Record<string, unknown> = spec.strict === false ? { ...input } : {};
      for (const key of keys) {
        const parsed = shape[key]!.parse(input[key], `${path}.${key}`);
        if (parsed !== undefined) out[key] = parsed;
      }
      return out as ObjectOut<Shape>;
    },
    () => {
      const properties: Record<string, JsonSchema> = {};
      const required: string[] = [];
      for (const key of keys) {
        properties[key] = shape[key]!.json();
        if (shape[key]!.optional !== true) required.push(key);
      }
      return {
        type: 'object',
        properties,
        ...(required.length > 0 ? { required } : {}),
        ...(spec.strict !== false ? { additionalProperties: false } : {}),
      };
    },
  );
  return { ...base, shape };
}

function array<T>(item: Schema<T>, spec: { min?: number; max?: number } = {}): Schema<T[]> {
  const rule = `an array${spec.min !== undefined ? ` of at least ${spec.min}` : ''}`;
  return make(
    rule,
    (v, path) => {
      if (!Array.isArray(v)) return fail(path, rule, v);
      if (spec.min !== undefined && v.length < spec.min) return fail(path, rule, v);
      if (spec.max !== undefined && v.length > spec.max)
        return fail(path, `an array of at most ${spec.max}`, v);
      return v.map((x, i) => item.parse(x, `${path}[${i}]`));
    },
    () => ({
      type: 'array',
      items: item.json(),
      ...(spec.min !== undefined ? { minItems: spec.min } : {}),
      ...(spec.max !== undefined ? { maxItems: spec.max } : {}),
    }),
  );
}

function record<T>(value: Schema<T>, keyRule?: { pattern: RegExp; rule: string }): Schema<Record<string, T>> {
  const rule = 'an object';
  return make(
    rule,
    (v, path) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(path, rule, v);
      const out: Record<string, T> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (keyRule !== undefined && !keyRule.pattern.test(k))
          fail(`${path}.${k}`, `a key that is ${keyRule.rule}`, k);
        out[k] = value.parse(x, `${path}.${k}`);
      }
      return out;
    },
    () => ({
      type: 'object',
      additionalProperties: value.json(),
      ...(keyRule !== undefined ? { propertyNames: { pattern: keyRule.pattern.source } } : {}),
    }),
  );
}

function union<T extends readonly Schema<unknown>[]>(schemas: T, rule?: string): Schema<Infer<T[number]>> {
  const r = rule ?? schemas.map((x) => x.rule).join(', or ');
  return make(
    r,
    (v, path) => {
      let first: unknown;
      for (const schema of schemas) {
        try {
          return schema.parse(v, path) as Infer<T[number]>;
        } catch (error) {
          // A nested error (deeper path) from the branch whose shape matched says more than "one of".
          if (first === undefined && error instanceof ConfigError && error.option !== path) first = error;
        }
      }
      if (first !== undefined) throw first;
      return fail(path, r, v);
    },
    () => ({ anyOf: schemas.map((x) => x.json()) }),
  );
}

/**
 * A schema with a hand-written check: `check` returns the value (possibly converted) or
 * throws via `s.fail`.
 */
function custom<T>(
  rule: string,
  check: (value: unknown, path: string) => T,
  json: JsonSchema = {},
): Schema<T> {
  return make(rule, check, () => ({ ...json, description: rule }));
}

/**
 * The schema builders. Names follow docs/conventions.md: durations end in `Ms` and use
 * `s.duration()`; ratios in (0, 1] use `s.ratio()`; counts use `s.int()`.
 *
 * @example
 * ```ts
 * import { s, ConfigError } from 'bulwark';
 * const schema = s.object({ url: s.string(), weight: s.optional(s.int({ min: 1 }), 1) });
 * try { schema.parse({ url: 'http://a', wieght: 2 }, 'endpoints[0]'); } catch (err) {
 *   if (err instanceof ConfigError) console.log(err.message); // … did you mean endpoints[0].weight? …
 * }
 * ```
 */
export const s = {
  /** A finite number (Infinity only with `infinity: true`), with optional bounds. */
  number,
  /** An integer with optional bounds (`min` defaults to none). */
  int: (spec: Omit<NumberSpec, 'int'> = {}): Schema<number> => number({ ...spec, int: true }),
  /** A duration in milliseconds: a finite number >= 0 (or > 0 with `positive`), Infinity with `infinity`. */
  duration: (spec: { positive?: boolean; infinity?: boolean; max?: number } = {}): Schema<number> =>
    number({
      ...(spec.positive === true ? { above: 0 } : { min: 0 }),
      ...(spec.infinity === true ? { infinity: true } : {}),
      ...(spec.max !== undefined ? { max: spec.max } : {}),
    }),
  /** A number in (0, 1] (a quantile, a ratio). With `zero: true`, [0, 1]. */
  ratio: (spec: { zero?: boolean } = {}): Schema<number> =>
    number(spec.zero === true ? { min: 0, max: 1 } : { above: 0, max: 1 }),
  string,
  boolean: (): Schema<boolean> =>
    make(
      'a boolean',
      (v, path) => (typeof v === 'boolean' ? v : fail(path, 'a boolean', v)),
      () => ({ type: 'boolean' }),
    ),
  /** One of the given literal values. */
  oneOf,
  /** A function (not representable in JSON Schema; described only). */
  fn: <F extends (...args: never[]) => unknown>(): Schema<F> =>
    make(
      'a function',
      (v, path) => (typeof v === 'function' ? (v as F) : fail(path, 'a function', v)),
      () => ({ description: 'a function (programmatic use only)' }),
    ),
  /** Anything; checked by the caller. */
  unknown: (): Schema<unknown> =>
    make(
      'any value',
      (v) => v,
      () => ({}),
    ),
  optional,
  object,
  array,
  record,
  union,
  custom,
  /** Throws the `ConfigError` for `path` (for use inside `s.custom`). */
  fail,
} as const;

/**
 * Parses `value` against `schema`, naming `path` in errors. Same as `schema.parse(value, path)`.
 *
 * @example
 * ```ts
 * import { parseOptions, s } from 'bulwark';
 * const o = parseOptions(s.object({ limit: s.int({ min: 1 }) }), { limit: 4 }, 'bulkhead');
 * ```
 */
export function parseOptions<T>(schema: Schema<T>, value: unknown, path: string): T {
  return schema.parse(value, path);
}
