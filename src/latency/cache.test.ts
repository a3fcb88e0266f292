import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { createFakeClock, deferred, flushMicrotasks } from '../testing/index.js';
import { type CacheEvent, cache } from './cache.js';
import { type CacheEntry, type CacheStore, memoryStore } from './cache-store.js';

const byId = { key: (ctx: { props: Record<string, unknown> }) => String(ctx.props.id) };

describe('cache', () => {
  it('serves hits within the ttl without running the inner policies, then misses', async () => {
    const clock = createFakeClock();
    const c = cache({ ...byId, ttlMs: 1_000, clock });
    const events: CacheEvent[] = [];
    c.onEvent((e) => events.push(e));
    let inner = 0;
    const r = retry({ maxAttempts: 2 });
    r.onEvent(() => inner++);
    const p = pipeline(c, r);
    let n = 0;
    const load = () => ++n;
    expect(await p.execute(load, { props: { id: 1 } })).toBe(1);
    expect(await p.execute(load, { props: { id: 1 } })).toBe(1);
    expect(await p.execute(load, { props: { id: 2 } })).toBe(2);
    await clock.tick(999);
    expect(await p.execute(load, { props: { id: 1 } })).toBe(1);
    await clock.tick(1);
    expect(await p.execute(load, { props: { id: 1 } })).toBe(3);
    expect(events.map((e) => `${e.event}:${e.key}`)).toEqual([
      'miss:1',
      'hit:1',
      'miss:2',
      'hit:1',
      'miss:1',
    ]);
    expect(c.stats).toMatchObject({ hits: 2, misses: 3 });
    expect(clock.pending).toBe(0);
  });

  it('stale-while-revalidate serves stale and refreshes once in the background', async () => {
    const clock = createFakeClock();
    const c = cache({ ...byId, ttlMs: 100, staleWhileRevalidateMs: 1_000, clock });
    const events: CacheEvent[] = [];
    c.onEvent((e) => events.push(e));
    const gate = deferred<string>();
    let runs = 0;
    expect(await c.execute(() => 'v1', { props: { id: 1 } })).toBe('v1');
    await clock.tick(150);
    const load = () => {
      runs++;
      return gate.promise;
    };
    expect(await c.execute(load, { props: { id: 1 } })).toBe('v1');
    expect(await c.execute(load, { props: { id: 1 } })).toBe('v1');
    expect(runs).toBe(1);
    gate.resolve('v2');
    await flushMicrotasks();
    expect(await c.execute(load, { props: { id: 1 } })).toBe('v2');
    expect(events.map((e) => e.event)).toEqual(['miss', 'stale', 'stale', 'refresh', 'hit']);
    // Past ttl + swr: a plain miss.
    await clock.tick(2_000);
    expect(await c.execute(() => 'v3', { props: { id: 1 } })).toBe('v3');
  });

  it('a failed background refresh keeps the stale value and is counted', async () => {
    const clock = createFakeClock();
    const c = cache({ ...byId, ttlMs: 100, staleWhileRevalidateMs: 1_000, clock });
    await c.execute(() => 'v1', { props: { id: 1 } });
    await clock.tick(200);
    expect(await c.execute(() => Promise.reject(new Error('down')), { props: { id: 1 } })).toBe('v1');
    await flushMicrotasks();
    expect(c.stats.refreshErrors).toBe(1);
  });

  it('stale-if-error serves stale when the call fails within the window, and not after', async () => {
    const clock = createFakeClock();
    const c = cache({ ...byId, ttlMs: 100, staleIfErrorMs: 500, clock });
    const events: CacheEvent[] = [];
    c.onEvent((e) => events.push(e));
    await c.execute(() => 'v1', { props: { id: 1 } });
    await clock.tick(300);
    const fail = () => Promise.reject(new Error('down'));
    expect(await c.execute(fail, { props: { id: 1 } })).toBe('v1');
    expect(events.at(-1)).toMatchObject({ event: 'stale', reason: 'error' });
    await clock.tick(400);
    await expect(c.execute(fail, { props: { id: 1 } })).rejects.toThrow('down');
  });

  it('the memory store is an LRU of maxEntries', async () => {
    const c = cache({ ...byId, ttlMs: 10_000, maxEntries: 2 });
    let n = 0;
    const load = () => ++n;
    await c.execute(load, { props: { id: 'a' } }); // 1
    await c.execute(load, { props: { id: 'b' } }); // 2
    await c.execute(load, { props: { id: 'a' } }); // hit: a most recent
    await c.execute(load, { props: { id: 'c' } }); // 3, evicts b
    expect(await c.execute(load, { props: { id: 'a' } })).toBe(1);
    expect(await c.execute(load, { props: { id: 'b' } })).toBe(4);
    const s = memoryStore({ maxEntries: 1 });
    s.set('x', { value: 1, createdAt: 0, expiresAt: Number.POSITIVE_INFINITY });
    expect(s.size).toBe(1);
    s.delete('x');
    expect(s.get('x')).toBeUndefined();
  });

  it('takes an async store; a failing store never fails the call', async () => {
    const clock = createFakeClock();
    const map = new Map<string, CacheEntry>();
    const store: CacheStore = {
      get: async (k) => map.get(k),
      set: async (k, e) => {
        map.set(k, e);
      },
      delete: async (k) => {
        map.delete(k);
      },
    };
    const c = cache({ ...byId, ttlMs: 100, store, clock });
    expect(await c.execute(() => 'x', { props: { id: 1 } })).toBe('x');
    await flushMicrotasks();
    expect(await c.execute(() => 'y', { props: { id: 1 } })).toBe('x');
    await c.invalidate('1');
    expect(await c.execute(() => 'z', { props: { id: 1 } })).toBe('z');

    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const broken = cache({
        ...byId,
        ttlMs: 100,
        store: {
          get: () => Promise.reject(new Error('get down')),
          set: () => {
            throw new Error('set down');
          },
          delete: () => {},
        },
      });
      expect(await broken.execute(() => 'ok', { props: { id: 1 } })).toBe('ok');
      await flushMicrotasks();
      expect(warnings.map((w) => w.name)).toEqual(['BulwarkListenerError', 'BulwarkListenerError']);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('cacheable filters results; bad keys reject; options are validated', async () => {
    const c = cache({ key: () => 'k', ttlMs: 1_000, cacheable: (v) => v !== null });
    expect(await c.execute(() => null)).toBeNull();
    expect(await c.execute(() => 1)).toBe(1);
    expect(await c.execute(() => 2)).toBe(1);
    await expect(cache({ key: () => 3 as never, ttlMs: 1 }).execute(() => 1)).rejects.toThrow(
      /cache.key\(ctx\)/,
    );
    expect(() => cache({ key: () => 'k', ttlMs: 0 })).toThrow(/cache.ttlMs/);
    expect(() => cache({ ttlMs: 1 } as never)).toThrow(ConfigError);
    expect(() => cache({ key: () => 'k', ttlMs: 1, store: memoryStore(), maxEntries: 3 })).toThrow(
      /cache.maxEntries/,
    );
    expect(() => cache({ key: () => 'k', ttlMs: 1, store: {} as never })).toThrow(/cache.store/);
    expect(() => cache({ key: () => 'k', ttlMs: 1, tll: 1 } as never)).toThrow(/tll/);
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(/memoryStore.maxEntries/);
    const ac = new AbortController();
    ac.abort(new Error('early'));
    await expect(c.execute(() => 1, { signal: ac.signal })).rejects.toThrow('early');
  });
});

describe('cache: invalidate during a miss', () => {
  it('a miss in flight when its key is invalidated does not write its older value back', async () => {
    const clock = createFakeClock();
    const c = cache({ key: () => 'k', ttlMs: 10_000, clock });
    const gate = deferred<string>();
    const first = c.execute(() => gate.promise);
    await c.invalidate('k'); // e.g. a write happened meanwhile
    gate.resolve('old');
    await expect(first).resolves.toBe('old'); // the caller still gets its answer
    await expect(c.execute(() => 'fresh')).resolves.toBe('fresh'); // not served the old value
    await expect(c.execute(() => 'newer')).resolves.toBe('fresh'); // and the fresh one is cached
  });
});
