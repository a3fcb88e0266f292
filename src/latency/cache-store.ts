/**
 * The storage behind `cache()`: an interface any store (in memory, Redis, …) can implement,
 * sync or async, and an in-memory LRU store.
 */

import { type Clock, systemClock } from '../core/clock.js';
import { checkKeys, checkObject, optNumber, rules } from '../core/options.js';
import { clockOf } from '../core/policy.js';

/** One cached value. Times are wall-clock milliseconds (`clock.date()`), so stores can be shared. */
export interface CacheEntry<V = unknown> {
  readonly value: V;
  /** When the value was stored. */
  readonly createdAt: number;
  /** After this time the entry is of no use (past its ttl and every stale window): a store may drop it. */
  readonly expiresAt: number;
}

/**
 * A cache store. Each method may return a value or a promise. A store that fails (throws or
 * rejects) never fails a call: a failed `get` counts as a miss, a failed `set` or `delete` is
 * reported as a process warning.
 */
export interface CacheStore<V = unknown> {
  get(key: string): CacheEntry<V> | undefined | PromiseLike<CacheEntry<V> | undefined>;
  set(key: string, entry: CacheEntry<V>): void | PromiseLike<void>;
  delete(key: string): void | PromiseLike<void>;
}

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /** Entries kept at most; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /** Clock whose `date()` decides when an entry has expired. Default `systemClock`. */
  clock?: Clock;
}

/**
 * An in-memory LRU cache store (synchronous).
 */
export class MemoryCacheStore<V = unknown> implements CacheStore<V> {
  readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly map = new Map<string, CacheEntry<V>>();

  constructor(options: MemoryStoreOptions = {}) {
    const o = checkObject('memoryStore', options);
    checkKeys('memoryStore', o, ['maxEntries', 'clock']);
    this.maxEntries = optNumber('memoryStore.maxEntries', o.maxEntries, rules.int(1), 1000);
    this.clock = o.clock === undefined ? systemClock : clockOf(o.clock as Clock, 'memoryStore.clock');
  }

  /** Entries held now (expired ones included until they are read or evicted). */
  get size(): number {
    return this.map.size;
  }

  get(key: string): CacheEntry<V> | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    if (this.clock.date() >= e.expiresAt) return undefined;
    this.map.set(key, e); // most recently used
    return e;
  }

  set(key: string, entry: CacheEntry<V>): void {
    this.map.delete(key);
    this.map.set(key, entry);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  /** Removes every entry. */
  clear(): void {
    this.map.clear();
  }
}

/**
 * Makes an in-memory LRU store for `cache({ store })`.
 *
 * @example
 * ```ts nocheck
 * import { cache, memoryStore } from 'bulwark';
 * const c = cache({ key: (ctx) => String(ctx.props.id), ttlMs: 60_000, store: memoryStore({ maxEntries: 10_000 }) });
 * ```
 */
export function memoryStore<V = unknown>(options: MemoryStoreOptions = {}): MemoryCacheStore<V> {
  return new MemoryCacheStore<V>(options);
}
