/**
 * bulwark/redis cache store with the cache policy, against the real Redis at 127.0.0.1:6379 (see
 * test/support/redis.ts: skipped without Redis outside CI, failing on CI).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { cache } from '../src/index.js';
import { redisCacheStore } from '../src/redis/cache-store.js';
import { cleanup, connectRedis, describeRedis, testPrefix, until } from './support/redis.js';

describeRedis('redisCacheStore (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    redis = await connectRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    await cleanup(redis, prefix);
    expect(unhandled).toEqual([]);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    redis?.disconnect();
  });

  it('stores entries as JSON with createdAt/expiresAt and a PX expiry; get/set/delete', async () => {
    prefix = testPrefix();
    const store = redisCacheStore({ client: redis, prefix });
    const now = Date.now();
    expect(await store.get('a')).toBeUndefined();
    await store.set('a', { value: { n: 1, s: 'x' }, createdAt: now, expiresAt: now + 5_000 });
    expect(await store.get('a')).toEqual({ value: { n: 1, s: 'x' }, createdAt: now, expiresAt: now + 5_000 });
    const pttl = await redis.pttl(`${prefix}a`);
    expect(pttl).toBeGreaterThan(4_000);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    // An entry already past expiresAt is not stored (and removes an older one).
    await store.set('b', { value: 1, createdAt: now, expiresAt: now + 5_000 });
    await store.set('b', { value: 2, createdAt: now - 10, expiresAt: now - 1 });
    expect(await redis.exists(`${prefix}b`)).toBe(0);
    // Unreadable content is a miss.
    await redis.set(`${prefix}c`, 'not json', 'PX', 5_000);
    expect(await store.get('c')).toBeUndefined();
  });

  it('with cache(): miss, hit shared by two instances, expiry after a short ttl', async () => {
    prefix = testPrefix();
    let calls = 0;
    const load = (id: number) => ({ id, n: ++calls });
    const mk = () =>
      cache({
        key: (ctx) => `user:${String(ctx.props.id)}`,
        ttlMs: 400,
        store: redisCacheStore({ client: redis, prefix }),
      });
    const a = mk();
    const b = mk(); // another instance
    const events: string[] = [];
    a.onEvent((e) => events.push(`a:${e.event}`));
    b.onEvent((e) => events.push(`b:${e.event}`));
    expect(await a.execute((ctx) => load(ctx.props.id as number), { props: { id: 7 } })).toEqual({
      id: 7,
      n: 1,
    });
    // The write is in the background: wait for it to land.
    expect(await until(async () => (await redis.exists(`${prefix}user:7`)) === 1, 1_000)).toBe(true);
    expect(await b.execute((ctx) => load(ctx.props.id as number), { props: { id: 7 } })).toEqual({
      id: 7,
      n: 1,
    });
    expect(await a.execute((ctx) => load(ctx.props.id as number), { props: { id: 7 } })).toEqual({
      id: 7,
      n: 1,
    });
    expect(calls).toBe(1);
    expect(events).toEqual(['a:miss', 'b:hit', 'a:hit']);
    // Past the ttl (no stale window): Redis drops the key, and the next call is a miss.
    expect(await until(async () => (await redis.exists(`${prefix}user:7`)) === 0, 2_000)).toBe(true);
    expect(await b.execute((ctx) => load(ctx.props.id as number), { props: { id: 7 } })).toEqual({
      id: 7,
      n: 2,
    });
    expect(events.at(-1)).toBe('b:miss');
  });

  it('with cache(): stale-if-error serves the stored value when the refresh fails', async () => {
    prefix = testPrefix();
    const c = cache({
      key: () => 'k',
      ttlMs: 80,
      staleIfErrorMs: 5_000,
      store: redisCacheStore({ client: redis, prefix }),
    });
    expect(await c.execute(() => 'v1')).toBe('v1');
    expect(await until(async () => (await redis.exists(`${prefix}k`)) === 1, 1_000)).toBe(true);
    // The key lives for ttl + staleIfError.
    expect(await redis.pttl(`${prefix}k`)).toBeGreaterThan(4_000);
    // Wait until the entry is stale (past its ttl), then fail.
    const createdAt = JSON.parse((await redis.get(`${prefix}k`))!).c as number;
    await until(async () => Date.now() - createdAt > 100, 1_000);
    expect(
      await c.execute(() => {
        throw new Error('down');
      }),
    ).toBe('v1');
    expect(c.stats.stale).toBe(1);
    // A success replaces it.
    expect(await c.execute(() => 'v2')).toBe('v2');
    expect(await until(async () => (await c.store.get('k'))?.value === 'v2', 1_000)).toBe(true);
  });

  it('a failing Redis never fails a call: a get error is a miss', async () => {
    prefix = testPrefix();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const broken = {
        get: () => Promise.reject(new Error('redis down')),
        set: () => Promise.reject(new Error('redis down')),
        del: () => Promise.reject(new Error('redis down')),
      };
      const c = cache({
        key: () => 'k',
        ttlMs: 1_000,
        store: redisCacheStore({ client: broken as never, prefix }),
      });
      expect(await c.execute(() => 1)).toBe(1);
      await until(async () => warnings.length >= 2, 1_000);
      expect(warnings.length).toBeGreaterThanOrEqual(2);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('validates its options', () => {
    prefix = testPrefix();
    expect(() => redisCacheStore({ client: {} as never })).toThrow(/client/);
    expect(() => redisCacheStore({ client: redis, prefx: 'x' } as never)).toThrow(/prefx/);
  });
});
