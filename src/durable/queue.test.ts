import { describe, expect, it } from 'vitest';
import { makeQueue, settle, until } from '../../test/support/durable-queue.js';
import { backoff } from '../core/backoff.js';
import { ConfigError, nonRetryable } from '../core/errors.js';
import { deferred } from '../testing/deferred.js';
import { createFakeClock, flushMicrotasks } from '../testing/fake-clock.js';
import { BulwarkDurableError } from './errors.js';
import { openQueue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';

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
