/**
 * Property test: the circuit breaker matches a small reference model over random sequences of
 * calls (successes, failures, slow calls, excluded errors, bypass priorities, concurrent
 * batches) and clock steps.
 *
 * The model is deliberately naive: it keeps every recorded outcome with its timestamp and
 * computes the window figures from scratch each time; it shares no code with the breaker.
 */

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  backoff,
  type CircuitBreakerOptions,
  circuitBreaker,
  handle,
} from '../../index.js';
import { createFakeClock } from '../../testing/index.js';

// ---------------------------------------------------------------------------------------------
// Configuration

const SLOW_MS = 100;

type WindowConfig =
  | { kind: 'consecutive'; threshold: number }
  | { kind: 'count'; size: number; minSamples: number; failureRate: number; slowRate?: number }
  | {
      kind: 'time';
      windowMs: number;
      buckets: number;
      minSamples: number;
      failureRate: number;
      slowRate?: number;
    };

interface Config {
  window: WindowConfig;
  /** A fixed break, or a linear one: initial + step·(n − 1) for the n-th open since the last close, capped at max. */
  halfOpenAfterMs: number | { initial: number; step: number; max: number };
  probes: number;
  /** Undefined: the default (= probes). */
  successThreshold: number | undefined;
}

function optionsOf(config: Config): CircuitBreakerOptions {
  const w = config.window;
  const slowCall = (rate: number | undefined) =>
    rate === undefined ? {} : { slowCallMs: SLOW_MS, slowCallRatio: rate };
  const breaker: CircuitBreakerOptions['breaker'] =
    w.kind === 'consecutive'
      ? { kind: 'consecutive', threshold: w.threshold }
      : w.kind === 'count'
        ? {
            kind: 'count',
            size: w.size,
            minSamples: w.minSamples,
            failureRatio: w.failureRate,
            ...slowCall(w.slowRate),
          }
        : {
            kind: 'time',
            windowMs: w.windowMs,
            buckets: w.buckets,
            minSamples: w.minSamples,
            failureRatio: w.failureRate,
            ...slowCall(w.slowRate),
          };
  const hoa = config.halfOpenAfterMs;
  return {
    breaker,
    halfOpenAfterMs:
      typeof hoa === 'number'
        ? hoa
        : backoff.linear({ initialMs: hoa.initial, stepMs: hoa.step, maxMs: hoa.max }),
    halfOpen:
      config.successThreshold === undefined
        ? { probes: config.probes }
        : { probes: config.probes, successThreshold: config.successThreshold },
    exclude: handle.errors(Excluded),
    bypass: ['critical'],
  };
}

// ---------------------------------------------------------------------------------------------
// The reference model

type ModelState = 'closed' | 'open' | 'half-open';
type Result = 'ok' | 'fail' | 'excluded';

interface Recorded {
  at: number;
  failure: boolean;
  slow: boolean;
}

type Admission =
  | { kind: 'rejected'; state: ModelState; retryAfterMs: number }
  | { kind: 'bypass' }
  | { kind: 'normal' | 'probe'; epoch: number };

interface Figures {
  calls: number;
  failures: number;
  slow: number;
}

class Model {
  state: ModelState = 'closed';
  /** Bumped on every state change: outcomes of calls admitted under another epoch are ignored. */
  epoch = 0;
  // Deliberate repetition: the model's own tallies (zeroed fields like BreakerCounters), kept apart so the
  // model stays independent of the implementation it checks.
  /** Every outcome recorded since the breaker last closed, oldest first. */
  recorded: Recorded[] = [];
  openUntil = 0;
  opensSinceClose = 0;
  probesRunning = 0;
  probeSuccesses = 0;
  rejected = 0;
  bypassed = 0;
  opened = 0;
  /** Transitions seen, for coverage statistics. */
  readonly log: string[] = [];
  ignoredLate = 0;

  constructor(readonly config: Config) {}

  private get slowRate(): number | undefined {
    const w = this.config.window;
    return w.kind === 'consecutive' ? undefined : w.slowRate;
  }

  private moveTo(state: ModelState, now: number): void {
    this.log.push(`${this.state}->${state}`);
    this.state = state;
    this.epoch++;
    this.probesRunning = 0;
    this.probeSuccesses = 0;
    if (state === 'open') {
      this.opensSinceClose++;
      this.opened++;
      const hoa = this.config.halfOpenAfterMs;
      const breakMs =
        typeof hoa === 'number'
          ? hoa
          : Math.min(hoa.max, hoa.initial + hoa.step * (this.opensSinceClose - 1));
      this.openUntil = now + breakMs;
    }
    if (state === 'closed') {
      this.opensSinceClose = 0;
      this.recorded = [];
    }
  }

  admit(now: number, critical: boolean): Admission {
    if (this.state === 'open' && now >= this.openUntil) this.moveTo('half-open', now);
    if (this.state === 'closed') return { kind: 'normal', epoch: this.epoch };
    if (this.state === 'half-open' && this.probesRunning < this.config.probes) {
      this.probesRunning++;
      return { kind: 'probe', epoch: this.epoch };
    }
    if (critical) {
      this.bypassed++;
      return { kind: 'bypass' };
    }
    this.rejected++;
    return {
      kind: 'rejected',
      state: this.state,
      retryAfterMs: this.state === 'open' ? this.openUntil - now : 0,
    };
  }

  settle(admission: Admission, now: number, durationMs: number, result: Result): void {
    if (admission.kind === 'rejected' || admission.kind === 'bypass') return;
    if (admission.epoch !== this.epoch) {
      this.ignoredLate++;
      return;
    }
    const slow = this.slowRate !== undefined && durationMs >= SLOW_MS;
    if (admission.kind === 'probe') {
      this.probesRunning--;
      if (result === 'excluded') return;
      if (result === 'fail' || slow) {
        this.moveTo('open', now);
        return;
      }
      this.probeSuccesses++;
      if (this.probeSuccesses >= (this.config.successThreshold ?? this.config.probes))
        this.moveTo('closed', now);
      return;
    }
    if (result === 'excluded') return;
    this.recorded.push({ at: now, failure: result === 'fail', slow });
    if (this.shouldOpen(now)) this.moveTo('open', now);
  }

  /** The outcomes the window looks at now. */
  private inWindow(now: number): Recorded[] {
    const w = this.config.window;
    if (w.kind === 'consecutive') {
      // The current streak of failures.
      const streak: Recorded[] = [];
      for (let i = this.recorded.length - 1; i >= 0 && this.recorded[i]!.failure; i--)
        streak.push(this.recorded[i]!);
      return streak;
    }
    if (w.kind === 'count') return this.recorded.slice(-w.size);
    // Time: whole buckets of windowMs / buckets ms; a bucket leaves once `buckets` newer ones began.
    const bucketOf = (t: number) => Math.floor(t / (w.windowMs / w.buckets));
    return this.recorded.filter((r) => bucketOf(now) - bucketOf(r.at) < w.buckets);
  }

  figures(now: number): Figures {
    const list = this.inWindow(now);
    return {
      calls: list.length,
      failures: list.filter((r) => r.failure).length,
      slow: list.filter((r) => r.slow).length,
    };
  }

  private shouldOpen(now: number): boolean {
    const w = this.config.window;
    const { calls, failures, slow } = this.figures(now);
    if (w.kind === 'consecutive') return failures >= w.threshold;
    const minimum = w.kind === 'count' ? w.minSamples : w.minSamples;
    if (calls < minimum) return false;
    if (failures / calls >= w.failureRate) return true;
    return w.slowRate !== undefined && slow / calls >= w.slowRate;
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

class Boom extends Error {}
class Excluded extends Error {}

interface Call {
  result: Result;
  ms: number;
  critical: boolean;
}

type Command = { t: 'calls'; calls: Call[] } | { t: 'step'; ms: number };

const durationArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: SLOW_MS - 1 }),
  fc.constant(SLOW_MS),
  fc.integer({ min: SLOW_MS, max: 3 * SLOW_MS }),
);

const callArb: fc.Arbitrary<Call> = fc.record({
  result: fc.constantFrom<Result>('ok', 'ok', 'fail', 'fail', 'excluded'),
  ms: durationArb,
  critical: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: callArb.map((c): Command => ({ t: 'calls', calls: [c] })), weight: 8 },
  {
    arbitrary: fc
      .array(callArb, { minLength: 2, maxLength: 4 })
      .map((calls): Command => ({ t: 'calls', calls })),
    weight: 2,
  },
  { arbitrary: fc.integer({ min: 1, max: 1_500 }).map((ms): Command => ({ t: 'step', ms })), weight: 3 },
);

const rateArb = fc.constantFrom(0.2, 1 / 3, 0.5, 0.6, 0.75, 1);

const halfOpenAfterArb: fc.Arbitrary<Config['halfOpenAfterMs']> = fc.oneof(
  fc.constantFrom(0, 150, 500),
  fc.record({
    initial: fc.integer({ min: 50, max: 300 }),
    step: fc.integer({ min: 0, max: 200 }),
    max: fc.integer({ min: 300, max: 900 }),
  }),
);

function configArb(window: fc.Arbitrary<WindowConfig>): fc.Arbitrary<Config> {
  return fc.record({
    window,
    halfOpenAfterMs: halfOpenAfterArb,
    probes: fc.integer({ min: 1, max: 3 }),
    successThreshold: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  });
}

const countArb = (slow: boolean): fc.Arbitrary<WindowConfig> =>
  fc
    .record({
      size: fc.integer({ min: 1, max: 6 }),
      minimumFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .chain(({ size, minimumFraction }) =>
      fc.record({
        kind: fc.constant('count' as const),
        size: fc.constant(size),
        minSamples: fc.constant(Math.max(1, Math.ceil(minimumFraction * size))),
        failureRate: slow ? fc.constant(1) : rateArb,
        ...(slow ? { slowRate: rateArb } : {}),
      }),
    );

const timeArb = (slow: boolean): fc.Arbitrary<WindowConfig> =>
  fc.record({
    kind: fc.constant('time' as const),
    windowMs: fc.constantFrom(300, 1_000, 1_200),
    buckets: fc.integer({ min: 1, max: 5 }),
    minSamples: fc.integer({ min: 1, max: 5 }),
    failureRate: slow ? fc.constantFrom(0.5, 1) : rateArb,
    ...(slow ? { slowRate: rateArb } : {}),
  });

const kinds: [string, fc.Arbitrary<WindowConfig>][] = [
  [
    'consecutive',
    fc.record({ kind: fc.constant('consecutive' as const), threshold: fc.integer({ min: 1, max: 4 }) }),
  ],
  ['count', countArb(false)],
  ['count with slowCall', countArb(true)],
  ['time', timeArb(false)],
  ['time with slowCall', timeArb(true)],
];

// ---------------------------------------------------------------------------------------------
// Running a sequence against both

const coverage = new Map<string, number>();

function bump(key: string, by = 1): void {
  coverage.set(key, (coverage.get(key) ?? 0) + by);
}

async function runSequence(config: Config, commands: Command[]): Promise<void> {
  const clock = createFakeClock({ now: 1_000_000 });
  const breaker = circuitBreaker({ clock, ...optionsOf(config) });
  const model = new Model(config);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      clock.setTimeout(resolve, ms);
    });

  const check = (where: string) => {
    const now = clock.now();
    const stats = breaker.stats;
    const expected = {
      state: model.state,
      ...model.figures(now),
      rejected: model.rejected,
      bypassed: model.bypassed,
      opened: model.opened,
      retryAfterMs: model.state === 'open' ? Math.max(0, model.openUntil - now) : 0,
    };
    expect(stats, where).toEqual(expected);
    expect(breaker.state, where).toBe(model.state);
  };

  for (const [step, command] of commands.entries()) {
    const where = `command ${step}: ${JSON.stringify(command)}`;
    if (command.t === 'step') {
      await clock.tick(command.ms);
      check(where);
      continue;
    }
    const t0 = clock.now();
    const outcomes = command.calls.map((call) =>
      breaker
        .execute(
          async () => {
            await sleep(call.ms);
            if (call.result === 'fail') throw new Boom();
            if (call.result === 'excluded') throw new Excluded();
            return 'ok';
          },
          call.critical ? { priority: 'critical' } : undefined,
        )
        .then(
          (value) => ({ value, error: undefined as unknown }),
          (error: unknown) => ({ value: undefined, error }),
        ),
    );
    const admissions = command.calls.map((call) => model.admit(t0, call.critical));
    const longest = Math.max(...command.calls.map((c) => c.ms));
    await clock.tick(longest);
    // Calls settle in the order of their end time, then of their start.
    const order = command.calls
      .map((_, i) => i)
      .sort((a, b) => command.calls[a]!.ms - command.calls[b]!.ms || a - b);
    for (const i of order) {
      const call = command.calls[i]!;
      model.settle(admissions[i]!, t0 + call.ms, call.ms, call.result);
    }
    const results = await Promise.all(outcomes);
    for (const [i, admission] of admissions.entries()) {
      const { value, error } = results[i]!;
      const call = command.calls[i]!;
      if (admission.kind === 'rejected') {
        expect(error, `${where}, call ${i} rejected`).toBeInstanceOf(BrokenCircuitError);
        expect((error as BrokenCircuitError).state, where).toBe(admission.state);
        expect((error as BrokenCircuitError).retryAfterMs, where).toBe(admission.retryAfterMs);
        bump(`rejected while ${admission.state}`);
      } else {
        expect(error instanceof BrokenCircuitError ? 'rejected' : 'admitted', `${where}, call ${i}`).toBe(
          'admitted',
        );
        if (call.result === 'ok') expect(value).toBe('ok');
        else expect(error).toBeInstanceOf(call.result === 'fail' ? Boom : Excluded);
        bump(`admitted as ${admission.kind}`);
      }
    }
    check(where);
  }
  for (const t of model.log) bump(t);
  bump('ignored late outcomes', model.ignoredLate);
}

// ---------------------------------------------------------------------------------------------

describe('circuitBreaker matches the reference model', () => {
  afterAll(() => {
    // The generators must actually drive the breaker through every transition.
    for (const key of [
      'closed->open',
      'open->half-open',
      'half-open->closed',
      'half-open->open',
      'rejected while open',
      'rejected while half-open',
      'admitted as probe',
      'admitted as bypass',
      'ignored late outcomes',
    ]) {
      expect(coverage.get(key) ?? 0, key).toBeGreaterThan(20);
    }
  });

  it.each(kinds)('%s breaker', async (_name, windowArb) => {
    await fc.assert(
      fc.asyncProperty(
        configArb(windowArb),
        fc.array(commandArb, { minLength: 1, maxLength: 40 }),
        runSequence,
      ),
      { numRuns: 300 },
    );
  });

  it('the model itself: a slow success opens a slow-call window and a late failure is ignored', async () => {
    // A hand-checked sequence, so that a bug shared by model and breaker cannot hide.
    const config: Config = {
      window: { kind: 'count', size: 2, minSamples: 2, failureRate: 1, slowRate: 0.5 },
      halfOpenAfterMs: 200,
      probes: 1,
      successThreshold: undefined,
    };
    const model = new Model(config);
    const a = model.admit(0, false);
    const b = model.admit(0, false);
    model.settle(a, 10, 10, 'ok');
    model.settle(b, 150, 150, 'ok'); // slow: 1 of 2
    expect(model.state).toBe('open');
    expect(model.figures(150)).toEqual({ calls: 2, failures: 0, slow: 1 });
    const late = { kind: 'normal', epoch: 0 } as const;
    expect(model.admit(300, false)).toMatchObject({ kind: 'rejected', state: 'open', retryAfterMs: 50 });
    const probe = model.admit(350, false);
    expect(model.state).toBe('half-open');
    model.settle(late, 360, 360, 'fail');
    expect(model.state).toBe('half-open');
    model.settle(probe, 360, 10, 'ok');
    expect(model.state).toBe('closed');
    expect(model.figures(360)).toEqual({ calls: 0, failures: 0, slow: 0 });
    await runSequence(config, [
      { t: 'calls', calls: [{ result: 'ok', ms: 10, critical: false }] },
      { t: 'calls', calls: [{ result: 'ok', ms: 150, critical: false }] },
      { t: 'step', ms: 300 },
      { t: 'calls', calls: [{ result: 'ok', ms: 10, critical: false }] },
    ]);
  });
});
