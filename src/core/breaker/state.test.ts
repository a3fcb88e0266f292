import { describe, expect, it } from 'vitest';
import {
  configError,
  expectPassed,
  expectRejected,
  NotFound,
  setup,
} from '../../../test/support/breaker-harness.js';
import {
  backoff,
  CIRCUIT_BREAKER_DESCRIPTOR,
  circuitBreaker,
  createRegistry,
  type SavedCircuitState,
} from '../../index.js';
import { createFakeClock } from '../../testing/index.js';

describe('circuitBreaker: stats', () => {
  it('reports state, window figures and counters', async () => {
    const { breaker, clock, fail, pass } = setup({
      breaker: { kind: 'count', size: 4, minSamples: 3, failureRatio: 0.6 },
      halfOpenAfterMs: 1_000,
      bypass: ['critical'],
    });
    expect(breaker.stats).toEqual({
      state: 'closed',
      calls: 0,
      failures: 0,
      slow: 0,
      rejected: 0,
      bypassed: 0,
      opened: 0,
      retryAfterMs: 0,
    });
    await pass();
    await fail();
    await fail();
    await clock.tick(300);
    await pass();
    await pass('critical');
    await pass('critical');
    expect(breaker.stats).toEqual({
      state: 'open',
      calls: 3,
      failures: 2,
      slow: 0,
      rejected: 1,
      bypassed: 2,
      opened: 1,
      retryAfterMs: 700,
    });
    await clock.tick(700);
    await fail(); // failed probe
    expect(breaker.stats).toMatchObject({ state: 'open', opened: 2, retryAfterMs: 1_000 });
    await clock.tick(1_000);
    await pass();
    expect(breaker.stats).toEqual({
      state: 'closed',
      calls: 0,
      failures: 0,
      slow: 0,
      rejected: 1,
      bypassed: 2,
      opened: 2,
      retryAfterMs: 0,
    });
  });

  it('time-window figures age with the clock', async () => {
    const { breaker, clock, fail } = setup({
      breaker: { kind: 'time', windowMs: 100, buckets: 2, minSamples: 10 },
    });
    await fail();
    expect(breaker.stats.failures).toBe(1);
    await clock.tick(100);
    expect(breaker.stats.failures).toBe(0);
  });
});

describe('circuitBreaker: save and restore', () => {
  function roundTrip(saved: SavedCircuitState): SavedCircuitState {
    return JSON.parse(JSON.stringify(saved)) as SavedCircuitState;
  }

  it('toJSON() describes the state', async () => {
    const clock = createFakeClock({ now: 500, date: Date.UTC(2026, 5, 1) });
    const { breaker, fail } = setup(
      { breaker: { kind: 'consecutive', threshold: 2 }, halfOpenAfterMs: 1_000 },
      clock,
    );
    await fail();
    await fail();
    await clock.tick(300);
    expect(breaker.toJSON()).toEqual({
      v: 1,
      state: 'open',
      savedAt: Date.UTC(2026, 5, 1) + 300,
      openRemainingMs: 700,
      openCount: 1,
      window: { streak: 2 },
    });
    expect(JSON.parse(JSON.stringify(breaker))).toEqual(breaker.toJSON());
  });

  it('an open breaker restores open with the break time left, less the time spent saved', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfterMs: 10_000 });
    await a.fail();
    await a.clock.tick(1_000);
    const saved = roundTrip(a.breaker.toJSON());
    expect(saved.openRemainingMs).toBe(9_000);
    // A new process: another monotonic origin, and 3 s of wall-clock time later.
    const clock = createFakeClock({ now: 77, date: a.clock.date() + 3_000 });
    const b = setup(
      { breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfterMs: 10_000, initialState: saved },
      clock,
    );
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(6_000);
    expectRejected(await b.pass(), 'open', 6_000);
    await clock.tick(6_000);
    expectPassed(await b.pass());
    expect(b.breaker.state).toBe('closed');
  });

  it('an open breaker whose break passed while saved admits a probe at once', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfterMs: 1_000 });
    await a.fail();
    const clock = createFakeClock({ date: a.clock.date() + 60_000 });
    const b = setup(
      { breaker: { kind: 'consecutive', threshold: 1 }, initialState: roundTrip(a.breaker.toJSON()) },
      clock,
    );
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(0);
    await b.fail();
    expect(b.changes()).toEqual(['open->half-open', 'half-open->open']);
  });

  it('a half-open breaker restores as open and due', async () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfterMs: 100 });
    await a.fail();
    await a.clock.tick(100);
    const probe = a.start(10);
    expect(a.breaker.state).toBe('half-open');
    const saved = roundTrip(a.breaker.toJSON());
    const b = setup({ initialState: saved }, createFakeClock({ date: a.clock.date() }));
    expect(b.breaker.state).toBe('open');
    expect(b.breaker.stats.retryAfterMs).toBe(0);
    expectPassed(await b.pass());
    expect(b.breaker.state).toBe('closed');
    await a.clock.tick(10);
    await probe;
  });

  it('an isolated breaker restores as forced open (handles do not survive); reset() releases it', async () => {
    const a = setup();
    a.breaker.isolate();
    const b = setup({ initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.state).toBe('forced-open');
    expectRejected(await b.pass(), 'forced-open');
    b.breaker.reset();
    expectPassed(await b.pass());
  });

  it('forced-open, disabled and closed restore as such', () => {
    for (const state of ['forced-open', 'disabled', 'closed'] as const) {
      const a = setup();
      if (state === 'forced-open') a.breaker.forceOpen();
      if (state === 'disabled') a.breaker.disable();
      expect(setup({ initialState: roundTrip(a.breaker.toJSON()) }).breaker.state).toBe(state);
    }
  });

  it('a consecutive streak survives', async () => {
    const opts = { breaker: { kind: 'consecutive', threshold: 3 } } as const;
    const a = setup(opts);
    await a.fail();
    await a.fail();
    const b = setup({ ...opts, initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.stats).toMatchObject({ calls: 2, failures: 2 });
    await b.fail();
    expect(b.breaker.state).toBe('open');
  });

  it('count-window counts survive', async () => {
    const opts = {
      breaker: {
        kind: 'count',
        size: 5,
        minSamples: 5,
        failureRatio: 0.6,
        slowCallMs: 50,
      },
    } as const;
    const a = setup(opts);
    await a.fail();
    await a.slow(60);
    await a.pass();
    await a.fail();
    const b = setup({ ...opts, initialState: roundTrip(a.breaker.toJSON()) });
    expect(b.breaker.stats).toMatchObject({ calls: 4, failures: 2, slow: 1 });
    await b.fail();
    expect(b.breaker.state).toBe('open');
  });

  it('time-window counts survive and keep ageing by the time spent saved', async () => {
    const opts = {
      breaker: { kind: 'time', windowMs: 1_000, buckets: 4, minSamples: 3, failureRatio: 0.5 },
    } as const;
    const a = setup(opts);
    await a.fail(); // t=0 (bucket 0)
    await a.clock.tick(500);
    await a.fail(); // t=500 (bucket 2)
    await a.clock.tick(250);
    const saved = roundTrip(a.breaker.toJSON()); // at t=750
    // Restored at once: both failures count.
    const now = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() }));
    expect(now.breaker.stats).toMatchObject({ calls: 2, failures: 2 });
    await now.pass();
    expect(now.breaker.state).toBe('open');
    // Restored 250 ms later: the failure from t=0 has left the window.
    const later = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 250 }));
    expect(later.breaker.stats).toMatchObject({ calls: 1, failures: 1 });
    await later.pass();
    expect(later.breaker.state).toBe('closed');
    // Restored a whole window later: nothing left.
    const stale = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 1_000 }));
    expect(stale.breaker.stats).toMatchObject({ calls: 0, failures: 0 });
  });

  it('a restored breaker keeps growing its break where it left off', async () => {
    const opts = {
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: backoff.linear({ initialMs: 100, stepMs: 100, maxMs: 1_000 }),
    } as const;
    const a = setup(opts);
    await a.fail(); // 100
    await a.clock.tick(100);
    await a.fail(); // 200
    await a.clock.tick(200);
    await a.fail(); // 300
    const saved = roundTrip(a.breaker.toJSON());
    expect(saved.openCount).toBe(3);
    const b = setup({ ...opts, initialState: saved }, createFakeClock({ date: a.clock.date() + 300 }));
    await b.fail(); // half-open probe fails: the 4th open in a row
    expect(b.events.find((e) => e.event === 'stateChange' && e.to === 'open')).toMatchObject({
      breakMs: 400,
    });
  });

  it('a restored state with a wrong window kind is ignored, not fatal', () => {
    const a = setup({ breaker: { kind: 'consecutive', threshold: 3 } });
    const b = setup({
      breaker: { kind: 'time', windowMs: 1_000, buckets: 4 },
      initialState: roundTrip(a.breaker.toJSON()),
    });
    expect(b.breaker.stats.calls).toBe(0);
  });

  it('non-finite saved times cannot hold the breaker open forever', async () => {
    const b = setup({
      initialState: {
        v: 1,
        state: 'open',
        savedAt: Number.NaN,
        openRemainingMs: Number.POSITIVE_INFINITY,
        openCount: 1,
        window: null,
      },
    });
    expect(b.breaker.state).toBe('open');
    expect(Number.isFinite(b.breaker.stats.retryAfterMs)).toBe(true);
    await b.clock.tick(30_000);
    expectPassed(await b.pass());
  });

  it.each([
    [null, 'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got null)'],
    ['open', 'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got "open")'],
    [
      { v: 2, state: 'open' },
      'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)',
    ],
    [
      { v: 1, state: 'ajar' },
      'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)',
    ],
    [{ v: 1 }, 'circuitBreaker.initialState must be a value returned by toJSON() (v: 1) (got an object)'],
  ])('rejects a bad initialState %j with a ConfigError naming it', (initialState, message) => {
    const error = configError(() => circuitBreaker({ initialState: initialState as never }));
    expect(error.option).toBe('circuitBreaker.initialState');
    expect(error.message).toBe(message);
  });
});

describe('circuitBreaker: validation', () => {
  const C = 'circuitBreaker';
  it.each([
    [{ breaker: { kind: 'consecutive', threshold: 0 } }, `${C}.breaker.threshold`, 'INVALID_OPTION'],
    [{ breaker: { kind: 'count', size: 2, minSamples: 3 } }, `${C}.breaker.minSamples`, 'INVALID_OPTION'],
    [{ breaker: { kind: 'time', windowMs: -5 } }, `${C}.breaker.windowMs`, 'INVALID_OPTION'],
    [{ breaker: { kind: 'ring' } }, `${C}.breaker.kind`, 'INVALID_OPTION'],
    [{ halfOpenAfterMs: -1 }, `${C}.halfOpenAfterMs`, 'INVALID_OPTION'],
    [{ halfOpenAfterMs: '5s' }, `${C}.halfOpenAfterMs`, 'INVALID_OPTION'],
    [{ halfOpen: 2 }, `${C}.halfOpen`, 'INVALID_OPTION'],
    [{ halfOpen: { probes: 0 } }, `${C}.halfOpen.probes`, 'INVALID_OPTION'],
    [{ halfOpen: { successThreshold: 0.5 } }, `${C}.halfOpen.successThreshold`, 'INVALID_OPTION'],
    [{ halfOpen: { calls: 2 } }, `${C}.halfOpen.calls`, 'UNKNOWN_OPTION'],
    [{ handle: () => true }, `${C}.handle`, 'INVALID_OPTION'],
    [{ exclude: [NotFound] }, `${C}.exclude`, 'INVALID_OPTION'],
    [{ bypass: 'critical' }, `${C}.bypass`, 'INVALID_OPTION'],
    [{ bypass: [1] }, `${C}.bypass`, 'INVALID_OPTION'],
    [{ random: 0.5 }, `${C}.random`, 'INVALID_OPTION'],
    [{ name: '' }, `${C}.name`, 'INVALID_OPTION'],
    [{ registry: {} }, `${C}.registry`, 'INVALID_OPTION'],
    [{ halfOpenAfter: 10 }, `${C}.halfOpenAfter`, 'UNKNOWN_OPTION'],
  ])('rejects %j', (options, option, code) => {
    const error = configError(() => circuitBreaker(options as never));
    expect(error.option).toBe(option);
    expect(error.code).toBe(code);
  });

  it('says what each rule is, and suggests the new name of a renamed option', () => {
    expect(configError(() => circuitBreaker({ halfOpen: { probes: 0 } })).message).toBe(
      'circuitBreaker.halfOpen.probes must be an integer >= 1 (got 0)',
    );
    const renamed = configError(() => circuitBreaker({ halfOpenAfter: 10 } as never));
    expect(renamed.suggestion).toBe('halfOpenAfterMs');
    expect(renamed.message).toContain('did you mean circuitBreaker.halfOpenAfterMs?');
  });

  it('rejects options that are not an object', () => {
    expect(configError(() => circuitBreaker(5 as never)).message).toBe(
      'circuitBreaker must be an options object (got 5)',
    );
  });

  it('accepts an empty options object and no options at all', () => {
    expect(circuitBreaker().state).toBe('closed');
    expect(circuitBreaker({}).name).toBe('circuitBreaker');
    expect(circuitBreaker({}).kind).toBe('circuitBreaker');
  });
});

describe('circuit breaker: integration details', () => {
  it('reset() of a closed breaker forgets the counts but emits no state change', () => {
    const breaker = circuitBreaker({ breaker: { kind: 'consecutive', threshold: 2 } });
    const changes: string[] = [];
    breaker.onStateChange((e) => changes.push(`${e.from}->${e.to}`));
    breaker.reset();
    expect(changes).toEqual([]);
    breaker.forceOpen();
    breaker.reset();
    expect(changes).toEqual(['closed->forced-open', 'forced-open->closed']);
  });

  it('events carry the operation name given to execute', async () => {
    const breaker = circuitBreaker();
    const ops: (string | undefined)[] = [];
    breaker.onEvent((e) => ops.push(e.operation));
    await breaker.execute(() => 1, { name: 'get-user' });
    await breaker.execute(() => 2);
    expect(ops).toEqual(['get-user', undefined]);
  });

  it('a clock that is not a Clock is refused, naming circuitBreaker.clock', () => {
    expect(() => circuitBreaker({ clock: {} as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', option: 'circuitBreaker.clock' }),
    );
  });
});

describe('circuitBreaker: snapshot, descriptor and registry', () => {
  it('reports state, gauges and counters named by its descriptor, JSON-safe', async () => {
    const registry = createRegistry();
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      name: 'payments',
      breaker: { kind: 'count', size: 4, minSamples: 2, failureRatio: 0.5, slowCallMs: 100 },
      halfOpenAfterMs: 1_000,
      clock,
      registry,
    });
    expect(registry.get('circuitBreaker', 'payments')).toBe(breaker);
    await breaker.execute(() => 'ok');
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    await breaker.execute(() => 'late').catch(() => {});
    const snap = breaker.snapshot();
    expect(snap).toMatchObject({ kind: 'circuitBreaker', name: 'payments', state: 'open' });
    expect(snap.gauges).toMatchObject({ failureRatio: 0.5, windowCalls: 2, retryAfterMs: 1_000, probes: 0 });
    expect(snap.counters).toMatchObject({
      successes: 1,
      failures: 1,
      rejections: 1,
      opens: 1,
      stateChanges: 1,
    });
    expect(snap.details).toMatchObject({
      halfOpenAfterMs: 1_000,
      lastStateChange: { from: 'closed', to: 'open', reason: expect.stringContaining('failure rate') },
    });
    expect(Object.keys(snap.gauges).sort()).toEqual(Object.keys(breaker.descriptor.gauges).sort());
    expect(Object.keys(snap.counters).sort()).toEqual(Object.keys(breaker.descriptor.counters).sort());
    expect(breaker.descriptor).toBe(CIRCUIT_BREAKER_DESCRIPTOR);
    expect(Object.isFrozen(breaker.descriptor)).toBe(true);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });
});
