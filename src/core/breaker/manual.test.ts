import { describe, expect, it, vi } from 'vitest';
import {
  expectPassed,
  expectRejected,
  NotFound,
  outcome,
  setup,
} from '../../../test/support/breaker-harness.js';
import {
  backoff,
  type CircuitBreakerEvent,
  circuitBreaker,
  handle,
  type PolicyEvent,
  telemetry,
} from '../../index.js';
import { createFakeClock } from '../../testing/index.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('circuitBreaker: manual control', () => {
  it('isolate() is reference-counted', async () => {
    const { breaker, pass, changes, events } = setup();
    const a = breaker.isolate();
    const b = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    expectRejected(await pass(), 'isolated', Number.POSITIVE_INFINITY);
    a.release();
    expect(breaker.state).toBe('isolated');
    a.release(); // double release: a no-op, b still holds it
    expect(breaker.state).toBe('isolated');
    b.release();
    expect(breaker.state).toBe('closed');
    expectPassed(await pass());
    expect(changes()).toEqual(['closed->isolated', 'isolated->closed']);
    expect(events.find((e) => e.event === 'stateChange')).toMatchObject({ reason: 'isolated' });
  });

  it('an isolation handle releases with release(), dispose() or Symbol.dispose', () => {
    const { breaker } = setup();
    const a = breaker.isolate();
    const b = breaker.isolate();
    const c = breaker.isolate();
    a.dispose();
    b[Symbol.dispose]();
    expect(breaker.state).toBe('isolated');
    c.release();
    c.dispose();
    c[Symbol.dispose]();
    expect(breaker.state).toBe('closed');
  });

  it('a released handle cannot release a later isolation', () => {
    const { breaker } = setup();
    const a = breaker.isolate();
    a.release();
    breaker.isolate();
    a.release();
    expect(breaker.state).toBe('isolated');
  });

  it('isolating an open breaker, then releasing, leaves it open with the break over: the next call is a probe', async () => {
    const { breaker, fail, pass } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail();
    const h = breaker.isolate();
    expect(breaker.stats.retryAfterMs).toBe(0);
    h.release();
    expect(breaker.state).toBe('open');
    expect(breaker.stats.opened).toBe(1); // not counted as another open
    expectPassed(await pass());
    expect(breaker.state).toBe('closed');
  });

  it('isolating a disabled breaker, then releasing, leaves it disabled', () => {
    const { breaker } = setup();
    breaker.disable();
    breaker.isolate().release();
    expect(breaker.state).toBe('disabled');
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a handle predicate that throws neither breaks the call nor leaks a half-open probe slot', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        breaker: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs: 10,
        handle: handle.errors((e) => (e as { response: { status: number } }).response.status >= 500),
        clock,
      });
      const e500 = Object.assign(new Error('5xx'), { response: { status: 500 } });
      await breaker.execute(() => Promise.reject(e500)).catch(() => {});
      expect(breaker.state).toBe('open');
      await clock.tick(10);
      // the probe fails with an error the predicate cannot read: counted neither way, slot freed
      await expect(breaker.execute(() => Promise.reject(new Error('plain')))).rejects.toThrow('plain');
      expect(breaker.state).toBe('half-open');
      await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ name: 'BulwarkListenerError' }));
    } finally {
      warn.mockRestore();
    }
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a halfOpenAfterMs backoff that throws keeps the last break duration (and is reported)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        breaker: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs: backoff.delegate((n) => (n === 1 ? 100 : Number.NaN)),
        clock,
      });
      await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
      expect(breaker.stats.retryAfterMs).toBe(100);
      await clock.tick(100);
      await breaker.execute(() => Promise.reject(new Error('probe fails'))).catch(() => {});
      expect(breaker.state).toBe('open');
      expect(breaker.stats.retryAfterMs).toBe(100);
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('forceOpen() rejects everything until reset(); releasing isolations does not close it', async () => {
    const { breaker, clock, pass, changes } = setup({ halfOpenAfterMs: 10 });
    const h = breaker.isolate();
    breaker.forceOpen();
    breaker.forceOpen(); // idempotent
    h.release();
    await clock.tick(60_000);
    expect(breaker.state).toBe('forced-open');
    expectRejected(await pass(), 'forced-open', Number.POSITIVE_INFINITY);
    const h2 = breaker.isolate(); // does not downgrade a forced-open breaker
    expect(breaker.state).toBe('forced-open');
    h2.release();
    expect(breaker.state).toBe('forced-open');
    breaker.reset();
    expectPassed(await pass());
    expect(changes()).toEqual(['closed->isolated', 'isolated->forced-open', 'forced-open->closed']);
  });

  it('disable() lets everything through and counts nothing until reset()', async () => {
    const { breaker, fail, pass, events, changes } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
    });
    breaker.forceOpen();
    breaker.disable();
    breaker.disable(); // idempotent
    expect(breaker.state).toBe('disabled');
    const before = events.length;
    for (let i = 0; i < 5; i++) expect((await fail()).ok).toBe(false);
    expectPassed(await pass());
    expect(events.length).toBe(before); // no per-call events either
    expect(breaker.state).toBe('disabled');
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0, rejected: 0, opened: 0 });
    breaker.reset();
    await fail();
    expect(breaker.state).toBe('open');
    expect(changes()).toEqual([
      'closed->forced-open',
      'forced-open->disabled',
      'disabled->closed',
      'closed->open',
    ]);
  });

  it('reset() clears isolation, counts and the growing break', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'consecutive', threshold: 2 },
      halfOpenAfterMs: backoff.linear({ initialMs: 100, stepMs: 100 }),
    });
    await fail();
    await fail();
    await clock.tick(100);
    await fail(); // re-opens for 200 ms
    expect(breaker.stats.retryAfterMs).toBe(200);
    expect(breaker.toJSON().openCount).toBe(2);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.toJSON().openCount).toBe(0);
    expect(breaker.stats).toMatchObject({ calls: 0, failures: 0, retryAfterMs: 0 });
    await fail();
    await fail();
    expect(breaker.stats.retryAfterMs).toBe(100); // the backoff started over
    const h1 = breaker.isolate();
    const h2 = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const h3 = breaker.isolate();
    h1.release(); // stale handles do nothing
    h2.release();
    expect(breaker.state).toBe('isolated');
    h3.release();
    expectPassed(await pass());
  });
});

describe('circuitBreaker: events', () => {
  it('onStateChange, onOpen, onHalfOpen, onClose and onReject', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      clock,
      name: 'payments',
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
    });
    const seen: string[] = [];
    breaker.onStateChange((e) => seen.push(`change ${e.from}->${e.to}`));
    breaker.onOpen((e) => seen.push(`open ${e.reason} ${e.breakMs}`));
    breaker.onHalfOpen((e) => seen.push(`half-open ${e.reason ?? '-'} ${e.breakMs ?? '-'}`));
    breaker.onClose((e) => seen.push(`close ${e.from}`));
    breaker.onReject((e) => seen.push(`reject ${e.state} ${e.retryAfterMs} ${e.priority} ${e.name}`));
    await outcome(
      breaker.execute(() => {
        throw new Error('x');
      }),
    );
    await clock.tick(40);
    await outcome(breaker.execute(() => 1, { priority: 'low' }));
    await clock.tick(60);
    await breaker.execute(() => 1);
    expect(seen).toEqual([
      'change closed->open',
      'open 1 consecutive failures 100',
      'reject open 60 low payments',
      'change open->half-open',
      'half-open - -',
      'change half-open->closed',
      'close half-open',
    ]);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('stateChange events carry the priority and attempt of the call that caused them', async () => {
    const { fail, events } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
    await fail(new Error('x'), 'high');
    expect(events.find((e) => e.event === 'stateChange')).toEqual({
      kind: 'circuitBreaker',
      event: 'stateChange',
      name: 'circuitBreaker',
      priority: 'high',
      attempt: 1,
      from: 'closed',
      to: 'open',
      reason: '1 consecutive failures',
      breakMs: 30_000,
    });
  });

  it('manual state changes carry priority normal and attempt 0', () => {
    const { breaker, events } = setup();
    breaker.forceOpen();
    expect(events[0]).toEqual({
      kind: 'circuitBreaker',
      event: 'stateChange',
      name: 'circuitBreaker',
      priority: 'normal',
      attempt: 0,
      from: 'closed',
      to: 'forced-open',
      reason: 'forced open',
    });
  });

  it('onEvent: success, failure and excluded per call, with durationMs, slow and error', async () => {
    const { clock, slow, events } = setup({
      name: 'db',
      breaker: { kind: 'count', size: 10, failureRatio: 1, slowCallMs: 100 },
      exclude: handle.errors(NotFound),
    });
    const error = new Error('boom');
    const notFound = new NotFound();
    await slow(30);
    await slow(120, error);
    await slow(5, notFound);
    expect(clock.now()).toBe(155);
    expect(events).toEqual([
      {
        kind: 'circuitBreaker',
        event: 'success',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 30,
        slow: false,
      },
      {
        kind: 'circuitBreaker',
        event: 'failure',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 120,
        slow: true,
        error,
      },
      {
        kind: 'circuitBreaker',
        event: 'excluded',
        name: 'db',
        priority: 'normal',
        attempt: 1,
        durationMs: 5,
        slow: false,
        error: notFound,
      },
    ]);
  });

  it('a listener added while a call is in flight sees a sane duration', async () => {
    const clock = createFakeClock({ now: 5_000 });
    const breaker = circuitBreaker({ clock });
    const p = breaker.execute(() => new Promise((r) => clock.setTimeout(() => r('ok'), 20)));
    const events: CircuitBreakerEvent[] = [];
    breaker.onEvent((e) => events.push(e));
    await clock.tick(20);
    await p;
    const e = events[0] as { durationMs: number };
    expect(e.durationMs).toBeGreaterThanOrEqual(0);
    expect(e.durationMs).toBeLessThanOrEqual(20);
  });

  it('also publishes to the global telemetry bus', async () => {
    const received: PolicyEvent[] = [];
    const stop = telemetry.onEvent((e) => {
      if (e.kind === 'circuitBreaker' && e.name === 'bus-test') received.push(e);
    });
    try {
      const clock = createFakeClock();
      const breaker = circuitBreaker({
        clock,
        name: 'bus-test',
        breaker: { kind: 'consecutive', threshold: 1 },
      });
      await outcome(
        breaker.execute(() => {
          throw new Error('x');
        }),
      );
      await outcome(breaker.execute(() => 1));
      expect(received.map((e) => e.event)).toEqual(['failure', 'stateChange', 'reject']);
    } finally {
      stop();
    }
  });

  it('disposers stop delivery (call, dispose() or Symbol.dispose)', async () => {
    const { breaker, fail, clock } = setup({
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
    });
    const a = vi.fn();
    const b = vi.fn();
    const c = vi.fn();
    const d = vi.fn();
    const offA = breaker.onEvent(a);
    const offB = breaker.onStateChange(b);
    const offC = breaker.onReject(c);
    const offD = breaker.onOpen(d);
    offA();
    offB.dispose();
    offC[Symbol.dispose]();
    offD();
    offD(); // twice is harmless
    await fail();
    await fail();
    await clock.tick(10);
    await fail();
    for (const fn of [a, b, c, d]) expect(fn).not.toHaveBeenCalled();
  });

  it('a throwing listener does not break the breaker', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const { breaker, fail } = setup({ breaker: { kind: 'consecutive', threshold: 1 } });
      breaker.onStateChange(() => {
        throw new Error('listener bug');
      });
      const error = new Error('dependency');
      const o = await fail(error);
      expect((o as { error: unknown }).error).toBe(error);
      expect(breaker.state).toBe('open');
      expect(warn).toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});
