/**
 * The in-memory rate limiter: one or several limits per key, checked all first and then spent
 * together (a call that any limit rejects spends nothing in the others). Memory is bounded:
 * keys are kept in LRU order, at most `maxKeys` of them, and a key whose state is back to full
 * is dropped (each new key examines the two least recently used ones; `prune()` sweeps all).
 */

import { type Clock, systemClock } from '../core/clock.js';
import { registrySchema } from '../core/common-schemas.js';
import type { Component } from '../core/component.js';
import { type ComponentDescriptor, defineDescriptor, type Snapshot } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, makeDisposer } from '../core/events.js';
import { checkEnum, checkKeys, checkNumber, checkObject, optNumber, rules } from '../core/options.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { FixedWindow } from './algorithms/fixed-window.js';
import { Gcra } from './algorithms/gcra.js';
import { SlidingWindowCounter } from './algorithms/sliding-window-counter.js';
import { SlidingWindowLog } from './algorithms/sliding-window-log.js';
import { TokenBucket } from './algorithms/token-bucket.js';
import type { RateAlgorithm } from './algorithms/types.js';

/** A token bucket: `capacity` tokens, refilled at `refillRate` tokens per second; starts full. */
export interface TokenBucketLimit {
  readonly algorithm: 'token-bucket';
  readonly capacity: number;
  readonly refillRate: number;
}

/** GCRA (redis-cell): `rate` per `periodMs`, plus `burst` (default 0) extra at once. */
export interface GcraLimit {
  readonly algorithm: 'gcra';
  readonly rate: number;
  readonly periodMs: number;
  readonly burst?: number;
}

/** A window algorithm: `limit` units per `windowMs`. */
export interface WindowLimit {
  readonly algorithm: 'fixed-window' | 'sliding-window-counter' | 'sliding-window-log';
  readonly limit: number;
  readonly windowMs: number;
}

/** One limit of a rate limiter. */
export type RateLimitSpec = TokenBucketLimit | GcraLimit | WindowLimit;

/** Options of `rateLimiter()`. */
export interface RateLimiterOptions {
  /** The limits, all enforced together (at least one). */
  readonly limits: readonly RateLimitSpec[];
  /** Most keys kept at once; the least recently used is dropped past it. Default 10 000. */
  readonly maxKeys?: number;
  /** Source of time (monotonic ms). Default `systemClock`. */
  readonly clock?: Clock;
  /** The limiter's name, as a component. Default `rateLimiter`. */
  readonly name?: string;
  /** Registers the limiter (a `Component`, kind `rateLimiter`) in this registry. */
  readonly registry?: Registry;
}

const DESCRIPTOR = defineDescriptor({
  kind: 'rateLimiter',
  help: 'An in-memory rate limiter: one or several limits per key.',
  category: 'limiter',
  states: ['ready'],
  gauges: { keys: 'Keys held now.', maxKeys: 'Keys held at most (least recently used dropped past it).' },
  counters: { allowed: 'Decisions that admitted a call.', rejected: 'Decisions that refused a call.' },
});

const NO_EVENTS: Disposer = makeDisposer(() => {});

/** The outcome of `consume`/`peek`. */
export interface RateLimitDecision {
  /** True when the call was admitted (and its cost spent in every limit). */
  readonly allowed: boolean;
  /** Units left in the most constraining limit after this call. */
  readonly remaining: number;
  /** Ms until a call of the same cost could be admitted: 0 when allowed, Infinity if never. */
  readonly retryAfterMs: number;
  /** Ms until the most constraining limit is back to full. */
  readonly resetMs: number;
  /** The size of the most constraining limit (capacity, burst + 1 or window limit). */
  readonly limit: number;
  /** The window of the most constraining limit, in ms (token bucket: time to refill). */
  readonly windowMs: number;
}

/** A decision (a class, so every decision has one shape). */
class Decision implements RateLimitDecision {
  constructor(
    readonly allowed: boolean,
    readonly remaining: number,
    readonly retryAfterMs: number,
    readonly resetMs: number,
    readonly limit: number,
    readonly windowMs: number,
  ) {}
}

class Entry {
  prev: Entry | null = null;
  next: Entry | null = null;
  constructor(
    readonly key: string,
    readonly states: unknown[],
  ) {}
}

type AnyAlgorithm = RateAlgorithm<unknown>;

/** How many LRU keys are examined for idleness on each call. */
const SWEEP = 2;

function makeAlgorithm(path: string, raw: unknown): AnyAlgorithm {
  const spec = checkObject(path, raw);
  if (raw === undefined) throw new ConfigError(path, 'a limit object', raw);
  const algorithm = checkEnum(
    `${path}.algorithm`,
    spec.algorithm,
    ['token-bucket', 'gcra', 'fixed-window', 'sliding-window-counter', 'sliding-window-log'] as const,
    'token-bucket',
  );
  if (spec.algorithm === undefined)
    throw new ConfigError(`${path}.algorithm`, 'an algorithm name', undefined);
  switch (algorithm) {
    case 'token-bucket':
      checkKeys(path, spec, ['algorithm', 'capacity', 'refillRate']);
      return new TokenBucket(
        checkNumber(`${path}.capacity`, spec.capacity, rules.positive),
        checkNumber(`${path}.refillRate`, spec.refillRate, rules.positive),
      ) as AnyAlgorithm;
    case 'gcra':
      checkKeys(path, spec, ['algorithm', 'rate', 'periodMs', 'burst']);
      return new Gcra(
        checkNumber(`${path}.rate`, spec.rate, rules.positive),
        checkNumber(`${path}.periodMs`, spec.periodMs, rules.positive),
        optNumber(`${path}.burst`, spec.burst, rules.int(0), 0),
      ) as AnyAlgorithm;
    default: {
      checkKeys(path, spec, ['algorithm', 'limit', 'windowMs']);
      const limit = checkNumber(`${path}.limit`, spec.limit, rules.positive);
      const windowMs = checkNumber(`${path}.windowMs`, spec.windowMs, rules.positive);
      if (algorithm === 'fixed-window') return new FixedWindow(limit, windowMs) as AnyAlgorithm;
      if (algorithm === 'sliding-window-counter')
        return new SlidingWindowCounter(limit, windowMs) as AnyAlgorithm;
      return new SlidingWindowLog(limit, windowMs) as AnyAlgorithm;
    }
  }
}

/**
 * A rate limiter. See `rateLimiter()`.
 */
export class RateLimiter implements Component {
  readonly kind = 'rateLimiter';
  readonly name: string;
  private allowed = 0;
  private rejected = 0;
  /** @internal */
  algorithms: readonly AnyAlgorithm[];
  private one: AnyAlgorithm | null;
  private specs: readonly RateLimitSpec[];
  private readonly maxKeys: number;
  /** @internal */
  readonly clock: Clock;
  private readonly map = new Map<string, Entry>();
  /** Least recently used first. */
  private head: Entry | null = null;
  private tail: Entry | null = null;
  /** Set by `_take` for the policy: the retry delay of the last rejection. @internal */
  _retryAfterMs = 0;

  constructor(options: RateLimiterOptions) {
    const o = checkObject('rateLimiter', options);
    checkKeys('rateLimiter', o, ['limits', 'maxKeys', 'clock', 'name', 'registry']);
    this.name = s.optional(s.string()).parse(o.name, 'rateLimiter.name') ?? 'rateLimiter';
    if (!Array.isArray(o.limits) || o.limits.length === 0) {
      throw new ConfigError('rateLimiter.limits', 'a non-empty array of limits', o.limits);
    }
    this.algorithms = Object.freeze(
      (o.limits as unknown[]).map((l, i) => makeAlgorithm(`rateLimiter.limits[${i}]`, l)),
    );
    this.one = this.algorithms.length === 1 ? this.algorithms[0]! : null;
    this.specs = Object.freeze((o.limits as RateLimitSpec[]).map((l) => ({ ...l })));
    this.maxKeys = optNumber('rateLimiter.maxKeys', o.maxKeys, rules.int(1), 10_000);
    const clock = o.clock ?? systemClock;
    if (typeof (clock as Clock).now !== 'function') {
      throw new ConfigError('rateLimiter.clock', 'a Clock', clock);
    }
    this.clock = clock as Clock;
    joinRegistry(s.optional(registrySchema).parse(o.registry, 'rateLimiter.registry'), this);
  }

  // Deliberate repetition: the descriptor getter and snapshot literal of a Component (the same keys in
  // every component; the values differ in meaning).
  get descriptor(): ComponentDescriptor {
    return DESCRIPTOR;
  }

  /** Keys held and decisions taken (through `consume` and the `rateLimit` policy). */
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'ready',
      gauges: { keys: this.map.size, maxKeys: this.maxKeys },
      counters: { allowed: this.allowed, rejected: this.rejected },
    };
  }

  /** The limiter emits no events (the `rateLimit` policy over it does). */
  onEvent(): Disposer {
    return NO_EVENTS;
  }

  /** The limits enforced now (copies of the specs given). */
  get limits(): readonly RateLimitSpec[] {
    return this.specs;
  }

  /**
   * Replaces the limits at run time; the next decision uses them. When the algorithms stay the
   * same (same count and kinds, new numbers) every key keeps what it has spent (a token bucket's
   * tokens are cut to a smaller capacity); otherwise every key starts full. (A policy over this
   * limiter, `rateLimit().setLimits`, also wakes the calls waiting for room.)
   *
   * @example
   * ```ts
   * import { rateLimiter } from 'bulwark';
   * const limiter = rateLimiter({ limits: [{ algorithm: 'token-bucket', capacity: 10, refillRate: 5 }] });
   * limiter.setLimits([{ algorithm: 'token-bucket', capacity: 20, refillRate: 10 }]);
   * console.log(limiter.limits[0]); // { algorithm: 'token-bucket', capacity: 20, refillRate: 10 }
   * ```
   */
  setLimits(limits: readonly RateLimitSpec[]): void {
    if (!Array.isArray(limits) || limits.length === 0)
      throw new ConfigError('rateLimiter.setLimits(limits)', 'a non-empty array of limits', limits);
    const next = limits.map((l, i) => makeAlgorithm(`rateLimiter.setLimits(limits)[${i}]`, l));
    const same =
      next.length === this.algorithms.length && next.every((a, i) => a.kind === this.algorithms[i]!.kind);
    this.algorithms = Object.freeze(next);
    this.one = next.length === 1 ? next[0]! : null;
    this.specs = Object.freeze(limits.map((l) => ({ ...l })));
    if (!same) {
      this.clear();
      return;
    }
    for (const e of this.map.values())
      for (let i = 0; i < next.length; i++) {
        const a = next[i]!;
        const st = e.states[i] as Float64Array;
        if (a instanceof TokenBucket && st[0]! > a.capacity) st[0] = a.capacity;
      }
  }

  /** Keys held now. */
  get size(): number {
    return this.map.size;
  }

  /**
   * Spends `cost` units (default 1) for `key` in every limit if all of them admit it, else
   * spends nothing. Synchronous.
   */
  consume(key: string, cost = 1): RateLimitDecision {
    checkCost(cost);
    const d = this.decide(key, cost, true);
    if (d.allowed) this.allowed++;
    else this.rejected++;
    return d;
  }

  /** What `consume(key, cost)` would decide now, without spending anything. */
  peek(key: string, cost = 1): RateLimitDecision {
    checkCost(cost);
    return this.decide(key, cost, false);
  }

  /** Forgets `key` (its limits are full again). */
  reset(key: string): void {
    const e = this.map.get(key);
    if (e !== undefined) this.drop(e);
  }

  /** Forgets every key. */
  clear(): void {
    this.map.clear();
    this.head = null;
    this.tail = null;
  }

  /** Drops every key whose state is back to full; returns how many were dropped. */
  prune(): number {
    const now = this.clock.now();
    let n = 0;
    for (let e = this.head; e !== null; ) {
      const next = e.next;
      if (this.isIdle(e, now)) {
        this.drop(e);
        n++;
      }
      e = next;
    }
    return n;
  }

  /**
   * The policy's fast path: spends and returns -1, or returns the retry delay (> 0 or
   * Infinity) and spends nothing. @internal
   */
  _take(key: string, cost: number): number {
    const now = this.clock.now();
    const e = this.entry(key, now, true);
    const algs = this.algorithms;
    const one = this.one;
    if (one !== null) {
      const s = e.states[0];
      if (one.check(s, now, cost)) {
        one.commit(s, now, cost);
        this.allowed++;
        return -1;
      }
      this.rejected++;
      return positive(one.retryAfter(s, now, cost));
    }
    let wait = -1;
    for (let i = 0; i < algs.length; i++) {
      const a = algs[i]!;
      const s = e.states[i];
      if (!a.check(s, now, cost)) {
        const r = positive(a.retryAfter(s, now, cost));
        if (r > wait) wait = r;
      }
    }
    if (wait >= 0) {
      this.rejected++;
      return wait;
    }
    for (let i = 0; i < algs.length; i++) algs[i]!.commit(e.states[i], now, cost);
    this.allowed++;
    return -1;
  }

  private decide(key: string, cost: number, spend: boolean): RateLimitDecision {
    const now = this.clock.now();
    const e = this.entry(key, now, spend);
    const one = this.one;
    if (one !== null) {
      // One limit: no search for the most constraining one.
      const s = e.states[0];
      if (one.check(s, now, cost)) {
        let remaining: number;
        if (spend) {
          one.commit(s, now, cost);
          remaining = one.remaining(s, now);
        } else remaining = Math.max(0, Math.floor(one.remaining(s, now) - cost));
        return new Decision(true, remaining, 0, one.reset(s, now), one.limit, one.windowMs);
      }
      return new Decision(
        false,
        one.remaining(s, now),
        positive(one.retryAfter(s, now, cost)),
        one.reset(s, now),
        one.limit,
        one.windowMs,
      );
    }
    const algs = this.algorithms;
    let allowed = true;
    for (let i = 0; i < algs.length; i++) {
      if (!algs[i]!.check(e.states[i], now, cost)) allowed = false;
    }
    if (allowed && spend) for (let i = 0; i < algs.length; i++) algs[i]!.commit(e.states[i], now, cost);
    // The most constraining limit: when rejected, the one asking the longest wait; when
    // admitted, the one with the fewest units left.
    let best = 0;
    let bestRemaining = Number.POSITIVE_INFINITY;
    let bestRetry = -1;
    for (let i = 0; i < algs.length; i++) {
      const a = algs[i]!;
      const s = e.states[i];
      if (allowed) {
        const r = spend ? a.remaining(s, now) : Math.max(0, Math.floor(a.remaining(s, now) - cost));
        if (r < bestRemaining) {
          bestRemaining = r;
          best = i;
        }
      } else {
        const r = a.retryAfter(s, now, cost);
        if (r > bestRetry) {
          bestRetry = r;
          best = i;
        }
      }
    }
    const a = algs[best]!;
    const s = e.states[best];
    return new Decision(
      allowed,
      allowed ? bestRemaining : a.remaining(s, now),
      allowed ? 0 : positive(bestRetry),
      a.reset(s, now),
      a.limit,
      a.windowMs,
    );
  }

  private isIdle(e: Entry, now: number): boolean {
    const algs = this.algorithms;
    for (let i = 0; i < algs.length; i++) if (!algs[i]!.idle(e.states[i], now)) return false;
    return true;
  }

  /**
   * The key's entry, made or moved to the most recently used end. Making a new key drops up to
   * `SWEEP` idle least-recently-used keys, so keys that come back to full are forgotten as others
   * arrive, while a steady set of keys is never churned. With `store` false (peek), an unknown
   * key gets a fresh entry that is not stored.
   */
  private entry(key: string, now: number, store: boolean): Entry {
    let e = this.map.get(key);
    if (e === undefined) {
      const algs = this.algorithms;
      const states = new Array<unknown>(algs.length);
      for (let i = 0; i < algs.length; i++) states[i] = algs[i]!.create(now);
      e = new Entry(key, states);
      if (!store) return e; // peek: a fresh state, not stored
      this.sweep(now);
      this.map.set(key, e);
      if (this.map.size > this.maxKeys && this.head !== null) this.drop(this.head);
    } else if (e !== this.tail) {
      this.unlink(e);
    } else return e;
    e.prev = this.tail;
    e.next = null;
    if (this.tail === null) this.head = e;
    else this.tail.next = e;
    this.tail = e;
    return e;
  }

  /** Drops the least recently used keys that are idle (a few per call). */
  private sweep(now: number): void {
    for (let i = 0; i < SWEEP; i++) {
      const h = this.head;
      if (h === null || !this.isIdle(h, now)) return;
      this.drop(h);
    }
  }

  // Deliberate repetition: unlinking from an intrusive list, kept inline per list: one shared helper over
  // different node classes would make these hot-path property accesses polymorphic.
  private unlink(e: Entry): void {
    const { prev, next } = e;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    e.prev = null;
    e.next = null;
  }

  private drop(e: Entry): void {
    this.unlink(e);
    this.map.delete(e.key);
  }
}

function positive(ms: number): number {
  return ms > 0 ? ms : Number.MIN_VALUE;
}

function checkCost(cost: number): void {
  if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
    throw new ConfigError('rateLimiter.consume(cost)', 'a finite number >= 0', cost);
  }
}

/**
 * Makes an in-memory rate limiter with one or several limits per key.
 *
 * @example
 * ```ts
 * import { rateLimiter } from 'bulwark';
 * const l = rateLimiter({
 *   limits: [
 *     { algorithm: 'gcra', rate: 4, periodMs: 1_000, burst: 3 },
 *     { algorithm: 'fixed-window', limit: 60, windowMs: 60_000 },
 *   ],
 * });
 * const d = l.consume('user-42');
 * if (!d.allowed) console.log(`retry in ${d.retryAfterMs} ms`);
 * ```
 */
export function rateLimiter(options: RateLimiterOptions): RateLimiter {
  return new RateLimiter(options);
}
