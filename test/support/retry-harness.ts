/** Helpers shared by the test files of one area (split by topic). */
import { vi } from 'vitest';
import { backoff, type Context, type RetryEvent, type RetryOptions, retry } from '../../src/index.js';
import { createFakeClock, type FakeClock } from '../../src/testing/index.js';
/** A function that fails `failures` times (throwing `make(n)`) and then returns `ok@<attempt>`. */
export function flaky(failures: number, make: (n: number) => unknown = (n) => new Error(`failure ${n}`)) {
  const fn = vi.fn((ctx: Context) => {
    if (fn.mock.calls.length <= failures) throw make(fn.mock.calls.length);
    return `ok@${ctx.attempt}`;
  });
  return fn;
}

export const alwaysFails = (error: unknown = new Error('down')) =>
  vi.fn((): never => {
    throw error;
  });

/** Records every event of a policy. */
export function record(policy: { onEvent(l: (e: RetryEvent) => void): unknown }): RetryEvent[] {
  const events: RetryEvent[] = [];
  policy.onEvent((e) => events.push(e));
  return events;
}

/** A retry on a fake clock with a constant backoff unless told otherwise. */
export function setup(options: RetryOptions = {}, clock: FakeClock = createFakeClock()) {
  const policy = retry({ backoff: backoff.constant(100), clock, ...options });
  return { policy, clock };
}

/** Settles `p` and reports how, so a test can assert without unhandled rejections. */
export function settle<T>(p: Promise<T>): { readonly state: string; readonly value: unknown } {
  const out = { state: 'pending', value: undefined as unknown };
  p.then(
    (v) => {
      out.state = 'fulfilled';
      out.value = v;
    },
    (e: unknown) => {
      out.state = 'rejected';
      out.value = e;
    },
  );
  return out;
}

export const retryAfterError = (fields: Record<string, unknown>) =>
  Object.assign(new Error('throttled'), fields);
export const response = (status: number, headers: Record<string, string> = {}) =>
  new Response(null, { status, headers });

/** The giveUp event of a default-named retry (priority normal) with its attempt, reason and error or result. */
export function giveUpEvent(fields: {
  readonly attempt: number;
  readonly reason: string;
  readonly error?: unknown;
  readonly result?: unknown;
}): RetryEvent {
  return { kind: 'retry', event: 'giveUp', name: 'retry', priority: 'normal', ...fields } as RetryEvent;
}
