import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { telemetry } from '../core/events.js';
import { handle } from '../core/handle.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { timeout } from '../core/timeout.js';
import { createFakeClock, flushMicrotasks, seededRandom } from '../testing/index.js';
import { type ChaosEvent, chaos } from './chaos.js';

const boom = new Error('boom');

async function outcomeOf(p: Promise<unknown>): Promise<'ok' | 'fail'> {
  return p.then(
    () => 'ok',
    () => 'fail',
  );
}

describe('chaos.fault', () => {
  it('injects the error at rate 1 (default) and never calls the function', async () => {
    const c = chaos.fault({ error: boom });
    let called = 0;
    await expect(c.execute(() => called++)).rejects.toBe(boom);
    expect(called).toBe(0);
    expect(c.stats).toEqual({ calls: 1, injected: 1 });
  });

  it('makes a fresh error per call from a function of the context', async () => {
    const c = chaos.fault({ error: (ctx) => new Error(`fail ${ctx.attempt} ${ctx.name}`) });
    await expect(c.execute(() => 1, { name: 'op' })).rejects.toThrow('fail 1 op');
  });

  it('passes straight through when not injecting: the function’s own promise comes back', async () => {
    const c = chaos.fault({ error: boom, rate: 0 });
    const p = Promise.resolve(7);
    expect(c.execute(() => p)).toBe(p);
    c.control.setRate(1);
    c.control.disable();
    expect(c.execute(() => p)).toBe(p);
    expect(await c.execute(() => 8)).toBe(8);
  });

  it('injects about rate × calls with a seeded random, exactly as the draws say', async () => {
    const random = seededRandom(1);
    const expected = seededRandom(1);
    const c = chaos.fault({ error: boom, rate: 0.3, random });
    let want = 0;
    let got = 0;
    for (let i = 0; i < 1000; i++) {
      if (expected() < 0.3) want++;
      if ((await outcomeOf(c.execute(() => 1))) === 'fail') got++;
    }
    expect(got).toBe(want);
    expect(got).toBeGreaterThan(250);
    expect(got).toBeLessThan(350);
    expect(c.stats).toEqual({ calls: 1000, injected: got });
  });

  it('firstN: only the first N calls; retry then succeeds; restart() counts again', async () => {
    const c = chaos.fault({ error: boom, firstN: 2 });
    let runs = 0;
    const p = pipeline(retry({ maxAttempts: 3, backoff: { start: () => ({ next: () => 0 }) } }), c);
    expect(await p.execute(() => ++runs)).toBe(1);
    expect(c.stats).toEqual({ calls: 3, injected: 2 });
    expect(await c.execute(() => 'x')).toBe('x');
    c.control.restart();
    await expect(c.execute(() => 'x')).rejects.toBe(boom);
  });

  it('property: with firstN and rate 1, exactly min(N, calls) injections', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 30 }), async (n, calls) => {
        const c = chaos.fault({ error: boom, firstN: n });
        let failed = 0;
        for (let i = 0; i < calls; i++) if ((await outcomeOf(c.execute(() => 1))) === 'fail') failed++;
        expect(failed).toBe(Math.min(n, calls));
      }),
      { numRuns: 50 },
    );
  });

  it('between { fromMs, toMs }: relative to creation, then to restart()', async () => {
    const clock = createFakeClock({ now: 1_000 });
    const c = chaos.fault({ error: boom, between: { fromMs: 100, toMs: 200 }, clock });
    expect(await outcomeOf(c.execute(() => 1))).toBe('ok');
    clock.tickSync(100);
    expect(await outcomeOf(c.execute(() => 1))).toBe('fail');
    clock.tickSync(99);
    expect(await outcomeOf(c.execute(() => 1))).toBe('fail');
    clock.tickSync(1);
    expect(await outcomeOf(c.execute(() => 1))).toBe('ok');
    c.control.restart();
    clock.tickSync(150);
    expect(await outcomeOf(c.execute(() => 1))).toBe('fail');
  });

  it('between { from, to }: absolute wall-clock times (Date or epoch ms)', async () => {
    const t0 = Date.UTC(2026, 0, 1);
    const clock = createFakeClock({ date: t0 });
    const c = chaos.fault({ error: boom, between: { from: new Date(t0 + 60_000), to: t0 + 120_000 }, clock });
    expect(await outcomeOf(c.execute(() => 1))).toBe('ok');
    clock.tickSync(60_000);
    expect(await outcomeOf(c.execute(() => 1))).toBe('fail');
    clock.tickSync(60_000);
    expect(await outcomeOf(c.execute(() => 1))).toBe('ok');
  });

  it('enabled as a function of the context; enable()/disable() switch at run time', async () => {
    const c = chaos.fault({ error: boom, enabled: (ctx) => ctx.props.tenant === 'test' });
    expect(await outcomeOf(c.execute(() => 1, { props: { tenant: 'prod' } }))).toBe('ok');
    expect(await outcomeOf(c.execute(() => 1, { props: { tenant: 'test' } }))).toBe('fail');
    c.control.disable();
    expect(c.control.enabled).toBe(false);
    expect(await outcomeOf(c.execute(() => 1, { props: { tenant: 'test' } }))).toBe('ok');
    const off = chaos.fault({ error: boom, enabled: false });
    expect(await outcomeOf(off.execute(() => 1))).toBe('ok');
    off.control.enable();
    expect(await outcomeOf(off.execute(() => 1))).toBe('fail');
  });

  it('a rate function is validated per call; setRate replaces it', async () => {
    const c = chaos.fault({ error: boom, rate: () => 2 });
    expect(c.control.rate).toBeNaN();
    await expect(c.execute(() => 1)).rejects.toBeInstanceOf(ConfigError);
    c.control.setRate(0);
    expect(c.control.rate).toBe(0);
    expect(await c.execute(() => 1)).toBe(1);
    expect(() => c.control.setRate(1.5)).toThrow(ConfigError);
  });

  it('rejects an already aborted call at once', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(
      chaos.fault({ error: boom, rate: 0 }).execute(() => 1, { signal: ac.signal }),
    ).rejects.toThrow('gone');
  });
});

describe('chaos.latency', () => {
  it('waits on the injected clock, then calls the function', async () => {
    const clock = createFakeClock();
    const c = chaos.latency({ delayMs: 500, clock });
    let done = false;
    const p = c
      .execute(() => 'v')
      .then((v) => {
        done = true;
        return v;
      });
    await clock.tick(499);
    expect(done).toBe(false);
    await clock.tick(1);
    expect(await p).toBe('v');
  });

  it('is abortable by the caller and by an enclosing timeout', async () => {
    const clock = createFakeClock();
    const ac = new AbortController();
    const c = chaos.latency({ delayMs: (ctx) => (ctx.priority === 'low' ? 10_000 : 0), clock });
    const p = c.execute(() => 'v', { signal: ac.signal, priority: 'low' });
    ac.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
    expect(clock.pending).toBe(0);
    const t = pipeline(timeout({ timeoutMs: 1_000, clock }), chaos.latency({ delayMs: 5_000, clock }));
    const q = t.execute(() => 'v');
    const r = expect(q).rejects.toMatchObject({ code: 'TIMEOUT' });
    await clock.tick(1_000);
    await r;
    await clock.runAll();
    expect(clock.pending).toBe(0);
  });
});

describe('chaos.outcome', () => {
  it('returns an HTTP 503 Response instead of calling; retry with handle.transient() retries it', async () => {
    const c = chaos.outcome({ result: () => new Response('down', { status: 503 }) });
    expectTypeOf(c.execute(() => new Response('ok'))).toEqualTypeOf<Promise<Response>>();
    const r = await c.execute(() => new Response('ok'));
    expect(r.status).toBe(503);
    const p = pipeline(
      retry({ handle: handle.transient(), backoff: { start: () => ({ next: () => 0 }) } }),
      chaos.outcome({ result: () => new Response(null, { status: 503 }), firstN: 1 }),
    );
    const res = await p.execute(() => new Response('ok'));
    expect(await res.text()).toBe('ok');
  });

  it('a constant result, and its type joins the pipeline’s alternatives', async () => {
    const c = chaos.outcome({ result: 'cached' as const });
    const v = await pipeline(c).execute(() => 42);
    expectTypeOf(v).toEqualTypeOf<42 | 'cached' | number>();
    expect(v).toBe('cached');
  });
});

describe('chaos.behavior', () => {
  it('runs the behaviour (sync or async) then the call; a throwing behaviour fails the call', async () => {
    const log: string[] = [];
    const c = chaos.behavior({
      run: async (ctx) => {
        await flushMicrotasks();
        log.push(`behavior ${ctx.attempt}`);
      },
    });
    expect(await c.execute(() => log.push('call'))).toBe(2);
    expect(log).toEqual(['behavior 1', 'call']);
    const s = chaos.behavior({ run: () => void log.push('sync') });
    await s.execute(() => 1);
    expect(log.at(-1)).toBe('sync');
    const bad = chaos.behavior({
      run: () => {
        throw boom;
      },
    });
    await expect(bad.execute(() => 1)).rejects.toBe(boom);
  });
});

describe('events and validation', () => {
  it('emits inject for every injection, on the policy and the bus', async () => {
    const c = chaos.latency({ delayMs: 0, name: 'slow-db' });
    const seen: ChaosEvent[] = [];
    const stop = c.onEvent((e) => seen.push(e));
    const bus: string[] = [];
    const stopBus = telemetry.onEvent((e) => {
      if (e.kind === 'chaos' && e.event === 'inject') bus.push(`${e.strategy}:${e.name}`);
    });
    await c.execute(() => 1, { name: 'q', priority: 'high' });
    stop();
    stopBus();
    expect(seen).toEqual([
      {
        kind: 'chaos',
        event: 'inject',
        strategy: 'latency',
        name: 'slow-db',
        priority: 'high',
        operation: 'q',
        attempt: 1,
        delayMs: 0,
      },
    ]);
    expect(bus).toEqual(['latency:slow-db']);
    const f = chaos.fault({ error: boom });
    const errs: unknown[] = [];
    f.onEvent((e) => errs.push(e.event === 'inject' ? e.error : undefined));
    await f.execute(() => 1).catch(() => {});
    expect(errs).toEqual([boom]);
    expect(f.kind).toBe('chaos');
    expect(f.name).toBe('chaos.fault');
  });

  it('names the bad option', () => {
    const bad = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as ConfigError).option;
      }
      return 'no error';
    };
    expect(bad(() => chaos.fault({ error: boom, rate: 1.2 }))).toBe('chaos.fault.rate');
    expect(bad(() => chaos.fault({} as never))).toBe('chaos.fault.error');
    expect(bad(() => chaos.latency({ delayMs: -1 }))).toBe('chaos.latency.delayMs');
    expect(bad(() => chaos.latency({ delayMs: 1, firstN: 1.5 }))).toBe('chaos.latency.firstN');
    expect(bad(() => chaos.outcome({ result: 1, between: { fromMs: 5, toMs: 5 } }))).toBe(
      'chaos.outcome.between.toMs',
    );
    expect(bad(() => chaos.outcome({ result: 1, between: { fromMs: 5, to: 9 } as never }))).toBe(
      'chaos.outcome.between',
    );
    expect(bad(() => chaos.behavior({ run: 1 as never }))).toBe('chaos.behavior.run');
    expect(bad(() => chaos.fault({ error: boom, enabled: 'yes' as never }))).toBe('chaos.fault.enabled');
    expect(bad(() => chaos.fault({ error: boom, rat: 1 } as never))).toBe('chaos.fault.rat');
  });
});

describe('reference model', () => {
  type Op =
    | { op: 'call' }
    | { op: 'tick'; ms: number }
    | { op: 'enable' }
    | { op: 'disable' }
    | { op: 'setRate'; rate: number }
    | { op: 'restart' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ op: 'call' } as const) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 400 }).map((ms) => ({ op: 'tick', ms }) as const) },
    fc.constant({ op: 'enable' } as const),
    fc.constant({ op: 'disable' } as const),
    fc.constantFrom(0, 0.25, 0.5, 1).map((rate) => ({ op: 'setRate', rate }) as const),
    fc.constant({ op: 'restart' } as const),
  );

  it('property: injections match a model of switch, window, firstN and rate under any run-time control', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer(),
        async (ops, firstN, fromMs, span, seed) => {
          const clock = createFakeClock();
          const c = chaos.fault({
            error: boom,
            firstN,
            rate: 0.5,
            between: { fromMs, toMs: fromMs + span },
            random: seededRandom(seed),
            clock,
          });
          const draws = seededRandom(seed);
          const m = { on: true, rate: 0.5, startedAt: 0, eligible: 0, injected: 0, calls: 0 };
          for (const o of ops) {
            if (o.op === 'tick') clock.tickSync(o.ms);
            else if (o.op === 'enable') {
              c.control.enable();
              m.on = true;
            } else if (o.op === 'disable') {
              c.control.disable();
              m.on = false;
            } else if (o.op === 'setRate') {
              c.control.setRate(o.rate);
              m.rate = o.rate;
            } else if (o.op === 'restart') {
              c.control.restart();
              m.startedAt = clock.now();
              m.eligible = 0;
            } else {
              m.calls++;
              let want = false;
              const t = clock.now() - m.startedAt;
              if (m.on && t >= fromMs && t < fromMs + span && m.eligible < firstN) {
                m.eligible++;
                want = m.rate >= 1 ? true : m.rate <= 0 ? false : draws() < m.rate;
              }
              if (want) m.injected++;
              expect(await outcomeOf(c.execute(() => 1))).toBe(want ? 'fail' : 'ok');
            }
          }
          expect(c.stats).toEqual({ calls: m.calls, injected: m.injected });
        },
      ),
      { numRuns: 200 },
    );
  });
});
