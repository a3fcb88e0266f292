import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  backoff,
  bulkhead,
  type Context,
  circuitBreaker,
  fallback,
  type Priority,
  pipeline,
  retry,
  TimeoutError,
  timeout,
} from '../index.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';
import { ExecutionContext } from './context.js';

/** Counts `new AbortController()` while installed (a subclass stands in for the global). */
function countAbortControllers(): { readonly count: number } {
  const counter = { count: 0 };
  const Original = globalThis.AbortController;
  class Counting extends Original {
    constructor() {
      super();
      counter.count++;
    }
  }
  vi.stubGlobal('AbortController', Counting);
  return counter;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

function untilAborted(ctx: Context): Promise<never> {
  const signal = ctx.signal;
  return new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

describe('context: what the function sees', () => {
  it('defaults: attempt 1, priority normal, no name, an empty props bag', async () => {
    let seen: Context | undefined;
    await retry().execute((ctx) => {
      seen = ctx;
    });
    expect(seen?.attempt).toBe(1);
    expect(seen?.priority).toBe('normal');
    expect(seen?.name).toBeUndefined();
    expect(seen?.props).toEqual({});
  });

  it('attempt, priority, name and props reach the function through every policy', async () => {
    const clock = createFakeClock();
    const policy = pipeline(
      fallback('fallback'),
      timeout({ timeoutMs: 10_000, clock }),
      retry({ maxAttempts: 3, backoff: backoff.constant(0), clock }),
      circuitBreaker({ clock }),
      timeout({ timeoutMs: 1_000, strategy: 'abandon', clock }),
      bulkhead({ limit: 1, clock }),
    );
    const seen: { attempt: number; priority: Priority; name: string | undefined; id: number }[] = [];
    const result = await policy.execute(
      (ctx) => {
        seen.push({ attempt: ctx.attempt, priority: ctx.priority, name: ctx.name, id: ctx.props.id });
        if (ctx.attempt < 3) throw new Error('again');
        return ctx.props.id * 2;
      },
      { priority: 'critical', name: 'load-user', props: { id: 21 } },
    );
    expect(result).toBe(42);
    expect(seen).toEqual([
      { attempt: 1, priority: 'critical', name: 'load-user', id: 21 },
      { attempt: 2, priority: 'critical', name: 'load-user', id: 21 },
      { attempt: 3, priority: 'critical', name: 'load-user', id: 21 },
    ]);
  });

  it('the props bag is typed from the execute options, and is the very object given', async () => {
    const props = { id: 7, tenant: 'acme' };
    const r = await timeout(1_000).execute(
      (ctx) => {
        expectTypeOf(ctx.props).toEqualTypeOf<{ id: number; tenant: string }>();
        expectTypeOf(ctx.attempt).toEqualTypeOf<number>();
        expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(ctx.name).toEqualTypeOf<string | undefined>();
        expect(ctx.props).toBe(props);
        return `${ctx.props.tenant}:${ctx.props.id}`;
      },
      { props },
    );
    expectTypeOf(r).toEqualTypeOf<string>();
    expect(r).toBe('acme:7');
  });

  it('priority accepts any string besides the built-in tiers', async () => {
    const p = await retry().execute((ctx) => ctx.priority, { priority: 'batch' });
    expect(p).toBe('batch');
    expectTypeOf<'critical'>().toMatchTypeOf<Priority>();
    expectTypeOf<'anything'>().toMatchTypeOf<Priority>();
  });

  it('options given as undefined are the defaults', async () => {
    const seen = await retry().execute((ctx) => [ctx.priority, ctx.name, ctx.props], {
      priority: undefined,
      name: undefined,
      props: undefined,
      signal: undefined,
    });
    expect(seen).toEqual(['normal', undefined, {}]);
  });
});

describe('context: signal', () => {
  it('is the caller signal itself when no timeout encloses the function', async () => {
    const caller = new AbortController();
    const policy = pipeline(retry(), circuitBreaker(), bulkhead(2), fallback(0));
    const seen = await policy.execute((ctx) => ctx.signal, { signal: caller.signal });
    expect(seen).toBe(caller.signal);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('is a never-aborted signal of its own when there is no caller signal and no timeout', async () => {
    const seen = await retry().execute((ctx) => ctx.signal);
    expect(seen).toBeInstanceOf(AbortSignal);
    expect(seen.aborted).toBe(false);
  });

  it('is the same object on every read within a call', async () => {
    const clock = createFakeClock();
    const twice = (ctx: Context) => [ctx.signal, ctx.signal] as const;
    const [a, b] = await timeout({ timeoutMs: 100, clock }).execute(twice);
    expect(a).toBe(b);
    const [c, d] = await retry().execute(twice);
    expect(c).toBe(d);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it("the caller's abort propagates to a timeout's child signal", async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    let child: AbortSignal | undefined;
    const p = timeout({ timeoutMs: 1_000, clock }).execute(
      (ctx) => {
        child = ctx.signal;
        return untilAborted(ctx);
      },
      { signal: caller.signal },
    );
    await flushMicrotasks();
    expect(child).not.toBe(caller.signal);
    expect(child?.aborted).toBe(false);
    const reason = new Error('stop');
    caller.abort(reason);
    expect(child?.aborted).toBe(true);
    expect(child?.reason).toBe(reason);
    await expect(p).rejects.toBe(reason);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('the caller abort reaches a signal first read after the abort', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const p = timeout({ timeoutMs: 1_000, clock }).execute(
      async (ctx) => {
        await flushMicrotasks();
        caller.abort('late read');
        return ctx.signal;
      },
      { signal: caller.signal },
    );
    const signal = await p;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('late read');
  });

  it("an outer timeout's expiry aborts an inner timeout's signal with the outer TimeoutError", async () => {
    const clock = createFakeClock();
    let inner: AbortSignal | undefined;
    const p = pipeline(timeout({ timeoutMs: 100, clock }), timeout({ timeoutMs: 1_000, clock })).execute(
      (ctx) => {
        inner = ctx.signal;
        return untilAborted(ctx);
      },
    );
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    expect(inner?.aborted).toBe(true);
    expect((inner!.reason as TimeoutError).timeoutMs).toBe(100);
    expect(await outcome).toBe(inner?.reason);
  });

  it("an outer timeout's expiry reaches an inner signal that is first read after it", async () => {
    const clock = createFakeClock();
    let read: (() => AbortSignal) | undefined;
    let finish!: (value: string) => void;
    // The function settles only when the test says so (a real timer here raced the fake clock's tick).
    const p = pipeline(timeout({ timeoutMs: 100, clock }), timeout({ timeoutMs: 1_000, clock })).execute(
      (ctx) =>
        new Promise<string>((resolve) => {
          read = () => ctx.signal;
          finish = resolve;
        }),
    );
    await clock.tick(100);
    const signal = read!();
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
    finish('done');
    await expect(p).resolves.toBe('done');
  });

  it('an already aborted caller signal: every policy rejects with its reason without calling the function', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    caller.abort('before');
    let calls = 0;
    const fn = () => ++calls;
    const policies = [
      retry(),
      timeout({ timeoutMs: 100, clock }),
      timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
      timeout({ timeoutMs: Number.POSITIVE_INFINITY, clock }),
      bulkhead(1),
      circuitBreaker(),
      fallback('fb'),
      pipeline(timeout({ timeoutMs: 100, clock }), retry(), timeout({ timeoutMs: 50, clock }), bulkhead(1)),
    ];
    for (const p of policies) await expect(p.execute(fn, { signal: caller.signal })).rejects.toBe('before');
    expect(calls).toBe(0);
    expect(clock.pending).toBe(0);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('without a policy that checks it, an already aborted caller signal is what the function sees', async () => {
    const caller = new AbortController();
    caller.abort('before');
    const seen = await pipeline().execute((ctx) => [ctx.signal.aborted, ctx.signal.reason], {
      signal: caller.signal,
    });
    expect(seen).toEqual([true, 'before']);
  });

  it('a caller abort during the call is seen by a signal read afterwards, through nested timeouts', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const p = pipeline(timeout({ timeoutMs: 100, clock }), timeout({ timeoutMs: 50, clock })).execute(
      async (ctx) => {
        await flushMicrotasks();
        caller.abort('during');
        return [ctx.signal.aborted, ctx.signal.reason];
      },
      { signal: caller.signal },
    );
    expect(await p).toEqual([true, 'during']);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('context: lazy AbortController', () => {
  it('creates no AbortController when nobody reads ctx.signal, through every policy', async () => {
    const clock = createFakeClock();
    const policy = pipeline(
      fallback(0),
      timeout({ timeoutMs: 10_000, clock }),
      retry({ maxAttempts: 3, backoff: backoff.constant(0), clock }),
      circuitBreaker({ clock }),
      timeout({ timeoutMs: 2_000, strategy: 'abandon', clock }),
      bulkhead({ limit: 10, queue: 10, clock }),
    );
    const counter = countAbortControllers();
    let n = 0;
    for (let i = 0; i < 100; i++) {
      await policy.execute((ctx) => {
        n++;
        if (ctx.attempt === 1 && i % 10 === 0) throw new Error('retry me');
        return ctx.attempt + ctx.priority.length;
      });
    }
    expect(n).toBe(110);
    expect(counter.count).toBe(0);
  });

  it('creates none for a caller signal either: ctx.signal is then the caller signal', async () => {
    const caller = new AbortController();
    const counter = countAbortControllers();
    const policy = pipeline(retry(), bulkhead(1));
    const seen = await policy.execute((ctx) => ctx.signal, { signal: caller.signal });
    expect(seen).toBe(caller.signal);
    expect(counter.count).toBe(0);
  });

  it('reading ctx.signal creates one controller, on the first read, whatever the number of enclosing timeouts', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    const counter = countAbortControllers();
    await timeout({ timeoutMs: 100, clock }).execute((ctx) => [ctx.signal, ctx.signal, ctx.signal]);
    expect(counter.count).toBe(1);
    const nested = pipeline(
      timeout({ timeoutMs: 100, clock }),
      timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
      timeout({ timeoutMs: 50, clock }),
    );
    const p = nested.execute(untilAborted, { signal: caller.signal });
    await flushMicrotasks();
    expect(counter.count).toBe(2);
    caller.abort('stop');
    await expect(p).rejects.toBe('stop');
    expect(counter.count).toBe(2);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('an abandon timeout inside another timeout creates no controller (it watches its parent without one)', async () => {
    const clock = createFakeClock();
    const counter = countAbortControllers();
    const policy = pipeline(
      timeout({ timeoutMs: 1_000, clock }),
      timeout({ timeoutMs: 100, strategy: 'abandon', clock }),
    );
    for (let i = 0; i < 10; i++) await policy.execute(() => i);
    expect(counter.count).toBe(0);
    // and the outer deadline still abandons the inner call at once
    const p = policy.execute(() => new Promise(() => {}));
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    expect(((await outcome) as TimeoutError).timeoutMs).toBe(100);
    expect(counter.count).toBe(0);
  });

  it("an outer timeout's expiry abandons an inner abandon timeout at once", async () => {
    const clock = createFakeClock();
    const policy = pipeline(
      timeout({ timeoutMs: 50, clock }),
      timeout({ timeoutMs: 1_000, strategy: 'abandon', clock }),
    );
    const p = policy.execute(() => new Promise(() => {}));
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(50);
    const error = (await outcome) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.timeoutMs).toBe(50);
  });

  it('a signal first read after the call finished links nothing to the caller signal', async () => {
    const clock = createFakeClock();
    const caller = new AbortController();
    let late: Context | undefined;
    await timeout({ timeoutMs: 100, clock }).execute(
      (ctx) => {
        late = ctx;
        return 1;
      },
      { signal: caller.signal },
    );
    expect(late?.signal.aborted).toBe(false);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('a timeout that expires on a function that never read its signal creates no controller', async () => {
    const clock = createFakeClock();
    const counter = countAbortControllers();
    const p = timeout({ timeoutMs: 100, clock }).execute(() => new Promise((r) => setTimeout(r, 0)));
    await clock.tick(100);
    await p;
    expect(counter.count).toBe(0);
  });

  it('the root context makes its own controller only when read without a caller signal', () => {
    const counter = countAbortControllers();
    const ctx = ExecutionContext.root(() => 1, undefined);
    expect(counter.count).toBe(0);
    const s = ctx.signal;
    expect(counter.count).toBe(1);
    expect(ctx.signal).toBe(s);
    expect(counter.count).toBe(1);
  });
});
