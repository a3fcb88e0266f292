import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { backoff } from '../core/backoff.js';
import { ConfigError, nonRetryable } from '../core/errors.js';
import { createRegistry } from '../core/registry.js';
import { retry } from '../core/retry.js';
import { deferred } from '../testing/deferred.js';
import { createFakeClock, type FakeClock, flushMicrotasks } from '../testing/fake-clock.js';
import { keyring } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import type { DurableQueueEvent, DurableWorkerEvent } from './events.js';
import type { QueueOptions } from './options.js';
import { openQueue, type Queue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';
import { storeAndForward } from './store-and-forward.js';

/** Lets the store's group commits (setImmediate) and the worker's promise chains run. */
async function settle(rounds = 12): Promise<void> {
  for (let i = 0; i < rounds; i++) await flushMicrotasks();
}

async function until(cond: () => boolean | Promise<boolean>, clock?: FakeClock, stepMs = 0): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    if (clock !== undefined) await clock.tick(stepMs);
    await settle(2);
  }
  throw new Error('condition not met');
}

const open: Queue<unknown>[] = [];
afterEach(async () => {
  for (const q of open.splice(0)) await q.close({ graceMs: 0 });
});

async function makeQueue<T = unknown>(
  clock: FakeClock,
  options: Partial<QueueOptions<T>> = {},
): Promise<{ q: Queue<T>; events: (DurableQueueEvent | DurableWorkerEvent)[] }> {
  // The queue and its workers join one registry: its listener sees every event of both.
  const registry = createRegistry();
  const events: (DurableQueueEvent | DurableWorkerEvent)[] = [];
  registry.onEvent((e) => events.push(e as DurableQueueEvent | DurableWorkerEvent));
  const q = await openQueue<T>({
    registry,
    name: `q${Math.random().toString(36).slice(2)}`,
    store: sqliteStore({ path: ':memory:' }),
    clock,
    backoff: backoff.constant(1000),
    ...options,
  });
  open.push(q as Queue<unknown>);
  return { q, events };
}

describe('openQueue', () => {
  it('enqueues, works and completes; counts and events', async () => {
    const clock = createFakeClock();
    const { q, events } = await makeQueue<{ n: number }>(clock);
    const { id, duplicate } = await q.enqueue({ n: 1 });
    expect(duplicate).toBe(false);
    expect((await q.stats()).pending).toBe(1);
    const seen: number[] = [];
    const w = q.work(async (job) => {
      seen.push(job.payload.n);
      expect(job.id).toBe(id);
      expect(job.attempt).toBe(1);
    });
    await until(() => w.stats.completed === 1);
    expect(seen).toEqual([1]);
    const s = await q.stats();
    expect(s.completed).toBe(1);
    expect(s.pending).toBe(0);
    expect(events.map((e) => e.event)).toEqual(['enqueued', 'claimed', 'completed']);
    expect(events[0]!.kind).toBe('durableQueue');
    await w.stop();
  });

  it('idempotency keys return the existing id', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    const a = await q.enqueue('x', { key: 'order-42' });
    const b = await q.enqueue('y', { key: 'order-42' });
    expect(b).toEqual({ id: a.id, duplicate: true });
    expect((await q.get(a.id))!.payload).toBe('x');
  });

  it('runs by priority, then creation order; delayed items wait for their time', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue<string>(clock);
    await q.enqueue('low');
    await q.enqueue('later', { delayMs: 5000, priority: 100 });
    await q.enqueue('high', { priority: 9 });
    await q.enqueue('low2');
    const order: string[] = [];
    const w = q.work(async (job) => {
      order.push(job.payload);
    });
    await until(() => order.length === 3, clock, 100);
    expect(order).toEqual(['high', 'low', 'low2']);
    await until(() => order.length === 4, clock, 500);
    expect(order[3]).toBe('later');
    expect(clock.date() - Date.UTC(2026, 0, 1)).toBeGreaterThanOrEqual(5000);
    await w.stop();
  });

  it('retries with the backoff, then completes; the attempt number and last error are given to the handler', async () => {
    const clock = createFakeClock();
    const { q, events } = await makeQueue(clock, { backoff: backoff.constant(2000) });
    await q.enqueue('p');
    const attempts: number[] = [];
    const lastErrors: (string | null)[] = [];
    const w = q.work(async (job) => {
      attempts.push(job.attempt);
      lastErrors.push(job.lastError);
      if (job.attempt < 3) throw Object.assign(new Error(`fail ${job.attempt}`), { code: 'E_FLAKY' });
    });
    await until(() => attempts.length === 1);
    await clock.tick(1999);
    await settle();
    expect(attempts.length).toBe(1);
    await until(() => w.stats.completed === 1, clock, 500);
    expect(attempts).toEqual([1, 2, 3]);
    expect(lastErrors[0]).toBeNull();
    expect(JSON.parse(lastErrors[2]!)).toMatchObject({ message: 'fail 2', code: 'E_FLAKY' });
    expect(w.stats.retried).toBe(2);
    expect(
      events.filter((e) => e.event === 'retried').map((e) => (e as { delayMs: number }).delayMs),
    ).toEqual([2000, 2000]);
    await w.stop();
  });

  it('non-retryable errors dead-letter at once with the cause chain; redrive runs them again', async () => {
    const clock = createFakeClock();
    const { q, events } = await makeQueue(clock);
    const { id } = await q.enqueue({ order: 1 });
    let fail = true;
    const w = q.work(async () => {
      if (fail) throw nonRetryable(new Error('invalid order', { cause: new Error('missing field') }));
    });
    await until(() => w.stats.dead === 1);
    const dead = await q.deadLetters.list({ limit: 50 });
    expect(dead.length).toBe(1);
    expect(dead[0]!.id).toBe(id);
    expect(dead[0]!.deadReason).toBe('non-retryable');
    expect(dead[0]!.error).toMatchObject({ message: 'invalid order', cause: { message: 'missing field' } });
    expect(dead[0]!.payload).toEqual({ order: 1 });
    expect(events.some((e) => e.event === 'dead')).toBe(true);
    fail = false;
    const { redriven } = await q.deadLetters.redrive({ limit: 100 });
    expect(redriven).toEqual([id]);
    await until(() => w.stats.completed === 1, clock, 1000);
    const item = await q.get(id);
    expect(item!.state).toBe('completed');
    expect(item!.redrives).toBe(1);
    expect(item!.lastRedriveAt).not.toBeNull();
    expect(events.some((e) => e.event === 'redriven')).toBe(true);
    await w.stop();
  });

  it('exhausted attempts dead-letter with reason exhausted', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 2 });
    const { id } = await q.enqueue('p');
    const w = q.work(async () => {
      throw new Error('down');
    });
    await until(() => w.stats.dead === 1, clock, 500);
    const item = await q.get(id);
    expect(item!.state).toBe('dead');
    expect(item!.deadReason).toBe('exhausted');
    expect(item!.attempts).toBe(2);
    await w.stop();
  });

  it('fencing: a worker paused past its lease gets LEASE_LOST on ack; the item completes once', async () => {
    const clock = createFakeClock();
    const { q, events } = await makeQueue(clock);
    const { id } = await q.enqueue('p');
    const gate = deferred<void>();
    let runs = 0;
    // Worker A: its heartbeats hang until its lease has ended (a stalled process).
    const store = q.store as { extend: typeof q.store.extend };
    const realExtend = store.extend;
    const stalled = deferred<boolean>();
    store.extend = () => stalled.promise;
    const a = q.work(
      async () => {
        runs++;
        await gate.promise;
      },
      { leaseMs: 1000, pollMs: 100_000 },
    );
    await until(() => a.stats.claimed === 1);
    await clock.tick(1500);
    store.extend = realExtend;
    // Worker B takes the expired item over and completes it.
    const b = q.work(
      async () => {
        runs++;
      },
      { leaseMs: 1000 },
    );
    await until(() => b.stats.completed === 1);
    gate.resolve();
    await until(() => a.stats.leaseLost === 1);
    stalled.resolve(false);
    expect(a.stats.completed).toBe(0);
    expect(runs).toBe(2);
    const lost = events.filter((e) => e.event === 'leaseLost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ id, during: 'complete' });
    const item = await q.get(id);
    expect(item!.state).toBe('completed');
    expect(item!.attempts).toBe(2);
    expect((await q.stats()).completed).toBe(1);
    await a.stop();
    await b.stop();
  });

  it('a lease that runs out without heartbeats aborts the handler signal with LEASE_LOST', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    await q.enqueue('p');
    let reason: unknown;
    const w = q.work(
      (_job, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            reject(signal.reason);
          });
        }),
      { leaseMs: 1000, heartbeatMs: 0, pollMs: 100_000 },
    );
    await until(() => w.stats.claimed === 1);
    await clock.tick(1000);
    await until(() => w.stats.leaseLost === 1);
    expect(reason).toBeInstanceOf(BulwarkDurableError);
    expect((reason as BulwarkDurableError).code).toBe('LEASE_LOST');
    await w.stop({ graceMs: 0 });
  });

  it('heartbeats keep the lease of a long handler: no second worker runs it', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    await q.enqueue('p');
    let runs = 0;
    const w1 = q.work(
      async () => {
        runs++;
        await new Promise<void>((r) => clock.setTimeout(r, 10_000));
      },
      { leaseMs: 1000 },
    );
    const w2 = q.work(
      async () => {
        runs++;
      },
      { leaseMs: 1000, pollMs: 200 },
    );
    await until(() => w1.stats.completed === 1, clock, 100);
    expect(runs).toBe(1);
    expect(w1.stats.leaseLost).toBe(0);
    expect(w2.stats.claimed).toBe(0);
    await w1.stop();
    await w2.stop();
  });

  it('a heartbeat refused (lease taken) aborts the signal; the late ack is refused and counted once', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    const { id } = await q.enqueue('p');
    let aborted: unknown;
    const gate = deferred<void>();
    const w = q.work(
      async (_job, { signal }) => {
        signal.addEventListener('abort', () => {
          aborted = signal.reason;
        });
        await gate.promise;
      },
      { leaseMs: 3000, pollMs: 100_000 },
    );
    await until(() => w.stats.claimed === 1);
    // Someone else takes the item over (as if the lease had expired elsewhere).
    await q.store.reclaimExpired(q.name, clock.date() + 10_000);
    await clock.tick(1000);
    await until(() => w.stats.leaseLost === 1);
    expect((aborted as BulwarkDurableError).code).toBe('LEASE_LOST');
    gate.resolve();
    // The late ack is refused; the item (back to pending) runs again and completes.
    await until(() => w.stats.completed === 1);
    expect(w.stats.leaseLost).toBe(1);
    expect(w.stats.claimed).toBe(2);
    expect((await q.get(id))!.state).toBe('completed');
    await w.stop();
  });

  it('stop waits for handlers, then releases the rest to pending and aborts them', async () => {
    const clock = createFakeClock();
    const { q, events } = await makeQueue(clock);
    const fast = await q.enqueue('fast');
    const slow = await q.enqueue('slow');
    let slowSignal: AbortSignal | undefined;
    const w = q.work(
      async (job, { signal }) => {
        if (job.payload === 'fast') await new Promise<void>((r) => clock.setTimeout(r, 500));
        else {
          slowSignal = signal;
          await new Promise<void>(() => {});
        }
      },
      { concurrency: 2 },
    );
    await until(() => w.stats.claimed === 2);
    const stopped = w.stop({ graceMs: 2000 });
    await clock.tick(600);
    await settle();
    expect(w.stats.completed).toBe(1);
    expect(slowSignal!.aborted).toBe(false);
    await clock.tick(1500);
    await stopped;
    expect(slowSignal!.aborted).toBe(true);
    expect(w.stats.released).toBe(1);
    expect((await q.get(fast.id))!.state).toBe('completed');
    const s = await q.get(slow.id);
    expect(s!.state).toBe('pending');
    expect(events.some((e) => e.event === 'released')).toBe(true);
  });

  it('stop during a claim in flight runs (or releases) what the claim returns: nothing stays active', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    for (let i = 0; i < 3; i++) await q.enqueue(i);
    let ran = 0;
    const w = q.work(
      async () => {
        ran++;
      },
      { concurrency: 3 },
    );
    await flushMicrotasks(); // the claim is now queued in the store
    await w.stop({ graceMs: 1000 });
    const s = await q.stats();
    expect(s.active).toBe(0);
    expect(s.completed + s.pending).toBe(3);
    expect(ran).toBe(s.completed);
  });

  it('prefetch: buffered items keep their leases while they wait, and stop() returns them uncounted', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue<number>(clock);
    for (let i = 0; i < 6; i++) await q.enqueue(i);
    const seen: number[] = [];
    const w = q.work(
      async (job) => {
        seen.push(job.payload);
        expect(job.attempt).toBe(1);
        await new Promise<void>((r) => clock.setTimeout(r, 2500));
      },
      { concurrency: 1, prefetch: 2, leaseMs: 1000 },
    );
    await until(() => seen.length === 1);
    expect((await q.stats()).active).toBe(3); // one running, two waiting
    // Far past the lease: heartbeats keep the waiting items' leases too.
    await until(() => seen.length === 3, clock, 100);
    expect(w.stats.leaseLost).toBe(0);
    const stopped = w.stop({ graceMs: 5000 });
    await until(() => w.stats.completed === 3, clock, 100);
    await stopped;
    expect(seen).toEqual([0, 1, 2]);
    const s = await q.stats();
    expect([s.completed, s.pending, s.active]).toEqual([3, 3, 0]);
    // The two that waited were released uncounted (attempts back to 0).
    for (const item of await q.list({ state: 'pending' })) expect(item.attempts).toBe(0);
    expect(w.stats.released).toBe(2);
  });

  it('prefetch: everything completes, claims are batched', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    await q.enqueueMany(Array.from({ length: 100 }, (_, i) => ({ payload: i })));
    let claims = 0;
    const claim = q.store.claim.bind(q.store);
    q.store.claim = (...args) => {
      claims++;
      return claim(...args);
    };
    const w = q.work(async () => {}, { concurrency: 4, prefetch: 12 });
    await until(() => w.stats.completed === 100);
    expect(claims).toBeLessThan(25);
    await w.stop();
  });

  it('items whose leases expired more often than maxAttempts dead-letter as lease-expired', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 2 });
    const { id } = await q.enqueue('p');
    // Two claims that never ack (crashed workers).
    await q.store.claim(q.name, 1, 1000, clock.date());
    await clock.tick(1000);
    await q.store.claim(q.name, 1, 1000, clock.date());
    await clock.tick(1000);
    let ran = false;
    const w = q.work(async () => {
      ran = true;
    });
    await until(async () => (await q.get(id))!.state === 'dead');
    expect(ran).toBe(false);
    expect((await q.get(id))!.deadReason).toBe('lease-expired');
    await w.stop();
  });

  it('rate limit: starts at most perSec items per second', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    for (let i = 0; i < 10; i++) await q.enqueue(i);
    const w = q.work(async () => {}, { concurrency: 10, rateLimit: { perSec: 2, burst: 2 } });
    await until(() => w.stats.completed === 2);
    await settle();
    expect(w.stats.claimed).toBe(2);
    await clock.tick(1000);
    await settle();
    expect(w.stats.claimed).toBeLessThanOrEqual(4);
    await until(() => w.stats.completed === 10, clock, 250);
    expect(clock.now()).toBeGreaterThanOrEqual(3500);
    await w.stop();
  });

  it('redrive paces by ratePerSec and takes ids', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 1 });
    for (let i = 0; i < 25; i++) await q.enqueue(i);
    const claimed = await q.store.claim(q.name, 25, 1000, clock.date());
    for (const c of claimed)
      await q.store.fail(q.name, c, { kind: 'dead', reason: 'x', error: '{}' }, clock.date());
    const byIds = await q.deadLetters.redrive({ ids: [claimed[3]!.id, claimed[4]!.id] });
    expect(byIds.redriven).toEqual([claimed[3]!.id, claimed[4]!.id]);
    const t0 = clock.now();
    const p = q.deadLetters.redrive({ limit: 20, ratePerSec: 10 });
    let done = false;
    void p.then(() => {
      done = true;
    });
    await settle();
    expect(done).toBe(false);
    await until(() => done, clock, 100);
    expect((await p).redriven.length).toBe(20);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(1900);
    expect((await q.stats()).dead).toBe(3);
  });

  it('retention: sweep removes old completed and dead items, never pending or active', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock, { maxAttempts: 1, retention: { completedMs: 1000, deadMs: 5000 } });
    await q.enqueue('done');
    await q.enqueue('dead');
    await q.enqueue('pending', { delayMs: 1_000_000 });
    const w = q.work(async (job) => {
      if (job.payload === 'dead') throw new Error('x');
    });
    await until(() => w.stats.completed === 1 && w.stats.dead === 1);
    await w.stop();
    await clock.tick(2000);
    expect(await q.sweep()).toBeGreaterThanOrEqual(1);
    let s = await q.stats();
    expect([s.completed, s.dead, s.pending]).toEqual([0, 1, 1]);
    await clock.tick(4000);
    await q.sweep();
    s = await q.stats();
    expect([s.completed, s.dead, s.pending]).toEqual([0, 0, 1]);
  });

  it('validates options with messages naming the field', async () => {
    const store = sqliteStore({ path: ':memory:' });
    await expect(openQueue({ name: '', store })).rejects.toThrow(/openQueue\.name/);
    await expect(
      openQueue({ name: 'x', store, retention: { completedMs: 10_000, deadMs: 1000 } }),
    ).rejects.toThrow(/deadMs/);
    await expect(openQueue({ name: 'x', store, maxAttempts: 0 })).rejects.toThrow(/openQueue\.maxAttempts/);
    const q = await openQueue({ name: 'x', store });
    expect(() => q.work(async () => {}, { concurrency: 0 })).toThrow(/work\.concurrency/);
    await expect(q.enqueue(1, { priority: 1.5 })).rejects.toThrow(/enqueue\.priority/);
    await expect(q.enqueue(1, { priority: 1.5 })).rejects.toBeInstanceOf(ConfigError);
    await q.close();
    await expect(q.enqueue(1)).rejects.toSatisfy(
      (e: unknown) => (e as BulwarkDurableError).code === 'CLOSED',
    );
  });

  it('codec: bytes pass through; a custom codec is used', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue(clock);
    const { id } = await q.enqueue(new Uint8Array([1, 2, 3]));
    const got = (await q.get(id))!.payload as Uint8Array;
    expect(Array.from(got)).toEqual([1, 2, 3]);
    const { q: q2 } = await makeQueue<string>(clock, {
      codec: {
        encode: (s) => new TextEncoder().encode(s.toUpperCase()),
        decode: (b) => new TextDecoder().decode(b),
      },
    });
    const r = await q2.enqueue('abc');
    expect((await q2.get(r.id))!.payload).toBe('ABC');
  });
});

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

describe('storeAndForward', () => {
  it('delivers now when the policy succeeds, queues when it gives up; a worker delivers later', async () => {
    const clock = createFakeClock();
    const { q } = await makeQueue<{ n: number }>(clock);
    let up = true;
    const delivered: number[] = [];
    const deliver = async (p: { n: number }) => {
      if (!up) throw new Error('ECONNREFUSED');
      delivered.push(p.n);
      return `ok ${p.n}`;
    };
    const send = storeAndForward(q, retry({ maxAttempts: 1 }), deliver);
    expect(await send({ n: 1 })).toEqual({ delivered: 'ok 1' });
    up = false;
    const out = await send({ n: 2 }, { key: 'n-2' });
    expect('queued' in out).toBe(true);
    if ('queued' in out) {
      expect(out.duplicate).toBe(false);
      expect((out.error as Error).message).toBe('ECONNREFUSED');
    }
    up = true;
    const w = q.work((job) => deliver(job.payload));
    await until(() => w.stats.completed === 1);
    expect(delivered).toEqual([1, 2]);
    await w.stop();
  });
});

describe('components', () => {
  it('a queue and its workers join the registry, report snapshots without I/O, and leave when closed', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const q = await openQueue({ name: 'comp', store: sqliteStore({ path: ':memory:' }), clock, registry });
    await expect(
      openQueue({ name: 'comp', store: sqliteStore({ path: ':memory:' }), registry }),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_COMPONENT',
    });
    await q.enqueue(1);
    await q.enqueue(2, { key: 'k' });
    await q.enqueue(3, { key: 'k' });
    await q.stats();
    const w = q.work(async () => {}, { concurrency: 3, name: 'comp-w' });
    await until(() => w.stats.completed === 2);
    const [qs, ws] = [
      registry.get('durableQueue', 'comp')!.snapshot(),
      registry.get('durableWorker', 'comp-w')!.snapshot(),
    ];
    expect(qs).toMatchObject({
      kind: 'durableQueue',
      state: 'open',
      counters: { enqueued: 2, duplicates: 1 },
    });
    expect(qs.gauges).toMatchObject({ workers: 1, pending: 2 }); // as of the last stats() refresh
    expect(ws).toMatchObject({
      kind: 'durableWorker',
      state: 'running',
      gauges: { concurrency: 3, inFlight: 0 },
    });
    expect(ws.counters.completed).toBe(2);
    expect(JSON.parse(JSON.stringify(ws))).toEqual(ws);
    await w.stop();
    expect(registry.get('durableWorker', 'comp-w')).toBeUndefined();
    await q.close();
    expect(registry.size).toBe(0);
  });
});
