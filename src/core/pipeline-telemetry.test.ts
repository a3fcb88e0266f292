import { describe, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  bulkhead,
  type Clock,
  createRegistry,
  fallback,
  type PipelineEvent,
  pipeline,
  readDurations,
  retry,
  timeout,
} from '../index.js';
import { createFakeClock, deferred } from '../testing/index.js';
import { callTime } from './call-time.js';

/** A clock that counts its reads. */
function counting(clock: Clock): Clock & { reads: number } {
  const c = {
    reads: 0,
    now: () => {
      c.reads++;
      return clock.now();
    },
    date: () => clock.date(),
    setTimeout: clock.setTimeout.bind(clock),
    clearTimeout: clock.clearTimeout.bind(clock),
  };
  return c;
}

describe('pipeline telemetry', () => {
  it('counts every outcome, rejections by reason, and times every execution', async () => {
    const clock = createFakeClock();
    const gate = deferred<number>();
    const p = pipeline(
      { name: 'api', clock, timing: true },
      timeout({ timeoutMs: 50, clock, strategy: 'abandon' }),
      bulkhead({ limit: 1, clock }),
    );
    await p.execute(() => 1);
    await p.execute(() => Promise.reject(new Error('boom'))).catch(() => {});
    const held = p.execute(() => gate.promise).catch(() => {});
    const refused = await p.execute(() => 2).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BulkheadRejectedError);
    await clock.tick(50);
    await held;
    gate.resolve(0);
    const snap = p.snapshot();
    expect(snap).toMatchObject({
      kind: 'pipeline',
      name: 'api',
      state: 'ready',
      counters: { successes: 1, failures: 1, rejections: 1, timeouts: 1 },
      details: { rejectionReasons: { bulkheadFull: 1 }, timing: true, timed: true },
    });
    const h = snap.histograms!.durationSeconds!;
    expect(h.count).toBe(4);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(h.sum).toBeCloseTo(0.05, 6); // the timed-out call took 50 ms, the others 0
    expect(p.descriptor).toBe(pipeline(retry()).descriptor);
    expect(Object.isFrozen(p.descriptor)).toBe(true);
  });

  it('reads the clock once at the start (shared with a timeout of the same clock) and once at the end', async () => {
    const clock = counting(createFakeClock());
    const p = pipeline({ clock, timing: true }, timeout({ timeoutMs: 1_000, clock }));
    await p.execute(() => 1);
    expect(clock.reads).toBe(2);
    p.timing = false;
    await p.execute(() => 1);
    expect(clock.reads).toBe(3); // the timeout reads its own
    expect(p.snapshot().histograms?.durationSeconds?.count).toBe(1);
    expect(p.snapshot().counters.successes).toBe(2);
  });

  it("with timing 'auto' (the default) times executions only while something reads durations", async () => {
    const clock = counting(createFakeClock());
    const registry = createRegistry();
    const p = pipeline({ name: 'auto', clock, registry }, timeout({ timeoutMs: 1_000, clock }), retry());
    const calls = async (n: number) => {
      for (let i = 0; i < n; i++) await p.execute(() => 1);
    };
    const timedCount = () => p.snapshot().histograms?.durationSeconds?.count;
    const reads = async (n: number) => {
      const before = clock.reads;
      await calls(n);
      return clock.reads - before;
    };
    expect(p.timing).toBe('auto');
    expect(p.timed).toBe(false);
    // Registered but nothing reads durations: no clock read beyond the timeout's own.
    expect(await reads(3)).toBe(3);
    expect(timedCount()).toBe(0);

    // A reader of the registry's durations (what createMetrics and the control plane declare).
    const stop = registry.readDurations();
    expect(p.timed).toBe(true);
    expect(await reads(4)).toBe(8); // one read at the start, shared with the timeout, one at the end
    expect(timedCount()).toBe(4);
    const second = registry.readDurations();
    stop();
    expect(p.timed).toBe(true);
    second();
    second(); // idempotent
    expect(p.timed).toBe(false);
    expect(await reads(2)).toBe(2);
    expect(timedCount()).toBe(4);

    // Joining or leaving a registry that has a reader switches timing too.
    const read = createRegistry();
    const stopRead = read.readDurations();
    read.register(p);
    expect(p.timed).toBe(true);
    read.unregister(p);
    expect(p.timed).toBe(false);
    stopRead();

    // A reader of this pipeline alone (a latency SLO), and a listener of its execution events.
    const direct = readDurations(p);
    expect(p.timed).toBe(true);
    direct();
    expect(p.timed).toBe(false);
    const durations: number[] = [];
    const off = p.onEvent(
      (e) => {
        if (e.kind === 'pipeline') durations.push(e.durationMs);
      },
      ['execution'],
    );
    expect(await reads(1)).toBe(2);
    expect(durations).toEqual([0]);
    off();
    expect(await reads(1)).toBe(1);
    expect(p.snapshot()).toMatchObject({
      counters: { successes: 11 },
      details: { timing: 'auto', timed: false },
    });
  });

  it('timing true times with no reader; false never times, even with one', async () => {
    const clock = counting(createFakeClock());
    const registry = createRegistry();
    registry.readDurations();
    const p = pipeline({ clock, registry, timing: false }, retry());
    await p.execute(() => 1);
    expect(clock.reads).toBe(0);
    expect(p.timed).toBe(false);
    p.timing = true;
    registry.unregister(p);
    expect(p.timed).toBe(true);
    await p.execute(() => 1);
    expect(clock.reads).toBe(2);
    p.timing = 'auto';
    expect(p.timed).toBe(false);
    expect(() => {
      p.timing = 'yes' as never;
    }).toThrow(/pipeline\.timing/);
  });

  it('publishes its start time for the first pass only (a nested pipeline clears it)', async () => {
    const clock = counting(createFakeClock());
    const inner = pipeline({ clock, timing: true }, timeout({ timeoutMs: 10, clock }));
    let during: unknown;
    const outer = pipeline(
      { clock, timing: true },
      timeout({ timeoutMs: 100, clock }),
      retry(), // its first attempt runs in the first pass
    );
    const done = outer.execute(() => {
      during = callTime.clock;
      return inner.execute(() => 1);
    });
    expect(during).toBe(clock);
    expect(callTime.clock).toBe(null);
    await done;
    // outer: start (shared with its timeout) + end; inner: the same.
    expect(clock.reads).toBe(4);
  });

  it('emits an execution event with the outcome and reason when someone listens', async () => {
    const p = pipeline({ name: 'x', timing: false }, fallback(0), bulkhead({ limit: 1, queue: 0 }));
    const events: PipelineEvent[] = [];
    p.onEvent((e) => {
      if (e.kind === 'pipeline') events.push(e);
    });
    await p.execute(() => 1);
    expect(events).toMatchObject([{ kind: 'pipeline', event: 'execution', name: 'x', outcome: 'success' }]);
  });

  it('joins a registry given at creation, and validates its options', () => {
    const registry = createRegistry();
    const r = retry({ name: 'r', registry });
    const p = pipeline({ name: 'orders', registry }, r);
    expect(registry.get('pipeline', 'orders')).toBe(p);
    expect(registry.get('retry', 'r')).toBe(r);
    expect(registry.snapshot().map((s) => s.kind)).toEqual(['retry', 'pipeline']);
    expect(() => pipeline({ nam: 'x' } as never, r)).toThrow(/did you mean pipeline\.name\?/);
  });
});

describe('descriptors', () => {
  it('every built-in policy has its own frozen descriptor, found by kind', async () => {
    const m = await import('../index.js');
    const policies = [
      m.retry(),
      m.timeout(1),
      m.bulkhead(1),
      m.fallback(0),
      m.rateLimit({ limits: [{ algorithm: 'token-bucket', capacity: 1, refillRate: 1 }] }),
      m.adaptiveConcurrency(),
      m.adaptiveTimeout(),
      m.adaptiveThrottle(),
      m.loadShedder(),
      m.hedge({ delay: 1 }),
      m.coalesce({ key: () => 'k' }),
      m.cache({ key: () => 'k', ttlMs: 1 }),
      m.chaos.fault({ error: new Error('x') }),
    ];
    for (const p of policies) {
      expect(p.descriptor.kind).toBe(p.kind);
      expect(Object.isFrozen(p.descriptor)).toBe(true);
      const snap = p.snapshot();
      expect(snap.kind).toBe(p.kind);
      for (const c of Object.keys(snap.counters)) expect(p.descriptor.counters).toHaveProperty(c);
      for (const g of Object.keys(snap.gauges)) expect(p.descriptor.gauges).toHaveProperty(g);
    }
  });
});
