import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeQueue, open, until } from '../../test/support/durable-queue.js';
import { ConfigError } from '../core/errors.js';
import { deferred } from '../testing/deferred.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { keyring } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import { openQueue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';

describe('review regressions', () => {
  it('concurrent close() calls release a shared store once (the other queue keeps working)', async () => {
    const store = sqliteStore({ path: ':memory:' });
    const a = await openQueue({ name: 'a', store });
    const b = await openQueue({ name: 'b', store });
    open.push(b);
    const first = a.close();
    expect(a.close()).toBe(first);
    await Promise.all([first, a.close()]);
    expect((await b.enqueue(1)).duplicate).toBe(false);
    expect((await b.stats()).pending).toBe(1);
    await expect(a.enqueue(1)).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('work() and enqueue() are refused from the moment close() starts; no worker outlives close', async () => {
    const clock = createFakeClock();
    const q = await openQueue({ name: 'closing', store: sqliteStore({ path: ':memory:' }), clock });
    const gate = deferred<void>();
    const w1 = q.work(() => gate.promise, { pollMs: 100 });
    await q.enqueue(1);
    await until(() => w1.stats.inFlight === 1);
    const closing = q.close({ graceMs: 10_000 });
    expect(() => q.work(async () => {})).toThrow(/closing/);
    await expect(q.enqueue(2)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(q.enqueueMany([{ payload: 3 }])).rejects.toMatchObject({ code: 'CLOSED' });
    gate.resolve();
    await closing;
    expect(w1.stats.completed).toBe(1);
    expect(() => q.work(async () => {})).toThrow(BulwarkDurableError);
    await expect(q.deadLetters.list()).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(q.deadLetters.redrive()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('work() refuses heartbeatMs above leaseMs / 2 (the lease would expire first); 0 turns them off', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    expect(() => q.work(async () => {}, { leaseMs: 200, heartbeatMs: 250 })).toThrow(
      /work\.heartbeatMs must be 0 \(off\) or at most half of work\.leaseMs \(200\).*\(got 250\)/,
    );
    expect(() => q.work(async () => {}, { leaseMs: 200, heartbeatMs: 250 })).toThrow(ConfigError);
    expect(() => q.work(async () => {}, { leaseMs: 200, heartbeatMs: 101 })).toThrow(/heartbeatMs/);
    expect(() => q.work(async () => {}, { heartbeatMs: 20_000 })).toThrow(/leaseMs \(30000\)/);
    for (const options of [
      { leaseMs: 200, heartbeatMs: 100 },
      { leaseMs: 200, heartbeatMs: 0 },
      { leaseMs: 200 },
    ]) {
      await q.work(async () => {}, options).stop();
    }
  });

  it('rewrap: a store error rejects without skipping the item; crypto failures are counted and keep done false', async () => {
    const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
    const store = sqliteStore({ path: ':memory:' });
    const q = await openQueue({ name: 'rw', store, keyring: ring });
    open.push(q);
    const { id: first } = await q.enqueue({ secret: 1 });
    await q.enqueue({ secret: 2 });
    ring.add('k2', randomBytes(32), { current: true });
    const s = store as { replacePayload: typeof store.replacePayload };
    const real = s.replacePayload.bind(store);
    let calls = 0;
    s.replacePayload = (...args) => {
      if (calls++ === 0) return Promise.reject(new Error('SQLITE_BUSY: database is locked'));
      return real(...args);
    };
    await expect(q.rewrap({ batchSize: 100 })).rejects.toThrow(/SQLITE_BUSY/);
    // Nothing was skipped: a new pass re-wraps both, and the old key can go.
    const p = await q.rewrap({ batchSize: 100 });
    expect(p).toMatchObject({ rewrapped: 2, failed: 0, conflicts: 0, done: true });
    ring.remove('k1');
    expect((await q.get(first))!.payload).toEqual({ secret: 1 });

    // A CAS miss is a conflict, not a failure.
    ring.add('k3', randomBytes(32), { current: true });
    s.replacePayload = async () => false;
    expect(await q.rewrap()).toMatchObject({ rewrapped: 0, failed: 0, conflicts: 2, done: true });
    s.replacePayload = real;

    // An item whose key is gone cannot be re-wrapped: failed, and done stays false.
    const gone = keyring([{ id: 'k0', key: randomBytes(32) }]);
    const q0 = await openQueue({ name: 'rw', store, keyring: gone });
    open.push(q0);
    await q0.enqueue({ secret: 0 });
    const r = await q.rewrap({ batchSize: 100 });
    expect(r).toMatchObject({ rewrapped: 2, failed: 1, done: false });
    // Resuming past the failed item reports done for the rest; the failure was reported before.
    expect(await q.rewrap({ cursor: r.cursor })).toMatchObject({ failed: 0, done: true });
  });

  it('redrive validates limit and its pacing wait honours the abort signal', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 1 });
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await expect(q.deadLetters.redrive({ limit })).rejects.toThrow(/redrive\.limit/);
    }
    for (let i = 0; i < 3; i++) await q.enqueue(i);
    const w = q.work(async () => {
      throw new Error('boom');
    });
    await until(async () => (await q.stats()).dead === 3);
    await w.stop();
    const controller = new AbortController();
    // 1 per second: the second batch waits ~1 s on the (fake) clock; aborting ends the wait.
    const run = q.deadLetters.redrive({ ratePerSec: 1, signal: controller.signal });
    await until(async () => (await q.stats()).pending === 1);
    controller.abort();
    const { redriven } = await run;
    expect(redriven).toHaveLength(1);
    const item = await q.get(redriven[0]!);
    expect(item!.deadReason).toBe('exhausted'); // kept after the redrive
  });

  it('an item whose last attempt was interrupted by stop() dead-letters as stopped, not lease-expired', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 1 });
    const { id } = await q.enqueue('p');
    const w = q.work(() => new Promise(() => {}));
    await until(() => w.stats.inFlight === 1);
    const stopping = w.stop({ graceMs: 100 });
    await until(() => w.stats.released === 1, clock, 50);
    await stopping;
    const w2 = q.work(async () => {});
    await until(async () => (await q.get(id))!.state === 'dead');
    const dead = (await q.deadLetters.list())[0]!;
    expect(dead.deadReason).toBe('stopped');
    expect(String(dead.error?.message)).toContain('interrupted by worker.stop()');
    await w2.stop();
  });
});
