/**
 * The options of a circuit breaker, validated once through `src/core/schema.ts`. The Redis shared
 * breaker parses its options with the same shape (`breakerShape`) plus its own keys, so both
 * breakers accept the same names and throw the same `ConfigError`s.
 */

import { type Backoff, isBackoff } from '../backoff.js';
import type { Clock, RandomSource } from '../clock.js';
import { systemRandom } from '../clock.js';
import type { Priority } from '../context.js';
import { DEFAULT_FAILURES, Handler } from '../handle.js';
import { type CommonOptions, clockOf } from '../policy.js';
import type { Registry } from '../registry.js';
import { type Infer, s } from '../schema.js';
import type { SavedCircuitState } from './saved-state.js';

/** Open after `threshold` failures in a row. */
export interface ConsecutiveBreakerOptions {
  kind: 'consecutive';
  /** Failures in a row that open the breaker. Default 5. */
  threshold?: number;
}

/** Slow-call detection, for `count` and `time` breakers. */
export interface SlowCallOptions {
  /** A call that takes at least this many ms is slow. Default: slow calls are not tracked. */
  slowCallMs?: number;
  /** Open when at least this share of the window's calls were slow, in (0, 1]. Default 1. Needs `slowCallMs`. */
  slowCallRatio?: number;
}

/** Open when the failure (or slow-call) ratio of the last `size` calls crosses a threshold. */
export interface CountBreakerOptions extends SlowCallOptions {
  kind: 'count';
  /** How many of the latest calls are looked at. Default 100. */
  size?: number;
  /** No decision until this many calls were seen (<= size). Default: `size`. */
  minSamples?: number;
  /** Open when failures / calls >= this, in (0, 1]. Default 0.5. */
  failureRatio?: number;
}

/** Open when the failure (or slow-call) ratio over a rolling time window crosses a threshold. */
export interface TimeBreakerOptions extends SlowCallOptions {
  kind: 'time';
  /** Length of the rolling window in ms. Default 60 000. */
  windowMs?: number;
  /** The window is kept as this many buckets; older buckets roll off whole. Default 10. */
  buckets?: number;
  /** No decision below this many calls in the window. Default 20. */
  minSamples?: number;
  /** Open when failures / calls >= this, in (0, 1]. Default 0.5. */
  failureRatio?: number;
}

/** How the breaker counts failures. */
export type BreakerOptions = ConsecutiveBreakerOptions | CountBreakerOptions | TimeBreakerOptions;

/** Options of `circuitBreaker()`. */
export interface CircuitBreakerOptions extends CommonOptions {
  /** How failures are counted. Default `{ kind: 'consecutive', threshold: 5 }`. */
  breaker?: BreakerOptions;
  /**
   * How long the breaker stays open before admitting probes, in ms, or a backoff whose
   * delays grow with each re-open and reset on close. Default 30 000.
   */
  halfOpenAfterMs?: number | Backoff;
  /** Half-open admission: `probes` at once (default 1); `successThreshold` successes close (default `probes`). */
  halfOpen?: { probes?: number; successThreshold?: number };
  /**
   * Which errors and results are failures. Default: every error except a bulkhead's
   * rejection; no result. Errors not handled count as successes (the dependency answered).
   */
  handle?: Handler;
  /** Errors and results that count neither way (e.g. a 404, or a validation error). */
  exclude?: Handler;
  /** Priorities that pass while the breaker is open or half-open (counted and emitted, never silent). */
  bypass?: readonly Priority[];
  /** A state saved by `toJSON()` to start from. */
  initialState?: SavedCircuitState;
  /** Random source for a jittered `halfOpenAfterMs` backoff. Default `Math.random`. */
  random?: RandomSource;
  /** The registry the breaker joins at creation. */
  registry?: Registry;
}

const ratio = s.optional(s.ratio(), 0.5);
const slowCall = {
  slowCallMs: s.optional(s.duration({ positive: true })),
  slowCallRatio: s.optional(s.ratio()),
};

const windowSchemas = {
  consecutive: s.object({
    kind: s.oneOf(['consecutive'] as const),
    threshold: s.optional(s.int({ min: 1 }), 5),
  }),
  count: s.object({
    kind: s.oneOf(['count'] as const),
    size: s.optional(s.int({ min: 1 }), 100),
    minSamples: s.optional(s.int({ min: 1 })),
    failureRatio: ratio,
    ...slowCall,
  }),
  time: s.object({
    kind: s.oneOf(['time'] as const),
    windowMs: s.optional(s.duration({ positive: true }), 60_000),
    buckets: s.optional(s.int({ min: 1 }), 10),
    minSamples: s.optional(s.int({ min: 1 }), 20),
    failureRatio: ratio,
    ...slowCall,
  }),
};

/** A window's settings with every default filled in. @internal */
export type WindowConfig =
  | { readonly kind: 'consecutive'; readonly threshold: number }
  | {
      readonly kind: 'count' | 'time';
      readonly size: number;
      readonly windowMs: number;
      readonly buckets: number;
      readonly minSamples: number;
      readonly failureRatio: number;
      /** Infinity when slow calls are not tracked. */
      readonly slowCallMs: number;
      readonly slowCallRatio: number;
    };

const KINDS = "one of 'consecutive', 'count', 'time'";

/** The `breaker` option: a failure window, chosen by `kind`. */
export const windowSchema = s.custom<WindowConfig>(
  `an object whose kind is ${KINDS}`,
  (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return s.fail(path, 'an options object', v);
    const kind = (v as { kind?: unknown }).kind;
    if (kind === 'consecutive') return windowSchemas.consecutive.parse(v, path);
    if (kind !== 'count' && kind !== 'time') return s.fail(`${path}.kind`, KINDS, kind);
    const o = (kind === 'count' ? windowSchemas.count.parse(v, path) : windowSchemas.time.parse(v, path)) as {
      size?: number;
      windowMs?: number;
      buckets?: number;
      minSamples?: number;
      failureRatio: number;
      slowCallMs?: number;
      slowCallRatio?: number;
    };
    const size = o.size ?? 0;
    const minSamples = o.minSamples ?? size;
    if (kind === 'count' && minSamples > size)
      s.fail(`${path}.minSamples`, `at most size (${size})`, minSamples);
    if (o.slowCallRatio !== undefined && o.slowCallMs === undefined)
      s.fail(`${path}.slowCallRatio`, 'set together with slowCallMs', o.slowCallRatio);
    return {
      kind,
      size,
      windowMs: o.windowMs ?? 0,
      buckets: o.buckets ?? 0,
      minSamples,
      failureRatio: o.failureRatio,
      slowCallMs: o.slowCallMs ?? Number.POSITIVE_INFINITY,
      slowCallRatio: o.slowCallRatio ?? 1,
    };
  },
  { anyOf: Object.values(windowSchemas).map((x) => x.json()) },
);

const handler = (example: string) =>
  s.custom<Handler>(`a handler, e.g. ${example}`, (v, path) =>
    Handler.is(v) ? v : s.fail(path, `a handler, e.g. ${example}`, v),
  );

const halfOpenAfterSchema = s.custom<number | Backoff>(
  'a finite number of ms >= 0, or a backoff',
  (v, path) => (isBackoff(v) ? v : s.duration().parse(v, path)),
  { type: 'number', minimum: 0 },
);

const clockSchema = s.custom<Clock>('a Clock (now, date, setTimeout, clearTimeout)', (v, path) =>
  clockOf(v as Clock, path),
);

/** The `registry` option of every component. */
export const registrySchema = s.custom<Registry>('a registry, e.g. createRegistry()', (v, path) =>
  typeof v === 'object' && v !== null && typeof (v as Registry).register === 'function'
    ? (v as Registry)
    : s.fail(path, 'a registry, e.g. createRegistry()', v),
);

/** The keys of a breaker's options, shared by `circuitBreaker` and `sharedCircuitBreaker`. @internal */
export const breakerShape = {
  breaker: s.optional(windowSchema),
  halfOpenAfterMs: s.optional(halfOpenAfterSchema, 30_000),
  halfOpen: s.optional(
    s.object({ probes: s.optional(s.int({ min: 1 }), 1), successThreshold: s.optional(s.int({ min: 1 })) }),
  ),
  handle: s.optional(handler('handle.transient()')),
  exclude: s.optional(handler('handle.errors(NotFoundError)')),
  bypass: s.optional(
    s.custom<readonly string[]>("an array of priority names, e.g. ['critical']", (v, path) =>
      Array.isArray(v) && v.every((x) => typeof x === 'string')
        ? Object.freeze([...(v as string[])])
        : s.fail(path, "an array of priority names, e.g. ['critical']", v),
    ),
  ),
  initialState: s.optional(s.unknown()),
  random: s.optional(s.fn<RandomSource>()),
  name: s.optional(s.string()),
  clock: s.optional(clockSchema),
  registry: s.optional(registrySchema),
};

/** A breaker's settings, parsed, with every default filled in. @internal */
export interface BreakerConfig {
  readonly name: string;
  readonly window: WindowConfig;
  readonly halfOpenAfterMs: number | Backoff;
  readonly probes: number;
  readonly successThreshold: number;
  readonly handler: Handler;
  readonly excluded: Handler | null;
  readonly bypass: readonly string[];
  readonly initialState: unknown;
  readonly random: RandomSource;
  readonly clock: Clock;
  readonly registry: Registry | undefined;
}

type ParsedShape = Infer<ReturnType<typeof s.object<typeof breakerShape>>>;

/** Fills a breaker's settings from options parsed with `breakerShape`. @internal */
export function breakerConfig(o: ParsedShape, defaultName: string, clock?: Clock): BreakerConfig {
  const probes = o.halfOpen?.probes ?? 1;
  return {
    name: o.name ?? defaultName,
    window: o.breaker ?? { kind: 'consecutive', threshold: 5 },
    halfOpenAfterMs: o.halfOpenAfterMs,
    probes,
    successThreshold: o.halfOpen?.successThreshold ?? probes,
    handler: o.handle ?? DEFAULT_FAILURES,
    excluded: o.exclude ?? null,
    bypass: o.bypass ?? [],
    initialState: o.initialState,
    random: o.random ?? systemRandom,
    clock: clock ?? o.clock ?? clockOf(undefined),
    registry: o.registry,
  };
}

const circuitBreakerSchema = s.object(breakerShape);

/** Validates the options of `circuitBreaker()` (throws `ConfigError`). @internal */
export function parseCircuitBreakerOptions(options: unknown): BreakerConfig {
  return breakerConfig(circuitBreakerSchema.parse(options ?? {}, 'circuitBreaker'), 'circuitBreaker');
}
