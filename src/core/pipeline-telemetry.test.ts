import { describe, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  bulkhead,
  type Clock,
  createRegistry,
  fallback,
  type PipelineEvent,
  pipeline,
  retry,
  timeout,
} from '../index.js';
import { createFakeClock, deferred } from '../testing/index.js';

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
      { name: 'api', clock },
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
      details: { rejectionReasons: { bulkheadFull: 1 }, timing: true },
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
    const p = pipeline({ clock }, timeout({ timeoutMs: 1_000, clock }));
    await p.execute(() => 1);
    expect(clock.reads).toBe(2);
    p.timing = false;
    await p.execute(() => 1);
    expect(clock.reads).toBe(3); // the timeout reads its own
    expect(p.snapshot().histograms?.durationSeconds?.count).toBe(1);
    expect(p.snapshot().counters.successes).toBe(2);
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
