/**
 * Cache: a result is kept per key for `ttlMs`; a hit returns it without running the inner
 * policies or the function. Past its ttl, within `staleWhileRevalidateMs`, the stale value is
 * served at once and refreshed in the background (once per key at a time); within
 * `staleIfErrorMs`, it is served when the refresh fails. The store is pluggable (sync or async).
 */

import type { Clock } from '../core/clock.js';
import { defineDescriptor, type Figures } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { ConfigError } from '../core/errors.js';
import { type EventBase, PolicyEmitter, reportError } from '../core/events.js';
// Deliberate repetition: the list of validators this file imports (import lists match by shape).
import {
  checkFunction,
  checkKeys,
  checkNumber,
  checkObject,
  checkString,
  optNumber,
  rules,
} from '../core/options.js';
import { type CommonOptions, type Context, clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { type CacheEntry, type CacheStore, MemoryCacheStore } from './cache-store.js';
import { callKey, checkKeyFunction, type KeyFunction } from './call-key.js';

/** Options of `cache()`. */
export interface CacheOptions extends CommonOptions {
  /** The cache key of a call. */
  key: (ctx: Context) => string;
  /** How long a value is fresh, in ms (> 0). */
  ttlMs: number;
  /** Entries of the default in-memory store (LRU). Default 1000. Not allowed with `store`. */
  maxEntries?: number;
  /** After the ttl: how long a stale value is served while it is refreshed in the background. Default 0. */
  staleWhileRevalidateMs?: number;
  /** After the ttl: how long a stale value is served when computing a fresh one fails. Default 0. */
  staleIfErrorMs?: number;
  /** Where entries live. Default: an in-memory LRU store of `maxEntries`. */
  store?: CacheStore;
  /** Which results to store. Default: every result. */
  cacheable?: (value: unknown) => boolean;
}

/** Events of the cache policy. */
export type CacheEvent =
  | (EventBase & { readonly kind: 'cache'; readonly event: 'hit' | 'miss'; readonly key: string })
  | (EventBase & {
      readonly kind: 'cache';
      readonly event: 'stale';
      readonly key: string;
      /** Served while refreshing (`revalidate`) or because the refresh failed (`error`). */
      readonly reason: 'revalidate' | 'error';
      readonly error?: unknown;
    })
  | (EventBase & {
      readonly kind: 'cache';
      readonly event: 'refresh';
      readonly key: string;
      /** Whether the background refresh succeeded. */
      readonly ok: boolean;
      readonly error?: unknown;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    cache: CacheEvent;
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    (typeof x === 'object' || typeof x === 'function') &&
    x !== null &&
    typeof (x as { then?: unknown }).then === 'function'
  );
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'cache',
  help: 'Serves results from a store for ttlMs, stale while revalidating or on error.',
  states: ['ready'],
  gauges: {},
  counters: {
    hits: 'Fresh hits.',
    misses: 'Misses (the function ran).',
    stale: 'Stale values served.',
    refreshes: 'Background refreshes.',
    refreshErrors: 'Refreshes that failed.',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A cache policy. See `cache()`.
 */
export class CachePolicy extends PolicyBase<never, CacheEvent> {
  readonly kind = 'cache';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<CacheEvent>();
  /** The store in use. */
  readonly store: CacheStore;
  private readonly clock: Clock;
  private readonly key: KeyFunction;
  private readonly ttlMs: number;
  private readonly swrMs: number;
  private readonly sieMs: number;
  private readonly cacheable: ((value: unknown) => boolean) | undefined;
  /** Background refreshes in flight: key → when it started (clock.now()). */
  private readonly refreshing = new Map<string, number>();
  private counts = { hits: 0, misses: 0, stale: 0, refreshes: 0, refreshErrors: 0 };

  constructor(options: CacheOptions) {
    super();
    checkKeys('cache', options as unknown as Record<string, unknown>, [
      'key',
      'ttlMs',
      'maxEntries',
      'staleWhileRevalidateMs',
      'staleIfErrorMs',
      'store',
      'cacheable',
      'name',
      'registry',
      'clock',
    ]);
    this.key = checkKeyFunction('cache.key', options.key);
    this.ttlMs = checkNumber('cache.ttlMs', options.ttlMs, rules.positive);
    this.swrMs = optNumber(
      'cache.staleWhileRevalidateMs',
      options.staleWhileRevalidateMs,
      rules.finite(0),
      0,
    );
    this.sieMs = optNumber('cache.staleIfErrorMs', options.staleIfErrorMs, rules.finite(0), 0);
    this.cacheable = checkFunction('cache.cacheable', options.cacheable);
    this.name = checkString('cache.name', options.name, 'cache');
    this.clock = clockOf(options.clock, 'cache.clock');
    if (options.store !== undefined) {
      if (options.maxEntries !== undefined) {
        throw new ConfigError(
          'cache.maxEntries',
          'left out when a store is given (size the store instead)',
          options.maxEntries,
        );
      }
      const s = options.store as Partial<Record<keyof CacheStore, unknown>> | null;
      if (
        typeof s !== 'object' ||
        s === null ||
        typeof s.get !== 'function' ||
        typeof s.set !== 'function' ||
        typeof s.delete !== 'function'
      ) {
        throw new ConfigError(
          'cache.store',
          'a CacheStore (get, set, delete), e.g. memoryStore()',
          options.store,
        );
      }
      this.store = options.store;
    } else {
      const maxEntries = optNumber('cache.maxEntries', options.maxEntries, rules.int(1), 1000);
      this.store = new MemoryCacheStore({ maxEntries, clock: this.clock });
    }
    this._join('cache', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    return { state: 'ready', gauges: {}, counters: { ...this.counts } };
  }

  /** Counters since creation. */
  get stats(): {
    readonly hits: number;
    readonly misses: number;
    readonly stale: number;
    readonly refreshes: number;
    readonly refreshErrors: number;
  } {
    return { ...this.counts };
  }

  /**
   * Removes the entry of `key` (e.g. after a write). A miss or refresh of `key` already in flight
   * will not write its (older) value back.
   */
  async invalidate(key: string): Promise<void> {
    // Bounded: clearing only makes in-flight stores of other keys skip their write (safe side).
    if (this.generations.size >= 10_000) this.generations.clear();
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
    await this.store.delete(key);
  }

  /** Per key: how many times it was invalidated (only keys ever invalidated). */
  private readonly generations = new Map<string, number>();

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let key: string;
    try {
      key = callKey(this.key, ctx, 'cache.key(ctx)');
    } catch (error) {
      return Promise.reject(error);
    }
    let got: unknown;
    try {
      got = this.store.get(key);
    } catch (error) {
      reportError(`cache "${this.name}" store.get`, error);
      got = undefined;
    }
    if (isThenable(got)) {
      return Promise.resolve(got).then(
        (entry) => this.serve(ctx, next, key, entry as CacheEntry | undefined),
        (error: unknown) => {
          reportError(`cache "${this.name}" store.get`, error);
          return this.serve(ctx, next, key, undefined);
        },
      );
    }
    return this.serve(ctx, next, key, got as CacheEntry | undefined);
  }

  private serve(
    ctx: ExecutionContext,
    next: Link | null,
    key: string,
    entry: CacheEntry | undefined,
  ): Promise<unknown> {
    if (entry !== undefined && entry !== null) {
      const staleFor = this.clock.date() - entry.createdAt - this.ttlMs;
      if (staleFor < 0) {
        this.counts.hits++;
        if (this.emitter.wantsPerCall('hit')) this.emit({ event: 'hit' }, ctx, key);
        return Promise.resolve(entry.value);
      }
      if (staleFor < this.swrMs) {
        this.counts.stale++;
        if (this.emitter.wants('stale')) this.emit({ event: 'stale', reason: 'revalidate' }, ctx, key);
        this.refresh(ctx, next, key);
        return Promise.resolve(entry.value);
      }
    }
    this.counts.misses++;
    if (this.emitter.wantsPerCall('miss')) this.emit({ event: 'miss' }, ctx, key);
    const gen = this.generations.get(key) ?? 0;
    return start(ctx, next).then(
      (value) => {
        this.store_(key, value, gen);
        return value;
      },
      (error: unknown) => {
        if (
          entry !== undefined &&
          entry !== null &&
          this.clock.date() - entry.createdAt - this.ttlMs < this.sieMs
        ) {
          this.counts.stale++;
          if (this.emitter.wants('stale')) this.emit({ event: 'stale', reason: 'error', error }, ctx, key);
          return entry.value;
        }
        throw error;
      },
    );
  }

  /** Refreshes `key` in the background, once at a time per key, detached from the caller's signal. */
  private refresh(ctx: ExecutionContext, next: Link | null, key: string): void {
    const now = this.clock.now();
    const since = this.refreshing.get(key);
    // One refresh per key at a time; but one that has not settled within ttlMs is presumed hung
    // (put a timeout inside the cache to bound refreshes), and a new one may start.
    if (since !== undefined && now - since < this.ttlMs) return;
    this.refreshing.set(key, now);
    this.counts.refreshes++;
    const mine = () => this.refreshing.get(key) === now;
    const gen = this.generations.get(key) ?? 0;
    const bg = new ExecutionContext(ctx._fn, null, ctx.priority, ctx.name, ctx.props);
    bg.attempt = ctx.attempt;
    start(bg, next).then(
      (value) => {
        if (mine()) this.refreshing.delete(key);
        this.store_(key, value, gen);
        if (this.emitter.wants('refresh')) this.emit({ event: 'refresh', ok: true }, ctx, key);
      },
      (error: unknown) => {
        if (mine()) this.refreshing.delete(key);
        this.counts.refreshErrors++;
        if (this.emitter.wants('refresh')) this.emit({ event: 'refresh', ok: false, error }, ctx, key);
      },
    );
  }

  private store_(key: string, value: unknown, gen: number): void {
    if ((this.generations.get(key) ?? 0) !== gen) return; // invalidated meanwhile
    try {
      if (this.cacheable !== undefined && !this.cacheable(value)) return;
      const now = this.clock.date();
      const r = this.store.set(key, {
        value,
        createdAt: now,
        expiresAt: now + this.ttlMs + Math.max(this.swrMs, this.sieMs),
      });
      if (isThenable(r))
        r.then(undefined, (error: unknown) => reportError(`cache "${this.name}" store.set`, error));
    } catch (error) {
      reportError(`cache "${this.name}" store.set`, error);
    }
  }

  private emit(
    e:
      | { event: 'hit' | 'miss' }
      | { event: 'stale'; reason: 'revalidate' | 'error'; error?: unknown }
      | { event: 'refresh'; ok: boolean; error?: unknown },
    ctx: ExecutionContext,
    key: string,
  ): void {
    this.emitter.emit({
      kind: 'cache',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      key,
      ...e,
    } as CacheEvent);
  }
}

/**
 * Makes a cache policy.
 *
 * @example
 * ```ts nocheck
 * import { cache } from 'bulwark';
 * const c = cache({ key: (ctx) => `user:${ctx.props.id}`, ttlMs: 30_000, staleWhileRevalidateMs: 60_000 });
 * const user = await c.execute(loadUser, { props: { id: 7 } });
 * ```
 */
export function cache(options: CacheOptions): CachePolicy {
  return new CachePolicy(checkObject('cache', options) as unknown as CacheOptions);
}
