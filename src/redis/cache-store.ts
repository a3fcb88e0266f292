/**
 * A Redis store for `cache({ store })`: each entry is one string key holding the JSON of
 * `{ value, createdAt, expiresAt }`, set with a PX expiry at `expiresAt`, so Redis drops it once it
 * is of no use. Every instance that uses the same Redis and prefix shares the entries.
 */
import type { Cluster, Redis } from 'ioredis';
import { s } from '../core/schema.js';
import type { CacheEntry, CacheStore } from '../latency/cache-store.js';
import { clientSchema } from './client-schema.js';

/** The subset of an ioredis client (or Cluster) the store uses. */
export type RedisCacheClient = Pick<Redis | Cluster, 'get' | 'set' | 'del'>;

/** Options of `redisCacheStore()`. */
export interface RedisCacheStoreOptions {
  /** An ioredis client or Cluster, owned by the caller. */
  readonly client: RedisCacheClient;
  /** Prefix of every key. Default `'bulwark:cache:'`. */
  readonly prefix?: string;
  /** Turns a value into a string. Default `JSON.stringify` (so values must be JSON-serialisable). */
  readonly serialize?: (value: unknown) => string;
  /** Turns the string back into a value. Default `JSON.parse`. */
  readonly deserialize?: (text: string) => unknown;
  /** Wall-clock time in ms, for the expiry. Default `Date.now`. */
  readonly now?: () => number;
}

const schema = s.object({
  client: clientSchema<RedisCacheClient>(['get', 'set', 'del']),
  prefix: s.optional(s.string(), 'bulwark:cache:'),
  serialize: s.optional(s.fn<(value: unknown) => string>()),
  deserialize: s.optional(s.fn<(text: string) => unknown>()),
  now: s.optional(s.fn<() => number>()),
});

/** A cache store on Redis. See `redisCacheStore()`. */
export class RedisCacheStore<V = unknown> implements CacheStore<V> {
  readonly prefix: string;
  private readonly client: RedisCacheClient;
  private readonly serialize: (value: unknown) => string;
  private readonly deserialize: (text: string) => unknown;
  private readonly now: () => number;

  constructor(options: RedisCacheStoreOptions) {
    const o = schema.parse(options, 'redisCacheStore');
    this.client = o.client;
    this.prefix = o.prefix ?? 'bulwark:cache:';
    this.serialize = o.serialize ?? JSON.stringify;
    this.deserialize = o.deserialize ?? JSON.parse;
    this.now = o.now ?? Date.now;
  }

  /** The entry of `key`, or undefined (absent, expired, or unreadable). Rejects when Redis fails. */
  async get(key: string): Promise<CacheEntry<V> | undefined> {
    const text = await (this.client as Redis).get(this.prefix + key);
    if (text === null) return undefined;
    let e: { v: string; c: number; x: number };
    try {
      e = JSON.parse(text) as { v: string; c: number; x: number };
    } catch {
      return undefined;
    }
    if (typeof e !== 'object' || e === null || typeof e.v !== 'string') return undefined;
    if (this.now() >= e.x) return undefined;
    return { value: this.deserialize(e.v) as V, createdAt: e.c, expiresAt: e.x };
  }

  /** Stores `entry` until its `expiresAt` (an entry already expired is deleted instead). */
  async set(key: string, entry: CacheEntry<V>): Promise<void> {
    const ttl = Math.ceil(entry.expiresAt - this.now());
    const c = this.client as Redis;
    if (!(ttl > 0)) {
      await c.del(this.prefix + key);
      return;
    }
    const v = this.serialize(entry.value);
    if (typeof v !== 'string')
      throw new TypeError(`redisCacheStore: the value of "${key}" did not serialise to a string`);
    await c.set(this.prefix + key, JSON.stringify({ v, c: entry.createdAt, x: entry.expiresAt }), 'PX', ttl);
  }

  async delete(key: string): Promise<void> {
    await (this.client as Redis).del(this.prefix + key);
  }
}

/**
 * Makes a Redis store for `cache({ store })`.
 *
 * @example
 * ```ts nocheck
 * import { cache } from 'bulwark';
 * import { redisCacheStore } from 'bulwark/redis';
 * const c = cache({ key: (ctx) => `user:${ctx.props.id}`, ttlMs: 30_000, store: redisCacheStore({ client }) });
 * ```
 */
export function redisCacheStore<V = unknown>(options: RedisCacheStoreOptions): RedisCacheStore<V> {
  return new RedisCacheStore<V>(options);
}
