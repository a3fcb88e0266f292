import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';
import { type RateLimitEvent, RateLimitedError, rateLimit } from './rate-limit.js';
import { rateLimiter } from './rate-limiter.js';

function track(p: Promise<unknown>) {
  const box: { state: 'pending' | 'fulfilled' | 'rejected'; value?: unknown; error?: unknown } = {
    state: 'pending',
  };
  p.then(
    (value) => {
      box.state = 'fulfilled';
      box.value = value;
    },
    (error: unknown) => {
      box.state = 'rejected';
      box.error = error;
    },
  );
  return box;
}

const perSecond = (n: number) => [{ algorithm: 'fixed-window' as const, limit: n, windowMs: 1_000 }];

describe('rateLimit policy', () => {
  it('admits within the limit and rejects past it with a typed RateLimitedError', async () => {
    const clock = createFakeClock();
    const p = rateLimit({ limits: perSecond(2), clock, name: 'api' });
    expect(await p.execute(() => 1)).toBe(1);
    expect(await p.execute(() => 2)).toBe(2);
    const err = await p.execute(() => 3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toBeInstanceOf(BulwarkError);
    expect((err as RateLimitedError).code).toBe('RATE_LIMITED');
    expect((err as RateLimitedError).retryAfterMs).toBe(1_000);
    expect((err as RateLimitedError).reason).toBe('rateLimited');
    expect((err as RateLimitedError).limiter).toBe('api');
    expect(p.snapshot()).toMatchObject({
      gauges: { queued: 0 },
      counters: { admissions: 2, rejections: 1, bypasses: 0 },
    });
  });

  it('limits per key and charges the dynamic cost', async () => {
    const clock = createFakeClock();
    const l = rateLimiter({ limits: perSecond(3), clock });
    const p = rateLimit({
      limiter: l,
      key: (ctx) => String(ctx.props.user),
      cost: (ctx) => (ctx.props.heavy === true ? 3 : 1),
    });
    await p.execute(() => 0, { props: { user: 'a', heavy: true } });
    await expect(p.execute(() => 0, { props: { user: 'a' } })).rejects.toBeInstanceOf(RateLimitedError);
    await expect(p.execute(() => 0, { props: { user: 'b' } })).resolves.toBe(0);
    expect(l.peek('b').remaining).toBe(1);
  });

  it('bypasses configured priorities, and emits reject / queued / dequeued / bypass', async () => {
    const clock = createFakeClock();
    const p = rateLimit({ limits: perSecond(1), clock, maxWaitMs: 2_000, bypass: ['critical'] });
    const events: RateLimitEvent[] = [];
    p.onEvent((e) => events.push(e));
    await p.execute(() => 0);
    await p.execute(() => 0, { priority: 'critical' });
    const waiting = track(p.execute(() => 'late'));
    await flushMicrotasks();
    expect(p.queued).toBe(1);
    await clock.tick(1_000);
    expect(waiting.state).toBe('fulfilled');
    expect(events.map((e) => e.event)).toEqual(['bypass', 'queued', 'dequeued']);
    const q2 = rateLimit({ limits: perSecond(1), clock });
    const ev2: RateLimitEvent[] = [];
    q2.onEvent((e) => ev2.push(e));
    await q2.execute(() => 0);
    await q2.execute(() => 0).catch(() => {});
    expect(ev2).toMatchObject([
      { kind: 'rateLimit', event: 'reject', reason: 'rateLimited', key: 'default' },
    ]);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('waits up to maxWait in FIFO order, and rejects at once when the wait would be longer', async () => {
    const clock = createFakeClock();
    const p = rateLimit({
      limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000 }],
      clock,
      maxWaitMs: 250,
    });
    const order: number[] = [];
    const calls = [0, 1, 2, 3].map((i) => track(p.execute(() => order.push(i))));
    // Each waits its turn; the 4th's would come at 300 ms, past its 250 ms maxWait.
    await flushMicrotasks();
    expect(order).toEqual([0]);
    await clock.tick(100);
    expect(order).toEqual([0, 1]);
    await clock.tick(100);
    expect(order).toEqual([0, 1, 2]);
    expect(calls.map((c) => c.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(calls[3]!.error).toMatchObject({ reason: 'maxWait' });
    // A wait longer than maxWait is refused at once.
    const busy = rateLimit({ limits: perSecond(1), clock, maxWaitMs: 100 });
    await busy.execute(() => 0);
    const e = await busy.execute(() => 0).catch((x: unknown) => x);
    expect(e).toMatchObject({ reason: 'rateLimited' });
    expect(clock.pending).toBe(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rejects a waiter whose turn would come after its maxWait (reason maxWait)', async () => {
    const clock = createFakeClock();
    const p = rateLimit({
      limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000 }],
      clock,
      maxWaitMs: 150,
    });
    await p.execute(() => 0);
    const a = track(p.execute(() => 'a')); // waits 100
    const b = track(p.execute(() => 'b')); // would wait 200 > 150
    await clock.tick(100);
    expect(a.state).toBe('fulfilled');
    expect(b.state).toBe('rejected');
    expect(b.error).toMatchObject({ reason: 'maxWait' });
    expect(clock.pending).toBe(0);
  });

  it('bounds the queue', async () => {
    const clock = createFakeClock();
    const p = rateLimit({ limits: perSecond(1), clock, maxWaitMs: 5_000, queue: 1 });
    await p.execute(() => 0);
    const a = track(p.execute(() => 'a'));
    const e = await p.execute(() => 'b').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'RATE_LIMITED', reason: 'queueFull', retryAfterMs: 1_000 });
    await clock.tick(1_000);
    expect(a.state).toBe('fulfilled');
  });

  it('an aborted waiter leaves the queue at once and leaves no timer behind', async () => {
    const clock = createFakeClock();
    const p = rateLimit({ limits: perSecond(1), clock, maxWaitMs: 5_000 });
    await p.execute(() => 0);
    const ac = new AbortController();
    const a = track(p.execute(() => 'a', { signal: ac.signal }));
    await flushMicrotasks();
    expect(clock.pending).toBe(1);
    ac.abort(new Error('gone'));
    await flushMicrotasks();
    expect(a.state).toBe('rejected');
    expect((a.error as Error).message).toBe('gone');
    expect(p.queued).toBe(0);
    expect(clock.pending).toBe(0);
    // An already-aborted call is refused at once.
    await expect(p.execute(() => 0, { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow(
      'early',
    );
  });

  it('works inside a pipeline (retry honours nothing special: it just sees the error)', async () => {
    const clock = createFakeClock();
    const p = pipeline(retry({ maxAttempts: 1, clock }), rateLimit({ limits: perSecond(1), clock }));
    await p.execute(() => 0);
    await expect(p.execute(() => 0)).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('validates its options (a bad dynamic value rejects the call)', async () => {
    expect(() => rateLimit({} as never)).toThrow(ConfigError);
    expect(() => rateLimit({ limits: perSecond(1), maxWaitMs: -1 })).toThrow(/rateLimit.maxWait/);
    expect(() => rateLimit({ limits: perSecond(1), queu: 3 } as never)).toThrow(/rateLimit.queu/);
    expect(() => rateLimit({ limiter: {} as never })).toThrow(/rateLimit.limiter/);
    const shared = rateLimiter({ limits: perSecond(1) });
    expect(() => rateLimit({ limiter: shared, maxKeys: 3 })).toThrow(/rateLimit.maxKeys/);
    await expect(rateLimit({ limiter: shared, cost: () => -1 }).execute(() => 0)).rejects.toThrow(
      /rateLimit.cost/,
    );
    await expect(rateLimit({ limiter: shared, key: () => 3 as never }).execute(() => 0)).rejects.toThrow(
      /rateLimit.key/,
    );
  });

  it('property: with waiting, no window ever runs more than its limit, and every call settles within maxWait', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 1, max: 3 }) }), {
          minLength: 1,
          maxLength: 40,
        }),
        async (run) => {
          const clock = createFakeClock();
          const p = rateLimit({
            limits: perSecond(4),
            clock,
            cost: (ctx) => ctx.props.cost as number,
            maxWaitMs: 700,
          });
          const ran: { t: number; cost: number }[] = [];
          const settled: Promise<unknown>[] = [];
          for (const s of run) {
            await clock.tick(s.dt);
            const t0 = clock.now();
            settled.push(
              p
                .execute(() => ran.push({ t: clock.now(), cost: s.cost }), { props: { cost: s.cost } })
                .then(
                  () => clock.now() - t0,
                  (e: unknown) => {
                    expect(e).toBeInstanceOf(RateLimitedError);
                    return clock.now() - t0;
                  },
                ),
            );
          }
          await clock.tick(2_000);
          const waits = await Promise.all(settled);
          for (const w of waits) expect(w).toBeLessThanOrEqual(700);
          const perWindow = new Map<number, number>();
          for (const r of ran) {
            const w = Math.floor(r.t / 1_000);
            perWindow.set(w, (perWindow.get(w) ?? 0) + r.cost);
          }
          for (const v of perWindow.values()) expect(v).toBeLessThanOrEqual(4);
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });
});
