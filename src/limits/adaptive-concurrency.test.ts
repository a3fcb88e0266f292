import { describe, expect, it } from 'vitest';
import { BulkheadRejectedError, ConfigError, TimeoutError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { createFakeClock, deferred } from '../testing/index.js';
import { type AdaptiveConcurrencyEvent, adaptiveConcurrency } from './adaptive-concurrency.js';

describe('adaptiveConcurrency', () => {
  it('admits up to the limit, rejects the rest with BulkheadRejectedError', async () => {
    const p = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 2, minLimit: 1 });
    const d = deferred<void>();
    const a = p.execute(() => d.promise);
    const b = p.execute(() => d.promise);
    expect(p.inFlight).toBe(2);
    await expect(p.execute(() => 1)).rejects.toBeInstanceOf(BulkheadRejectedError);
    d.resolve();
    await Promise.all([a, b]);
    expect(p.inFlight).toBe(0);
    expect(p.stats.rejected).toBe(1);
  });

  it('measures RTT with the clock, feeds the algorithm and emits limitChange', async () => {
    const clock = createFakeClock();
    const p = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 2, minLimit: 1, timeoutMs: 50, clock });
    const events: AdaptiveConcurrencyEvent[] = [];
    p.onLimitChange((e) => events.push(e));
    await p.execute(() => 1); // inflight 1, 1·2 >= 2 → +1
    expect(p.limit).toBe(3);
    const slow = p.execute(() => new Promise((r) => clock.setTimeout(() => r(1), 100)));
    await clock.tick(100);
    await slow; // rtt 100 > timeout 50 → drop → floor(3·0.9) = 2
    expect(p.limit).toBe(2);
    expect(events.map((e) => e.event === 'limitChange' && [e.from, e.to])).toEqual([
      [2, 3],
      [3, 2],
    ]);
    expect(events[1]).toMatchObject({ rttMs: 100, kind: 'adaptiveConcurrency' });
  });

  it('counts TimeoutError and 503 as drops, ignores other errors', async () => {
    const p = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 10, minLimit: 1 });
    await expect(p.execute(() => Promise.reject(new TimeoutError(10)))).rejects.toThrow();
    expect(p.limit).toBe(9);
    await p.execute(() => ({ status: 503, headers: {} }));
    expect(p.limit).toBe(8);
    await expect(p.execute(() => Promise.reject(new Error('bad input')))).rejects.toThrow();
    expect(p.limit).toBe(8);
    expect(p.stats).toMatchObject({ samples: 2, drops: 2 });
  });

  it('queues up to `queue` calls, FIFO, with queueTimeout', async () => {
    const clock = createFakeClock();
    const p = adaptiveConcurrency({
      algorithm: 'vegas',
      initialLimit: 1,
      queue: 1,
      queueTimeoutMs: 50,
      clock,
    });
    const d = deferred<string>();
    const first = p.execute(() => d.promise);
    const second = p.execute(() => 'second');
    await expect(p.execute(() => 'third')).rejects.toMatchObject({ code: 'BULKHEAD_FULL' });
    expect(p.queued).toBe(1);
    d.resolve('first');
    expect(await first).toBe('first');
    expect(await second).toBe('second');
    const e = deferred<void>();
    const blocker = p.execute(() => e.promise);
    const waiting = p.execute(() => 'late');
    const check = expect(waiting).rejects.toMatchObject({ code: 'BULKHEAD_QUEUE_TIMEOUT' });
    await clock.tick(50);
    await check;
    e.resolve();
    await blocker;
  });

  it('a queued call aborted by its caller leaves the queue', async () => {
    const p = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 1, minLimit: 1, queue: 5 });
    const d = deferred<void>();
    const running = p.execute(() => d.promise);
    const ac = new AbortController();
    const queued = p.execute(() => 1, { signal: ac.signal });
    ac.abort(new Error('gone'));
    await expect(queued).rejects.toThrow('gone');
    expect(p.queued).toBe(0);
    d.resolve();
    await running;
  });

  it('works in a pipeline and validates options by algorithm', async () => {
    const p = pipeline(adaptiveConcurrency());
    expect(await p.execute(() => 5)).toBe(5);
    expect(() => adaptiveConcurrency({ algorithm: 'vegas', minLimit: 3 } as never)).toThrow(ConfigError);
    expect(() => adaptiveConcurrency({ algorithm: 'nope' as never })).toThrow(
      /adaptiveConcurrency.algorithm/,
    );
    expect(() => adaptiveConcurrency({ algorithm: 'aimd', backoffRatio: 1 })).toThrow(/backoffRatio/);
    expect(() => adaptiveConcurrency({ algorithm: 'gradient2', minLimit: 30, maxLimit: 10 })).toThrow(
      /maxLimit/,
    );
  });
});

describe('adaptiveConcurrency robustness', () => {
  it('releases the slot when the drop predicate throws', async () => {
    const { handle } = await import('../core/handle.js');
    const p = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 1,
      minLimit: 1,
      drop: handle.errors(() => {
        throw new Error('predicate');
      }),
    });
    await expect(p.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('predicate');
    expect(p.inFlight).toBe(0);
    expect(await p.execute(() => 2)).toBe(2);
  });
});
