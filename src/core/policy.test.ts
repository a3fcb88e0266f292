import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type AltOf,
  BulkheadRejectedError,
  backoff,
  bulkhead,
  circuitBreaker,
  type EventOf,
  type FallbackEvent,
  fallback,
  type PipelineEvent,
  type Policy,
  type PolicyEvent,
  pipeline,
  type RetryEvent,
  retry,
  type TimeoutEvent,
  timeout,
} from '../index.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';

/** The flattened member list of a pipeline (an internal but stable field). */
function members(p: Policy<unknown>): readonly { name: string }[] {
  return (p as unknown as { policies: readonly { name: string }[] }).policies;
}

describe('pipeline: composition', () => {
  it('applies policies outermost first: a fallback outside a full bulkhead answers, inside it is never reached', async () => {
    const b = bulkhead(1);
    let release!: () => void;
    const busy = b.execute(() => new Promise<void>((r) => (release = r)));
    await expect(pipeline(fallback('fb'), b).execute(() => 'x')).resolves.toBe('fb');
    await expect(pipeline(b, fallback('fb')).execute(() => 'x')).rejects.toBeInstanceOf(
      BulkheadRejectedError,
    );
    release();
    await busy;
  });

  it('a timeout inside a retry gives each attempt its own signal; outside, one signal spans the attempts', async () => {
    const clock = createFakeClock();
    const run = async (policy: Policy) => {
      const signals: AbortSignal[] = [];
      await policy.execute((ctx) => {
        signals.push(ctx.signal);
        if (ctx.attempt < 3) throw new Error('again');
        return 'ok';
      });
      return signals;
    };
    const r = () => retry({ maxAttempts: 3, backoff: backoff.constant(0), clock });
    const inside = await run(pipeline(r(), timeout({ timeoutMs: 100, clock })));
    expect(new Set(inside).size).toBe(3);
    const outside = await run(pipeline(timeout({ timeoutMs: 100, clock }), r()));
    expect(new Set(outside).size).toBe(1);
  });

  it('the order shows in the events: outer policies see the outcome of the inner ones', async () => {
    const clock = createFakeClock();
    const log: string[] = [];
    const r = retry({ maxAttempts: 2, backoff: backoff.constant(0), clock, name: 'r' });
    const f = fallback('fb', { name: 'f' });
    const t = timeout({ timeoutMs: 10, clock, name: 't' });
    const policy = pipeline(f, r, t);
    policy.onEvent((e) => log.push(`${e.name}:${e.event}@${e.attempt}`));
    const p = policy.execute(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    await clock.tick(10);
    await clock.tick(10);
    await expect(p).resolves.toBe('fb');
    expect(log).toEqual([
      't:timeout@1',
      'r:retry@1',
      't:timeout@2',
      'r:giveUp@2',
      'f:fallback@2',
      'f > r > t:execution@2',
    ]);
  });

  it('flattens nested pipelines', () => {
    const a = retry({ name: 'a' });
    const b = timeout({ timeoutMs: 1, name: 'b' });
    const c = bulkhead({ limit: 1, name: 'c' });
    const d = fallback(0, { name: 'd' });
    const p = pipeline(a, pipeline(b, pipeline(c)), d);
    expect(members(p).map((m) => m.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(p.name).toBe('a > b > c > d');
    expect(p.kind).toBe('pipeline');
  });

  it('a pipeline is a policy: it has kind, name, execute and onEvent, and nests in another pipeline', async () => {
    const inner: Policy<0> = pipeline(fallback(0 as const), retry());
    expect(typeof inner.execute).toBe('function');
    expect(typeof inner.onEvent).toBe('function');
    const outer = pipeline(timeout(1_000), inner);
    await expect(outer.execute(() => Promise.reject(new Error('x')))).resolves.toBe(0);
  });

  it('an empty pipeline just calls the function', async () => {
    const p = pipeline();
    expect(p.name).toBe('noop');
    expect(members(p)).toEqual([]);
    await expect(p.execute(() => 1)).resolves.toBe(1);
    await expect(p.execute(async () => 2)).resolves.toBe(2);
    await expect(p.execute(() => Promise.reject(new Error('e')))).rejects.toThrow('e');
    await expect(
      p.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    const stop = p.onEvent(() => {});
    stop();
    const seen = await p.execute((ctx) => [ctx.priority, ctx.name, ctx.props], {
      priority: 'low',
      name: 'n',
      props: { a: 1 },
    });
    expect(seen).toEqual(['low', 'n', { a: 1 }]);
  });

  it('adopts a foreign thenable returned by the function', async () => {
    const thenable: PromiseLike<number> = {
      // biome-ignore lint/suspicious/noThenProperty: the point of the test is a hand-made thenable
      then: ((resolve: (v: number) => void) => resolve(5)) as PromiseLike<number>['then'],
    };
    await expect(pipeline(retry(), timeout(1_000)).execute(() => thenable)).resolves.toBe(5);
    await expect(pipeline().execute(() => thenable)).resolves.toBe(5);
  });

  it('refuses anything that is not a Bulwark policy', () => {
    const fake = { kind: 'x', name: 'x', execute: async () => 1, onEvent: () => () => {} };
    expect(() => pipeline(fake as never)).toThrow(TypeError);
    expect(() => pipeline(fake as never)).toThrow(/pipeline\(\) accepts only Bulwark policies/);
    expect(() => pipeline(null as never)).toThrow(TypeError);
    expect(() => pipeline(retry(), undefined as never)).toThrow(TypeError);
  });

  it('the same policy may appear in several pipelines (state is shared: one bulkhead, one limit)', async () => {
    const b = bulkhead(1);
    const p1 = pipeline(retry({ maxAttempts: 1 }), b);
    const p2 = pipeline(timeout(1_000), b);
    let release!: () => void;
    const busy = p1.execute(() => new Promise<void>((r) => (release = r)));
    await expect(p2.execute(() => 1)).rejects.toBeInstanceOf(BulkheadRejectedError);
    release();
    await busy;
  });

  it('priority, name and props reach the function through every layer', async () => {
    const clock = createFakeClock();
    const p = pipeline(
      fallback(null),
      timeout({ timeoutMs: 1_000, clock }),
      retry({ clock }),
      circuitBreaker({ clock }),
      timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
      bulkhead(2),
    );
    const seen = await p.execute(
      (ctx) => {
        expectTypeOf(ctx.props).toEqualTypeOf<{ userId: string }>();
        return [ctx.priority, ctx.name, ctx.props.userId, ctx.attempt];
      },
      { priority: 'critical', name: 'get-user', props: { userId: 'u1' } },
    );
    expect(seen).toEqual(['critical', 'get-user', 'u1', 1]);
  });
});

describe('pipeline: events', () => {
  it('onEvent aggregates the events of every member; its disposer removes them all (idempotent)', async () => {
    const clock = createFakeClock();
    const r = retry({ maxAttempts: 2, backoff: backoff.constant(0), clock });
    const t = timeout({ timeoutMs: 10, clock });
    const f = fallback('fb');
    const p = pipeline(f, pipeline(r, t));
    const seen: PolicyEvent[] = [];
    const stop = p.onEvent((e) => seen.push(e));
    let n = 0;
    const out = p.execute(() => (++n === 1 ? Promise.reject(new Error('once')) : new Promise(() => {})));
    await flushMicrotasks();
    await clock.tick(10);
    void out;
    expect(seen.map((e) => `${e.kind}:${e.event}`)).toEqual(['retry:retry', 'timeout:timeout']);
    stop();
    stop();
    stop.dispose();
    const before = seen.length;
    await p.execute(() => Promise.reject(new Error('x')));
    expect(seen).toHaveLength(before);
  });

  it('its disposer also works through Symbol.dispose', async () => {
    const f = fallback(1);
    const p = pipeline(f);
    const seen: unknown[] = [];
    const d = p.onEvent((e) => seen.push(e));
    d[Symbol.dispose]();
    await p.execute(() => Promise.reject(new Error('x')));
    expect(seen).toEqual([]);
  });

  it('disposing one pipeline subscription leaves the others (and the members own listeners) alone', async () => {
    const f = fallback(1);
    const p = pipeline(f);
    const a: unknown[] = [];
    const b: unknown[] = [];
    const own: unknown[] = [];
    const da = p.onEvent((e) => a.push(e));
    p.onEvent((e) => b.push(e));
    f.onEvent((e) => own.push(e));
    da();
    await p.execute(() => Promise.reject(new Error('x')));
    // b: the fallback's event and the pipeline's own execution event
    expect([a.length, b.length, own.length]).toEqual([0, 2, 1]);
  });
});

describe('pipeline: types', () => {
  it('execute returns the union of the function result and every member alternative', async () => {
    const plain = pipeline(retry(), timeout(1_000), bulkhead(1));
    expectTypeOf(await plain.execute(() => 1)).toEqualTypeOf<number>();
    expectTypeOf(await plain.execute(async () => 'x')).toEqualTypeOf<string>();

    const withFallback = pipeline(fallback(null), retry());
    expectTypeOf(await withFallback.execute(() => 1)).toEqualTypeOf<number | null>();

    const nested = pipeline(pipeline(fallback('a' as const)), fallback(0));
    expectTypeOf(await nested.execute(() => true)).toEqualTypeOf<boolean | 'a' | 0>();

    expectTypeOf<AltOf<[typeof withFallback, ReturnType<typeof timeout>]>>().toEqualTypeOf<null>();
    expectTypeOf<AltOf<[Policy<string>, Policy<never>]>>().toEqualTypeOf<string>();
    expectTypeOf(await pipeline().execute(() => 1)).toEqualTypeOf<number>();
  });

  it("onEvent receives the union of the member event types and the pipeline's own", () => {
    const p = pipeline(timeout(1), fallback(1), retry());
    p.onEvent((e) => {
      expectTypeOf(e).toEqualTypeOf<TimeoutEvent | FallbackEvent | RetryEvent | PipelineEvent>();
    });
    expectTypeOf<EventOf<[ReturnType<typeof timeout>]>>().toEqualTypeOf<TimeoutEvent>();
  });

  it('a pipeline is assignable to Policy', () => {
    expectTypeOf(pipeline(retry(), timeout(1))).toMatchTypeOf<Policy>();
    expectTypeOf(pipeline(fallback(1))).toMatchTypeOf<Policy<number>>();
  });
});

describe('pipeline: policies switched off leave the chain', () => {
  it('a chaos policy or load shedder switched off is skipped entirely, and rejoins when switched on', async () => {
    const { chaos, loadShedder } = await import('../index.js');
    const fault = chaos.fault({ error: new Error('injected'), enabled: false });
    const shedder = loadShedder({ capacity: 100, enabled: false });
    const p = pipeline(fault, shedder, timeout(1_000));
    const chainLength = () => {
      let n = 0;
      for (let l = (p as unknown as { head: { next: unknown } | null }).head; l !== null; l = l.next as never)
        n++;
      return n;
    };
    expect(chainLength()).toBe(1);
    await expect(p.execute(() => 'ok')).resolves.toBe('ok');
    expect(fault.stats.calls).toBe(0); // not even seen
    fault.control.enable();
    expect(chainLength()).toBe(2);
    await expect(p.execute(() => 'ok')).rejects.toThrow('injected');
    fault.control.disable();
    shedder.setEnabled(true);
    expect(chainLength()).toBe(2);
    await expect(p.execute(() => 'ok')).resolves.toBe('ok');
  });
});
