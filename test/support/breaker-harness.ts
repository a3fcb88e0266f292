/** Helpers for the circuit breaker's unit tests (src/core/breaker/*.test.ts). */
import { expect } from 'vitest';
import {
  BrokenCircuitError,
  type CircuitBreakerEvent,
  type CircuitBreakerOptions,
  type CircuitState,
  circuitBreaker,
} from '../../src/index.js';
import { createFakeClock, type FakeClock } from '../../src/testing/index.js';

export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export function outcome(p: Promise<unknown>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

export class NotFound extends Error {}

/** A breaker on a fake clock, with helpers to run calls through it. */
export function setup(
  options: Omit<CircuitBreakerOptions, 'clock'> = {},
  clock: FakeClock = createFakeClock(),
) {
  const breaker = circuitBreaker({ clock, ...options });
  const events: CircuitBreakerEvent[] = [];
  breaker.onEvent((e) => events.push(e));
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      clock.setTimeout(resolve, ms);
    });
  const priority = (p: string | undefined) => (p === undefined ? undefined : { priority: p });
  /** A call that succeeds at once. */
  const pass = (p?: string) => outcome(breaker.execute(() => 'ok', priority(p)));
  /** A call that fails at once. */
  const fail = (error: unknown = new Error('boom'), p?: string) =>
    outcome(
      breaker.execute(() => {
        throw error;
      }, priority(p)),
    );
  /** Starts a call that settles after `ms` of fake time (does not advance the clock). */
  const start = (ms: number, error?: unknown, p?: string) =>
    outcome(
      breaker.execute(async () => {
        await sleep(ms);
        if (error !== undefined) throw error;
        return 'ok';
      }, priority(p)),
    );
  /** A call that takes `ms` of fake time (advances the clock). */
  const slow = async (ms: number, error?: unknown) => {
    const p = start(ms, error);
    await clock.tick(ms);
    return p;
  };
  const changes = () => events.filter((e) => e.event === 'stateChange').map((e) => `${e.from}->${e.to}`);
  return { breaker, clock, events, pass, fail, start, slow, sleep, changes };
}

export function expectRejected(o: Outcome, state: CircuitState, retryAfterMs?: number): BrokenCircuitError {
  expect(o.ok).toBe(false);
  const error = (o as { error: unknown }).error;
  expect(error).toBeInstanceOf(BrokenCircuitError);
  const e = error as BrokenCircuitError;
  expect(e.code).toBe('BREAKER_OPEN');
  expect(e.state).toBe(state);
  if (retryAfterMs !== undefined) expect(e.retryAfterMs).toBe(retryAfterMs);
  return e;
}

export function expectPassed(o: Outcome): void {
  expect(o.ok ? 'passed' : (o.error as Error).message).toBe('passed');
}

export { configError } from './config-error.js';

/** A consecutive breaker (threshold 1) opened by one failure, breaking for `halfOpenAfterMs`. */
export async function tripped(halfOpenAfterMs: number) {
  const b = setup({ breaker: { kind: 'consecutive', threshold: 1 }, halfOpenAfterMs });
  await b.fail();
  return b;
}
