import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeQueue, until } from '../../test/support/durable-queue.js';
import { ConfigError } from '../core/errors.js';
import { deferred } from '../testing/deferred.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { keyring } from './encryption.js';
import { openQueue } from './queue.js';
import { dueTicks } from './schedules.js';
import { sqliteStore } from './sqlite-store.js';

describe('per-enqueue timeoutMs', () => {
  it('is validated, stored, and times out only its own item', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { timeoutMs: 60_000, maxAttempts: 1 });
    expect(() => q.enqueue('x', { timeoutMs: 0 })).rejects.toThrow(ConfigError);
    const short = await q.enqueue('short', { timeoutMs: 200 });
    const long = await q.enqueue('long');
    expect((await q.get(short.id))?.timeoutMs).toBe(200);
    expect((await q.get(long.id))?.timeoutMs).toBeNull();
    const w = q.work(() => new Promise(() => {}), { concurrency: 2, heartbeatMs: 0, leaseMs: 120_000 });
    await until(() => w.stats.inFlight === 2);
    await clock.tick(250);
    await until(() => w.stats.timeouts === 1);
    expect((await q.get(short.id))?.state).toBe('dead');
    expect((await q.get(long.id))?.state).toBe('active');
    await w.stop({ graceMs: 0 });
  });
});

describe('job.progress', () => {
  it('stores the latest value, fenced by the lease, shown by get/list', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    const { id } = await q.enqueue('p');
    const gate = deferred<void>();
    let report: ((v: unknown) => Promise<void>) | undefined;
    const w = q.work(async (job) => {
      await expect(job.progress(101)).rejects.toThrow(ConfigError);
      await expect(job.progress({ big: 'x'.repeat(5000) })).rejects.toThrow(ConfigError);
      void job.progress(10);
      await job.progress({ step: 'upload', done: 3 });
      await gate.promise;
      report = (v) => job.progress(v);
    });
    await until(async () => (await q.get(id))?.progress !== null);
    expect((await q.get(id))?.progress).toEqual({ step: 'upload', done: 3 });
    expect((await q.list())[0]?.progress).toEqual({ step: 'upload', done: 3 });
    gate.resolve();
    await until(() => w.stats.completed === 1);
    // After the ack the lease is gone: a late progress is refused.
    await expect(report!(99)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await w.stop();
  });
});

describe('redrive into another queue', () => {
  it('moves dead items with their key; a key taken there stays dead; encrypted payloads re-bound', async () => {
    const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
    const store = sqliteStore({ path: ':memory:' });
    const src = await openQueue({ name: 'src', store, keyring: ring, maxAttempts: 1 });
    const dst = await openQueue({ name: 'dst', store, keyring: ring });
    const a = await src.enqueue({ n: 1 }, { key: 'A' });
    const b = await src.enqueue({ n: 2 }, { key: 'B' });
    await dst.enqueue({ n: 0 }, { key: 'B' });
    const w = src.work(() => {
      throw new Error('boom');
    });
    await until(() => w.stats.dead === 2);
    await w.stop();
    const r = await src.deadLetters.redrive({ to: 'dst', ids: [a.id, b.id, 'nope'] });
    expect(r.redriven).toEqual([a.id]);
    expect(r.skipped).toEqual([
      { id: 'nope', reason: 'not-found' },
      { id: b.id, reason: 'key-conflict' },
    ]);
    const moved = await dst.get(a.id);
    expect(moved).toMatchObject({ state: 'pending', attempts: 0, redrives: 1, key: 'A', payload: { n: 1 } });
    expect(moved?.deadReason).toBe('exhausted');
    expect(await src.get(a.id)).toBeUndefined();
    expect((await src.get(b.id))?.state).toBe('dead');
    // The key moved: a repeat enqueue in dst is a duplicate, in src it is new.
    expect((await dst.enqueue({ n: 9 }, { key: 'A' })).duplicate).toBe(true);
    expect((await src.enqueue({ n: 9 }, { key: 'A' })).duplicate).toBe(false);
    // Oldest-first selection works too.
    const all = await src.deadLetters.redrive({ to: 'dst', limit: 10 });
    expect(all.redriven).toEqual([]);
    expect(all.skipped).toEqual([{ id: b.id, reason: 'key-conflict' }]);
    await src.close();
    await dst.close();
  });
});

describe('schedules', () => {
  it('computes due ticks per catch-up rule', () => {
    const every = { cron: null, tz: 'UTC', everyMs: 1000 };
    expect(dueTicks({ ...every, catchUp: 'all', nextRunAt: 1000 }, 3500)).toEqual({
      fire: [1000, 2000, 3000],
      next: 4000,
    });
    expect(dueTicks({ ...every, catchUp: 'last', nextRunAt: 1000 }, 3500)).toEqual({
      fire: [3000],
      next: 4000,
    });
    expect(dueTicks({ ...every, catchUp: 'none', nextRunAt: 1000 }, 3500)).toEqual({
      fire: [3000],
      next: 4000,
    });
    expect(dueTicks({ ...every, everyMs: 60_000, catchUp: 'none', nextRunAt: 60_000 }, 90_000)).toEqual({
      fire: [],
      next: 120_000,
    });
    expect(dueTicks({ ...every, catchUp: 'all', nextRunAt: 0 }, 500_000).fire).toHaveLength(100);
    const cron = { cron: '*/10 * * * * *', tz: 'UTC', everyMs: null, catchUp: 'all' as const };
    expect(dueTicks({ ...cron, nextRunAt: 10_000 }, 35_000)).toEqual({
      fire: [10_000, 20_000, 30_000],
      next: 40_000,
    });
  });

  it('validates, lists, keeps the next tick on re-add, fires each tick once across queue handles', async () => {
    const clock = createFakeClock({ date: Date.UTC(2026, 0, 1) });
    const store = sqliteStore({ path: ':memory:' });
    const a = await openQueue({ name: 'cron', store, clock, statsIntervalMs: 0 });
    const b = await openQueue({ name: 'cron', store, clock, statsIntervalMs: 0 });
    await expect(a.schedules.add({ name: 'x', cron: '61 * * * *' })).rejects.toThrow(ConfigError);
    await expect(a.schedules.add({ name: 'x' })).rejects.toThrow('exactly one of cron and everyMs');
    await expect(a.schedules.add({ name: 'x', everyMs: 1000, tz: 'Europe/Paris' })).rejects.toThrow(
      ConfigError,
    );
    await expect(a.schedules.add({ name: 'x', cron: '* * * * *', tz: 'Mars/Base' })).rejects.toThrow(
      ConfigError,
    );
    const s = await a.schedules.add({ name: 'sec', everyMs: 1000, catchUp: 'all', payload: { hello: 1 } });
    expect(s.nextRunAt).toBe(Date.UTC(2026, 0, 1, 0, 0, 0));
    await clock.tick(2500);
    expect(await Promise.all([a.schedules.fireDue(), b.schedules.fireDue()])).toEqual(
      expect.arrayContaining([0, 3]),
    );
    const again = await a.schedules.add({
      name: 'sec',
      everyMs: 1000,
      catchUp: 'all',
      payload: { hello: 2 },
    });
    expect(again.nextRunAt).toBe(Date.UTC(2026, 0, 1, 0, 0, 3));
    const items = await a.list();
    expect(items.map((i) => i.runAt - Date.UTC(2026, 0, 1))).toEqual([0, 1000, 2000]);
    expect(items[0]?.payload).toEqual({ hello: 1 });
    expect((await b.schedules.list()).map((x) => x.payload)).toEqual([{ hello: 2 }]);
    expect(await a.schedules.remove('sec')).toBe(true);
    expect(await a.schedules.list()).toEqual([]);
    await a.close();
    await b.close();
  });
});

describe('fleet-wide limits (SQLite)', () => {
  it('caps active items across workers of the store', async () => {
    const clock = createFakeClock();
    const store = sqliteStore({ path: ':memory:' });
    const q = await openQueue({ name: 'lim', store, clock, statsIntervalMs: 0 });
    await expect(q.limits.set({})).rejects.toThrow(ConfigError);
    await q.limits.set({ concurrency: 3 });
    expect(await q.limits.get()).toEqual({ concurrency: 3, ratePerSec: null, burst: null });
    for (let i = 0; i < 10; i++) await q.enqueue(i);
    const gate = deferred<void>();
    const ws = [1, 2].map(() => q.work(() => gate.promise, { concurrency: 5, pollMs: 10 }));
    await until(() => ws[0]!.stats.inFlight + ws[1]!.stats.inFlight === 3, clock, 20);
    await clock.tick(100);
    expect((await q.stats()).active).toBe(3);
    gate.resolve();
    await until(() => ws[0]!.stats.completed + ws[1]!.stats.completed === 10, clock, 20);
    await q.limits.clear();
    expect(await q.limits.get()).toBeNull();
    await Promise.all(ws.map((w) => w.stop()));
    await q.close();
  });
});
