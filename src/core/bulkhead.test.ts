import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BulkheadEvent,
  BulkheadPolicy,
  BulkheadRejectedError,
  BulwarkError,
  bulkhead,
  ConfigError,
  type Context,
  pipeline,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock, type Deferred, deferred, flushMicrotasks } from '../testing/index.js';

type Settled =
  | { state: 'pending' }
  | { state: 'fulfilled'; value: unknown }
  | { state: 'rejected'; error: unknown };

function track(promise: Promise<unknown>): { readonly current: Settled; settledTimes: number } {
  const box: { current: Settled; settledTimes: number } = { current: { state: 'pending' }, settledTimes: 0 };
  promise.then(
    (value) => {
      box.settledTimes++;
      box.current = { state: 'fulfilled', value };
    },
    (error: unknown) => {
      box.settledTimes++;
      box.current = { state: 'rejected', error };
    },
  );
  return box;
}

/** A controllable job: `run` is the function to execute; `finish`/`fail` settle it. */
function job<T = string>(value?: T) {
  const d = deferred<T>();
  const j = {
    started: 0,
    ctx: undefined as Context | undefined,
    run: (ctx: Context) => {
      j.started++;
      j.ctx = ctx;
      return d.promise;
    },
    finish: () => d.resolve(value as T),
    fail: (e: unknown) => d.reject(e),
  };
  return j;
}

function rejectionOf(settled: Settled): BulkheadRejectedError {
  expect(settled.state).toBe('rejected');
  const error = (settled as { error: unknown }).error;
  expect(error).toBeInstanceOf(BulkheadRejectedError);
  return error as BulkheadRejectedError;
}

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

describe('bulkhead: validation', () => {
  const bad = (f: () => unknown, option: string) => {
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe(option);
    expect((error as Error).message).toMatch(
      new RegExp(`^${option.replace(/[.()]/g, '\\$&')} (must be|is not an option)`),
    );
  };

  it('limit is required and must be an integer >= 1', () => {
    bad(() => bulkhead({} as never), 'bulkhead.limit');
    bad(() => bulkhead(0), 'bulkhead.limit');
    bad(() => bulkhead(1.5), 'bulkhead.limit');
    bad(() => bulkhead(-1), 'bulkhead.limit');
    bad(() => bulkhead(Number.POSITIVE_INFINITY), 'bulkhead.limit');
    bad(() => bulkhead({ limit: '2' as never }), 'bulkhead.limit');
  });

  it('queue must be an integer >= 0 or Infinity', () => {
    bad(() => bulkhead(1, -1), 'bulkhead.queue');
    bad(() => bulkhead({ limit: 1, queue: 0.5 }), 'bulkhead.queue');
    expect(bulkhead({ limit: 1, queue: Number.POSITIVE_INFINITY }).kind).toBe('bulkhead');
  });

  it('queueTimeout must be a number >= 0', () => {
    bad(() => bulkhead({ limit: 1, queueTimeoutMs: -1 }), 'bulkhead.queueTimeoutMs');
    bad(() => bulkhead({ limit: 1, queueTimeoutMs: Number.NaN }), 'bulkhead.queueTimeoutMs');
  });

  it('bypass must be an array of priority names; name a non-empty string; unknown options refused', () => {
    bad(() => bulkhead({ limit: 1, bypass: 'critical' as never }), 'bulkhead.bypass');
    bad(() => bulkhead({ limit: 1, bypass: [1] as never }), 'bulkhead.bypass');
    bad(() => bulkhead({ limit: 1, name: '' }), 'bulkhead.name');
    bad(() => bulkhead({ limit: 1, max: 2 } as never), 'bulkhead.max');
    bad(() => bulkhead(null as never), 'bulkhead');
  });
});

describe('bulkhead: property', () => {
  type Action =
    | { type: 'arrive'; signal: boolean }
    | { type: 'complete'; pick: number; ok: boolean }
    | { type: 'abort'; pick: number }
    | { type: 'tick'; ms: number };

  const action: fc.Arbitrary<Action> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ type: fc.constant('arrive' as const), signal: fc.boolean() }) },
    {
      weight: 3,
      arbitrary: fc.record({ type: fc.constant('complete' as const), pick: fc.nat(), ok: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('abort' as const), pick: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    },
  );

  it('never exceeds its limit, never loses or duplicates a call, and starts queued calls in FIFO order (matches a reference model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
        fc.array(action, { maxLength: 60 }),
        async (limit, queue, queueTimeout, actions) => {
          const clock = createFakeClock();
          const b = bulkhead(
            queueTimeout === undefined
              ? { limit, queue, clock }
              : { limit, queue, queueTimeoutMs: queueTimeout, clock },
          );

          // The system under test.
          interface Call {
            id: number;
            controller: AbortController | null;
            runs: number;
            settle: Deferred<number> | null;
            outcome: ReturnType<typeof track>;
          }
          const calls: Call[] = [];
          const started: number[] = [];
          let concurrent = 0;
          let maxConcurrent = 0;

          // The reference model.
          const model = {
            running: new Set<number>(),
            queue: [] as { id: number; deadline: number }[],
            started: [] as number[],
            rejected: new Map<number, string>(),
          };
          const modelStartQueued = () => {
            while (model.running.size < limit && model.queue.length > 0) {
              const next = model.queue.shift()!;
              model.running.add(next.id);
              model.started.push(next.id);
            }
          };

          for (const a of actions) {
            if (a.type === 'arrive') {
              const id = calls.length;
              const controller = a.signal ? new AbortController() : null;
              const call: Call = {
                id,
                controller,
                runs: 0,
                settle: null,
                outcome: { current: { state: 'pending' }, settledTimes: 0 },
              };
              calls.push(call);
              call.outcome = track(
                b.execute(
                  () => {
                    call.runs++;
                    started.push(id);
                    concurrent++;
                    maxConcurrent = Math.max(maxConcurrent, concurrent);
                    call.settle = deferred<number>();
                    return call.settle.promise;
                  },
                  controller === null ? undefined : { signal: controller.signal },
                ),
              );
              if (model.running.size < limit) {
                model.running.add(id);
                model.started.push(id);
              } else if (model.queue.length < queue) {
                model.queue.push({ id, deadline: clock.now() + (queueTimeout ?? Number.POSITIVE_INFINITY) });
              } else {
                model.rejected.set(id, 'BULKHEAD_FULL');
              }
            } else if (a.type === 'complete') {
              const running = [...model.running];
              if (running.length === 0) continue;
              const id = running[a.pick % running.length]!;
              const call = calls[id]!;
              concurrent--;
              if (a.ok) call.settle!.resolve(id);
              else call.settle!.reject(new Error(`call ${id} failed`));
              model.running.delete(id);
              modelStartQueued();
            } else if (a.type === 'abort') {
              const withSignal = calls.filter((c) => c.controller !== null && !c.controller.signal.aborted);
              if (withSignal.length === 0) continue;
              const call = withSignal[a.pick % withSignal.length]!;
              call.controller!.abort(`abort ${call.id}`);
              const i = model.queue.findIndex((w) => w.id === call.id);
              if (i >= 0) {
                model.queue.splice(i, 1);
                model.rejected.set(call.id, 'aborted');
              }
            } else {
              const now = clock.now() + a.ms;
              await clock.tick(a.ms);
              while (model.queue.length > 0 && model.queue[0]!.deadline <= now) {
                model.rejected.set(model.queue.shift()!.id, 'BULKHEAD_QUEUE_TIMEOUT');
              }
            }
            await flushMicrotasks();

            // After every step the bulkhead agrees with the model.
            expect(maxConcurrent).toBeLessThanOrEqual(limit);
            expect(started).toEqual(model.started);
            expect(b.inFlight).toBe(model.running.size);
            expect(b.queued).toBe(model.queue.length);
            for (const [id, why] of model.rejected) {
              const outcome = calls[id]!.outcome.current;
              expect(outcome.state).toBe('rejected');
              const error = (outcome as { error: unknown }).error;
              if (why === 'aborted') expect(error).toBe(`abort ${id}`);
              else expect((error as BulkheadRejectedError).code).toBe(why);
            }
          }

          // Drain: finish everything still running (and whatever the queue hands over).
          for (let guard = 0; model.running.size > 0 && guard < 1_000; guard++) {
            const id = [...model.running][0]!;
            concurrent--;
            calls[id]!.settle!.resolve(id);
            model.running.delete(id);
            modelStartQueued();
            await flushMicrotasks();
          }
          expect(started).toEqual(model.started);
          expect(b.inFlight).toBe(0);
          expect(b.queued).toBe(0);

          // Every call ran exactly once or was rejected exactly once: none lost, none duplicated.
          for (const call of calls) {
            expect(call.outcome.settledTimes).toBe(1);
            const ran = call.runs === 1;
            const rejectedBefore = model.rejected.has(call.id);
            expect(call.runs).toBeLessThanOrEqual(1);
            expect(ran !== rejectedBefore).toBe(true);
            if (ran) {
              const outcome = call.outcome.current;
              if (outcome.state === 'fulfilled') expect(outcome.value).toBe(call.id);
              else expect((outcome as { error: Error }).error.message).toBe(`call ${call.id} failed`);
            }
          }
          // FIFO: calls start in arrival order.
          expect(started).toEqual([...started].sort((x, y) => x - y));
          // Nothing left behind.
          for (const call of calls) {
            if (call.controller) expect(getEventListeners(call.controller.signal, 'abort')).toHaveLength(0);
          }
          expect(clock.refed).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('bulkhead: per-priority limits', () => {
  it('a waiter whose own limit is reached does not block a later waiter with a higher limit', async () => {
    const b = bulkhead({ limit: (ctx) => (ctx.priority === 'critical' ? 2 : 1), queue: 10 });
    const started: string[] = [];
    const gates = new Map<string, Deferred<void>>();
    const run = (label: string) => async () => {
      started.push(label);
      const d = deferred<void>();
      gates.set(label, d);
      await d.promise;
    };
    const all = [
      b.execute(run('normal-1')),
      b.execute(run('critical-1'), { priority: 'critical' }),
      b.execute(run('normal-2')), // queued: 2 running >= 1
      b.execute(run('critical-2'), { priority: 'critical' }), // queued: 2 running >= 2
    ];
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1']);
    expect(b.queued).toBe(2);
    gates.get('critical-1')!.resolve(); // 1 running: normal-2 (limit 1) must wait, critical-2 (limit 2) may start
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1', 'critical-2']);
    expect(b.queued).toBe(1);
    gates.get('normal-1')!.resolve();
    gates.get('critical-2')!.resolve();
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1', 'critical-2', 'normal-2']);
    gates.get('normal-2')!.resolve();
    await Promise.all(all);
    expect(b.inFlight).toBe(0);
  });
});
