import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  type BulkheadEvent,
  bulkhead,
  type CircuitBreakerEvent,
  circuitBreaker,
  createRegistry,
  type Disposer,
  type FallbackEvent,
  fallback,
  type PolicyEvent,
  pipeline,
  type RetryEvent,
  retry,
  type TimeoutEvent,
  telemetry,
  timeout,
} from '../index.js';
import { Emitter, PolicyEmitter } from './events.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const sample: FallbackEvent = {
  kind: 'fallback',
  event: 'fallback',
  name: 'f',
  priority: 'normal',
  operation: undefined,
  attempt: 1,
  error: new Error('x'),
};

describe('PolicyEmitter', () => {
  it('is inactive with no listener, active with one, inactive again once it is disposed', () => {
    const e = new PolicyEmitter<FallbackEvent>();
    expect(e.active).toBe(false);
    const stop = e.on(() => {});
    expect(e.active).toBe(true);
    stop();
    expect(e.active).toBe(false);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('is active while the process-wide bus has a listener', () => {
    const e = new PolicyEmitter<FallbackEvent>();
    const stop = telemetry.onEvent(() => {});
    expect(e.active).toBe(true);
    stop();
    expect(e.active).toBe(false);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('delivers each event to its own listeners and to the bus', () => {
    const e = new PolicyEmitter<FallbackEvent>();
    const own: FallbackEvent[] = [];
    const bus: PolicyEvent[] = [];
    const a = e.on((x) => own.push(x));
    const b = telemetry.onEvent((x) => bus.push(x));
    e.emit(sample);
    a();
    b();
    e.emit(sample);
    expect(own).toEqual([sample]);
    expect(bus).toEqual([sample]);
  });
});

describe('Emitter', () => {
  it('calls listeners synchronously in registration order', () => {
    const e = new Emitter<number>();
    const log: string[] = [];
    e.on((n) => log.push(`a${n}`));
    e.on((n) => log.push(`b${n}`));
    e.emit(1);
    log.push('after');
    expect(log).toEqual(['a1', 'b1', 'after']);
    expect(e.size).toBe(2);
  });

  it('a disposer is idempotent: disposing twice removes only its own registration', () => {
    const e = new Emitter<number>();
    const calls: number[] = [];
    const listener = (n: number) => calls.push(n);
    const first = e.on(listener);
    e.on(listener); // the same function registered twice
    first();
    first();
    first.dispose();
    first[Symbol.dispose]();
    expect(e.size).toBe(1);
    e.emit(7);
    expect(calls).toEqual([7]);
  });

  it('a listener that disposes itself (or another) during an emit does not disturb that emit', () => {
    const e = new Emitter<number>();
    const log: string[] = [];
    let stopB: Disposer | undefined;
    const stopA = e.on(() => {
      log.push('a');
      stopA();
      stopB?.();
    });
    stopB = e.on(() => log.push('b'));
    e.emit(1);
    e.emit(2);
    expect(log).toEqual(['a', 'b']);
    expect(e.size).toBe(0);
  });

  it('a disposer is a function with dispose() and [Symbol.dispose]()', () => {
    const e = new Emitter<number>();
    const d = e.on(() => {});
    expect(typeof d).toBe('function');
    expect(d.dispose).toBe(d);
    expect(d[Symbol.dispose]).toBe(d);
    d.dispose();
    expect(e.size).toBe(0);
    const d2 = e.on(() => {});
    d2[Symbol.dispose]();
    expect(e.size).toBe(0);
  });

  it('a `using` declaration disposes the subscription at the end of its scope', () => {
    const e = new Emitter<number>();
    const seen: number[] = [];
    {
      using _sub = e.on((n) => seen.push(n));
      e.emit(1);
    }
    e.emit(2);
    expect(seen).toEqual([1]);
  });
});

describe('listener errors', () => {
  it('a throwing listener does not break the policy, the other listeners still run, and it is reported as a warning', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const f = fallback('fb');
    const boom = new Error('listener bug');
    const after: FallbackEvent[] = [];
    f.onEvent(() => {
      throw boom;
    });
    f.onEvent((e) => after.push(e));
    await expect(f.execute(() => Promise.reject(new Error('x')))).resolves.toBe('fb');
    expect(after).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({
        name: 'BulwarkListenerError',
        cause: boom,
        message: expect.stringContaining(boom.message),
      }),
    );
  });

  it('a thrown non-Error is reported as an Error', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const t = timeout(1);
    const stop = telemetry.onEvent(() => {
      throw 'a string';
    });
    try {
      const e = new PolicyEmitter<TimeoutEvent>();
      e.emit({
        kind: 'timeout',
        event: 'timeout',
        name: t.name,
        priority: 'normal',
        operation: undefined,
        attempt: 1,
        timeoutMs: 1,
        strategy: 'cooperative',
      });
    } finally {
      stop();
    }
    expect(warn).toHaveBeenCalledTimes(1);
    const [reported] = warn.mock.calls[0]!;
    expect(reported).toBeInstanceOf(Error);
    expect((reported as Error).name).toBe('BulwarkListenerError');
    expect((reported as Error).message).toBe('A Bulwark event listener threw: a string');
    expect((reported as Error).cause).toBe('a string');
  });

  it('a throwing bus listener does not break a pipeline of policies either', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const stop = telemetry.onEvent(() => {
      throw new Error('metrics exporter down');
    });
    try {
      const r = retry({ maxAttempts: 3, backoff: { start: () => ({ next: () => 0 }) } });
      let n = 0;
      await expect(r.execute(() => (++n < 3 ? Promise.reject(new Error('flaky')) : 'ok'))).resolves.toBe(
        'ok',
      );
      expect(n).toBe(3);
    } finally {
      stop();
    }
    expect(warn).toHaveBeenCalled();
  });
});

describe('typed events', () => {
  it("each policy's onEvent listener receives that policy's event type", () => {
    retry().onEvent((e) => expectTypeOf(e).toEqualTypeOf<RetryEvent>());
    timeout(1).onEvent((e) => expectTypeOf(e).toEqualTypeOf<TimeoutEvent>());
    bulkhead(1).onEvent((e) => expectTypeOf(e).toEqualTypeOf<BulkheadEvent>());
    circuitBreaker().onEvent((e) => expectTypeOf(e).toEqualTypeOf<CircuitBreakerEvent>());
    fallback(1).onEvent((e) => expectTypeOf(e).toEqualTypeOf<FallbackEvent>());
    telemetry.onEvent((e) => expectTypeOf(e).toEqualTypeOf<PolicyEvent>());
  });

  it('events narrow on policy and event', () => {
    const handler = (e: PolicyEvent) => {
      if (e.kind === 'timeout') expectTypeOf(e.timeoutMs).toEqualTypeOf<number>();
      if (e.kind === 'bulkhead' && e.event === 'reject') {
        expectTypeOf(e.reason).toEqualTypeOf<'full' | 'queueTimeout'>();
      }
      if (e.kind === 'retry' && e.event === 'retry') expectTypeOf(e.delayMs).toEqualTypeOf<number>();
    };
    expect(typeof handler).toBe('function');
  });

  it('telemetry.onEvent receives events of every policy, until disposed', async () => {
    const seen: string[] = [];
    const stop = telemetry.onEvent((e) => seen.push(`${e.kind}:${e.event}:${e.name}`));
    await fallback(0, { name: 'fb' }).execute(() => Promise.reject(new Error('x')));
    const b = bulkhead({ limit: 1, name: 'bh' });
    let release!: () => void;
    const busy = b.execute(() => new Promise<void>((r) => (release = r)));
    await b.execute(() => 1).catch(() => {});
    release();
    await busy;
    stop();
    await fallback(0, { name: 'fb' }).execute(() => Promise.reject(new Error('x')));
    expect(seen).toEqual(['fallback:fallback:fb', 'bulkhead:reject:bh']);
  });

  it("a 'notable' subscription gets no per-call events and does not make policies build them", async () => {
    const breaker = circuitBreaker({ name: 'cb' });
    const p = pipeline({ name: 'p' }, breaker);
    const seen: string[] = [];
    const stop = p.onEvent((e) => seen.push(`${e.kind}:${e.event}`), 'notable');
    expect(new Emitter().wants('success')).toBe(false);
    const e = new Emitter<{ event: string }>();
    e.on(() => {}, 'notable');
    expect([e.wants('success'), e.wants('execution'), e.wants('stateChange')]).toEqual([false, false, true]);
    await p.execute(() => 1);
    breaker.isolate();
    await p.execute(() => 1).catch(() => {});
    stop();
    expect(seen).toEqual(['circuitBreaker:stateChange', 'circuitBreaker:reject']);
    const registry = createRegistry();
    registry.register(p);
    const forwarded: string[] = [];
    registry.onEvent((ev) => forwarded.push(ev.event));
    breaker.reset();
    await p.execute(() => 1);
    expect(forwarded).toEqual(['stateChange']);
  });
});
