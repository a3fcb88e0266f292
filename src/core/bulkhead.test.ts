import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { job, rejectionOf, track } from '../../test/support/bulkhead-harness.js';
import {
  type BulkheadEvent,
  BulkheadPolicy,
  BulkheadRejectedError,
  BulwarkError,
  bulkhead,
  ConfigError,
  pipeline,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('bulkhead: limit and queue', () => {
  it('runs at most `limit` executions at once and rejects the rest when there is no queue', async () => {
    const b = bulkhead({ limit: 2 });
    const [j1, j2, j3] = [job('a'), job('b'), job('c')];
    const p1 = track(b.execute(j1.run));
    const p2 = track(b.execute(j2.run));
    const p3 = track(b.execute(j3.run));
    await flushMicrotasks();
    expect([j1.started, j2.started, j3.started]).toEqual([1, 1, 0]);
    expect(b.inFlight).toBe(2);
    expect(b.queued).toBe(0);
    const err = rejectionOf(p3.current);
    expect(err.code).toBe('BULKHEAD_FULL');
    expect(err).toBeInstanceOf(BulwarkError);
    expect(err.bulkhead).toBe('bulkhead');
    expect(err.inFlight).toBe(2);
    expect(err.queued).toBe(0);
    expect(err.message).toContain('is full (2 running, 0 queued)');
    j1.finish();
    j2.fail(new Error('b failed'));
    await flushMicrotasks();
    expect(p1.current).toEqual({ state: 'fulfilled', value: 'a' });
    expect(p2.current).toEqual({ state: 'rejected', error: new Error('b failed') });
    expect(b.inFlight).toBe(0);
  });

  it('frees the slot of a function that throws synchronously or returns a plain value', async () => {
    const b = bulkhead(1);
    await expect(
      b.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(b.inFlight).toBe(0);
    await expect(b.execute(() => 5)).resolves.toBe(5);
    expect(b.inFlight).toBe(0);
  });

  it('queues up to `queue` executions and runs them as slots free up, in FIFO order', async () => {
    const b = bulkhead({ limit: 1, queue: 2 });
    const jobs = [job(1), job(2), job(3), job(4)];
    const ps = jobs.map((j) => track(b.execute(j.run)));
    await flushMicrotasks();
    expect(jobs.map((j) => j.started)).toEqual([1, 0, 0, 0]);
    expect(b.inFlight).toBe(1);
    expect(b.queued).toBe(2);
    const err = rejectionOf(ps[3]!.current);
    expect(err.code).toBe('BULKHEAD_FULL');
    expect(err.inFlight).toBe(1);
    expect(err.queued).toBe(2);
    jobs[0]!.finish();
    await flushMicrotasks();
    expect(jobs.map((j) => j.started)).toEqual([1, 1, 0, 0]);
    expect(b.inFlight).toBe(1);
    expect(b.queued).toBe(1);
    jobs[1]!.fail(new Error('second failed'));
    await flushMicrotasks();
    expect(jobs.map((j) => j.started)).toEqual([1, 1, 1, 0]);
    expect(b.queued).toBe(0);
    jobs[2]!.finish();
    await flushMicrotasks();
    expect(ps.map((p) => p.current.state)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect(b.inFlight).toBe(0);
  });

  it('queue: Infinity never rejects for fullness', async () => {
    const b = bulkhead({ limit: 1, queue: Number.POSITIVE_INFINITY });
    const first = job();
    void b.execute(first.run);
    const rest = Array.from({ length: 500 }, () => b.execute(() => 'ok'));
    expect(b.queued).toBe(500);
    first.finish();
    expect(await Promise.all(rest)).toHaveLength(500);
    expect(b.snapshot().counters.rejections).toBe(0);
  });

  it('hands a freed slot to the oldest queued call: a newcomer never overtakes the queue', async () => {
    const b = bulkhead({ limit: 1, queue: 5 });
    const order: string[] = [];
    const running = job();
    void b.execute(running.run);
    const queued = b.execute(() => {
      order.push('queued');
    });
    running.finish();
    // The newcomer arrives right after the slot was handed over, before the queued call ran.
    await Promise.resolve();
    const newcomer = b.execute(() => {
      order.push('newcomer');
    });
    await Promise.all([queued, newcomer]);
    expect(order).toEqual(['queued', 'newcomer']);
  });

  it('the short form bulkhead(limit, queue) sets limit and queue', async () => {
    const b = bulkhead(1, 1);
    expect(b).toBeInstanceOf(BulkheadPolicy);
    const j = job();
    void b.execute(j.run);
    const q = track(b.execute(() => 'q'));
    const r = track(b.execute(() => 'r'));
    await flushMicrotasks();
    expect(b.queued).toBe(1);
    expect(rejectionOf(r.current).code).toBe('BULKHEAD_FULL');
    j.finish();
    await flushMicrotasks();
    expect(q.current).toEqual({ state: 'fulfilled', value: 'q' });
    expect(bulkhead(3).snapshot().gauges).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('live active/queued getters and stats', async () => {
    const b = bulkhead({ limit: 2, queue: 1, name: 'db' });
    expect(b.name).toBe('db');
    expect(b.kind).toBe('bulkhead');
    expect(b.snapshot()).toMatchObject({
      gauges: { inFlight: 0, queued: 0, bypassing: 0 },
      counters: { rejections: 0, bypasses: 0 },
    });
    const jobs = [job(), job(), job()];
    for (const j of jobs) void b.execute(j.run).catch(() => {});
    const rejected = b.execute(() => 1).catch((e: unknown) => e);
    expect(b.inFlight).toBe(2);
    expect(b.queued).toBe(1);
    expect(((await rejected) as BulkheadRejectedError).bulkhead).toBe('db');
    expect(b.snapshot()).toMatchObject({
      state: 'full',
      gauges: { inFlight: 2, queued: 1, bypassing: 0 },
      counters: { rejections: 1, bypasses: 0 },
    });
    for (const j of jobs) j.finish();
    await flushMicrotasks();
    expect(b.snapshot()).toMatchObject({
      state: 'ready',
      gauges: { inFlight: 0, queued: 0, bypassing: 0 },
      counters: { rejections: 1, bypasses: 0 },
    });
  });
});

describe('bulkhead: queueTimeout', () => {
  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rejects a call that waited longer than queueTimeout with BULKHEAD_QUEUE_TIMEOUT', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 100, clock });
    const running = job();
    void b.execute(running.run);
    const q1 = track(b.execute(() => 'q1'));
    await clock.tick(40);
    const q2 = track(b.execute(() => 'q2'));
    await clock.tick(59);
    expect(q1.current.state).toBe('pending');
    await clock.tick(1);
    const err = rejectionOf(q1.current);
    expect(err.code).toBe('BULKHEAD_QUEUE_TIMEOUT');
    expect(err.message).toContain('waited too long');
    expect(err.inFlight).toBe(1);
    expect(err.queued).toBe(1);
    expect(b.queued).toBe(1);
    await clock.tick(40);
    expect(rejectionOf(q2.current).code).toBe('BULKHEAD_QUEUE_TIMEOUT');
    expect(b.queued).toBe(0);
    expect(b.snapshot().counters.rejections).toBe(2);
    expect(clock.pending).toBe(0);
    running.finish();
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a call that gets a slot in time is not timed out, and leaves no timer keeping the process alive', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 100, clock });
    const running = job();
    void b.execute(running.run);
    const q = track(b.execute(() => 'in time'));
    await clock.tick(50);
    running.finish();
    await flushMicrotasks();
    expect(q.current).toEqual({ state: 'fulfilled', value: 'in time' });
    expect(clock.refed).toBe(0);
    await clock.tick(100);
    expect(clock.pending).toBe(0);
  });

  it('queueTimeoutMs: 0 rejects a queued call at the next timer turn', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 0, clock });
    void b.execute(job().run);
    const q = track(b.execute(() => 'x'));
    await clock.tick(0);
    expect(rejectionOf(q.current).code).toBe('BULKHEAD_QUEUE_TIMEOUT');
  });

  it('a dynamic queueTimeout with many distinct values keeps the queue consistent', async () => {
    const clock = createFakeClock();
    let n = 0;
    const b = bulkhead({ limit: 1, queue: 1_000, queueTimeoutMs: () => 1_000 + n++, clock });
    const running = job();
    void b.execute(running.run);
    const queued = Array.from({ length: 200 }, (_, i) => track(b.execute(() => i)));
    expect(b.queued).toBe(200);
    running.finish();
    await flushMicrotasks();
    expect(queued.every((q) => q.current.state === 'fulfilled')).toBe(true);
    expect(b.queued).toBe(0);
    await clock.tick(2_000); // no stale deadline may fire for the calls that already ran
    expect(b.snapshot()).toMatchObject({ gauges: { inFlight: 0, queued: 0 }, counters: { rejections: 0 } });
    expect(clock.pending).toBe(0);
    // and the queue still works afterwards
    const again = job();
    void b.execute(again.run);
    const late = track(b.execute(() => 'late'));
    expect(b.queued).toBe(1);
    again.finish();
    await flushMicrotasks();
    expect(late.current).toEqual({ state: 'fulfilled', value: 'late' });
  });

  it('queueTimeout may be a function of the context', async () => {
    const clock = createFakeClock();
    const b = bulkhead({
      limit: 1,
      queue: 5,
      queueTimeoutMs: (ctx) => (ctx.priority === 'low' ? 10 : Number.POSITIVE_INFINITY),
      clock,
    });
    const running = job();
    void b.execute(running.run);
    const low = track(b.execute(() => 'low', { priority: 'low' }));
    const normal = track(b.execute(() => 'normal'));
    await clock.tick(1_000);
    expect(rejectionOf(low.current).code).toBe('BULKHEAD_QUEUE_TIMEOUT');
    expect(normal.current.state).toBe('pending');
    running.finish();
    await flushMicrotasks();
    expect(normal.current).toEqual({ state: 'fulfilled', value: 'normal' });
  });
});

describe('bulkhead: aborts', () => {
  it('a queued call whose caller aborts leaves the queue at once, rejects with the reason and leaves no listener', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 1_000, clock });
    const running = job();
    void b.execute(running.run);
    const caller = new AbortController();
    const queuedJob = job();
    const q = track(b.execute(queuedJob.run, { signal: caller.signal }));
    const after = job();
    const a = track(b.execute(after.run));
    expect(b.queued).toBe(2);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    const reason = new Error('caller gone');
    caller.abort(reason);
    await flushMicrotasks();
    expect(q.current).toEqual({ state: 'rejected', error: reason });
    expect(b.queued).toBe(1);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    expect(b.snapshot().counters.rejections).toBe(0); // a cancellation, not a rejection by the bulkhead
    running.finish();
    await flushMicrotasks();
    expect(queuedJob.started).toBe(0);
    expect(after.started).toBe(1);
    after.finish();
    await flushMicrotasks();
    expect(a.current.state).toBe('fulfilled');
    expect(clock.refed).toBe(0);
  });

  it('a queued call that gets its slot leaves no listener on the caller signal', async () => {
    const b = bulkhead({ limit: 1, queue: 5 });
    const caller = new AbortController();
    const running = job();
    void b.execute(running.run);
    const q = b.execute(() => 'ran', { signal: caller.signal });
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    running.finish();
    await expect(q).resolves.toBe('ran');
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('a queued call that times out leaves no listener on the caller signal', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, queueTimeoutMs: 10, clock });
    const caller = new AbortController();
    void b.execute(job().run);
    const q = track(b.execute(() => 'never', { signal: caller.signal }));
    await clock.tick(10);
    expect(rejectionOf(q.current).code).toBe('BULKHEAD_QUEUE_TIMEOUT');
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('an already aborted caller signal is rejected with its reason without running or queueing', async () => {
    const b = bulkhead({ limit: 1, queue: 5 });
    const caller = new AbortController();
    caller.abort('early');
    let calls = 0;
    await expect(b.execute(() => ++calls, { signal: caller.signal })).rejects.toBe('early');
    void b.execute(job().run);
    await expect(b.execute(() => ++calls, { signal: caller.signal })).rejects.toBe('early');
    expect(calls).toBe(0);
    expect(b.queued).toBe(0);
  });

  it('the caller abort does not touch a running call (the function decides what to do with its signal)', async () => {
    const b = bulkhead({ limit: 1 });
    const caller = new AbortController();
    const j = job('done');
    const p = b.execute(j.run, { signal: caller.signal });
    caller.abort('late');
    expect(b.inFlight).toBe(1);
    j.finish();
    await expect(p).resolves.toBe('done');
    expect(b.inFlight).toBe(0);
  });

  it.each(['cooperative', 'abandon'] as const)(
    'a call queued under a %s timeout leaves the queue when the timeout expires',
    async (strategy) => {
      const clock = createFakeClock();
      const b = bulkhead({ limit: 1, queue: 5, clock });
      const policy = pipeline(timeout({ timeoutMs: 100, strategy, clock }), b);
      const running = job();
      void b.execute(running.run);
      let calls = 0;
      const q = track(policy.execute(() => ++calls));
      expect(b.queued).toBe(1);
      await clock.tick(100);
      expect(q.current.state).toBe('rejected');
      expect((q.current as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      expect(b.queued).toBe(0);
      running.finish();
      await flushMicrotasks();
      expect(calls).toBe(0);
      expect(b.inFlight).toBe(0);
    },
  );

  it('a call queued under a timeout with a caller signal leaves the queue on the caller abort', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 5, clock });
    const policy = pipeline(timeout({ timeoutMs: 100, clock }), b);
    const caller = new AbortController();
    void b.execute(job().run);
    const q = track(policy.execute(() => 1, { signal: caller.signal }));
    caller.abort('stop');
    await flushMicrotasks();
    expect(q.current).toEqual({ state: 'rejected', error: 'stop' });
    expect(b.queued).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('bulkhead: priorities', () => {
  it('bypass: a listed priority runs at once without a slot when the bulkhead is full, and is emitted and counted', async () => {
    const b = bulkhead({ limit: 1, queue: 0, bypass: ['critical'] });
    const events: BulkheadEvent[] = [];
    b.onEvent((e) => events.push(e));
    const running = job();
    void b.execute(running.run);
    const critical = job('critical done');
    const p = b.execute(critical.run, { priority: 'critical' });
    expect(critical.started).toBe(1);
    expect(b.inFlight).toBe(1);
    expect(b.snapshot().gauges.bypassing).toBe(1);
    expect(b.snapshot().counters.bypasses).toBe(1);
    expect(events).toEqual([
      {
        kind: 'bulkhead',
        event: 'bypass',
        name: 'bulkhead',
        priority: 'critical',
        attempt: 1,
        inFlight: 1,
        queued: 0,
      },
    ]);
    critical.finish();
    await expect(p).resolves.toBe('critical done');
    expect(b.snapshot().gauges.bypassing).toBe(0);
    expect(b.snapshot().counters.bypasses).toBe(1);
    // a bypassing call that fails is released too
    await expect(
      b.execute(
        () => {
          throw new Error('x');
        },
        { priority: 'critical' },
      ),
    ).rejects.toThrow('x');
    expect(b.snapshot()).toMatchObject({
      gauges: { bypassing: 0, inFlight: 1 },
      counters: { bypasses: 2, rejections: 0 },
    });
    // other priorities are still rejected
    await expect(b.execute(() => 1, { priority: 'high' })).rejects.toBeInstanceOf(BulkheadRejectedError);
  });

  it('bypass: a listed priority takes a free slot like any other call (no bypass when not full)', async () => {
    const b = bulkhead({ limit: 1, bypass: ['critical'] });
    const events: BulkheadEvent[] = [];
    b.onEvent((e) => events.push(e));
    const j = job();
    void b.execute(j.run, { priority: 'critical' });
    expect(b.inFlight).toBe(1);
    expect(b.snapshot().counters.bypasses).toBe(0);
    expect(events).toEqual([]);
    j.finish();
  });

  it('bypass: a listed priority does not wait in the queue even when there is room', async () => {
    const b = bulkhead({ limit: 1, queue: 10, bypass: ['critical'] });
    void b.execute(job().run);
    const c = job();
    void b.execute(c.run, { priority: 'critical' });
    expect(c.started).toBe(1);
    expect(b.queued).toBe(0);
  });

  it('a dynamic limit per priority: critical calls get more room than low ones', async () => {
    const b = bulkhead({ limit: (ctx) => (ctx.priority === 'critical' ? 3 : 1), queue: 1 });
    const low = [job(), job(), job()];
    const lows = low.map((j) => track(b.execute(j.run, { priority: 'low' })));
    await flushMicrotasks();
    expect(low.map((j) => j.started)).toEqual([1, 0, 0]);
    expect(rejectionOf(lows[2]!.current).code).toBe('BULKHEAD_FULL');
    const crit = [job(), job()];
    for (const j of crit) void b.execute(j.run, { priority: 'critical' });
    expect(crit.map((j) => j.started)).toEqual([1, 1]);
    expect(b.inFlight).toBe(3);
    // The queued low call needs active < 1: it waits until every slot is free (and keeps its place).
    low[0]!.finish();
    crit[0]!.finish();
    await flushMicrotasks();
    expect(low[1]!.started).toBe(0);
    crit[1]!.finish();
    await flushMicrotasks();
    expect(low[1]!.started).toBe(1);
  });

  it('a dynamic limit that returns a bad value rejects the call with a ConfigError', async () => {
    const b = bulkhead({ limit: () => 0 });
    let calls = 0;
    const p = b.execute(() => ++calls); // never throws synchronously
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe('bulkhead.limit(ctx)');
    expect(calls).toBe(0);
    expect(b.inFlight).toBe(0);
  });

  it('a dynamic queue or queueTimeout that returns a bad value rejects the call and queues nothing', async () => {
    const q = bulkhead({ limit: 1, queue: () => -1 });
    void q.execute(job().run);
    const e1 = await q.execute(() => 1).catch((e: unknown) => e);
    expect((e1 as ConfigError).option).toBe('bulkhead.queue(ctx)');
    const t = bulkhead({ limit: 1, queue: 1, queueTimeoutMs: () => Number.NaN });
    void t.execute(job().run);
    const e2 = await t.execute(() => 1).catch((e: unknown) => e);
    expect((e2 as ConfigError).option).toBe('bulkhead.queueTimeoutMs(ctx)');
    expect(t.queued).toBe(0);
  });
});

describe('bulkhead: events', () => {
  it('emits queued, dequeued and reject (full, queueTimeout) with the live figures', async () => {
    const clock = createFakeClock();
    const b = bulkhead({ limit: 1, queue: 1, queueTimeoutMs: 50, name: 'pool', clock });
    const events: BulkheadEvent[] = [];
    const stop = b.onEvent((e) => events.push(e));
    const running = job();
    void b.execute(running.run);
    const queued = job();
    void b.execute(queued.run, { priority: 'high', name: 'op' });
    await b.execute(() => 1, { priority: 'low' }).catch(() => {});
    running.finish();
    await flushMicrotasks();
    void b.execute(() => 2).catch(() => {});
    await clock.tick(50);
    const base = { kind: 'bulkhead', name: 'pool', operation: undefined, attempt: 1 };
    expect(events).toEqual([
      { ...base, event: 'queued', priority: 'high', operation: 'op', inFlight: 1, queued: 1 },
      { ...base, event: 'reject', reason: 'full', priority: 'low', inFlight: 1, queued: 1 },
      { ...base, event: 'dequeued', priority: 'high', operation: 'op', inFlight: 1, queued: 0 },
      { ...base, event: 'queued', priority: 'normal', inFlight: 1, queued: 1 },
      { ...base, event: 'reject', reason: 'queueTimeout', priority: 'normal', inFlight: 1, queued: 0 },
    ]);
    stop();
    void b.execute(() => 3).catch(() => {}); // queued: no event any more
    await clock.tick(50);
    queued.finish();
    await flushMicrotasks();
    expect(events).toHaveLength(5);
  });
});
