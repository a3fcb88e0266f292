import { expect } from 'vitest';
import { BulkheadRejectedError, type Context } from '../../src/index.js';
import { deferred } from '../../src/testing/index.js';
export type Settled =
  | { state: 'pending' }
  | { state: 'fulfilled'; value: unknown }
  | { state: 'rejected'; error: unknown };

export function track(promise: Promise<unknown>): { readonly current: Settled; settledTimes: number } {
  const box: { current: Settled; settledTimes: number } = { current: { state: 'pending' }, settledTimes: 0 };
  promise.then(
    (value) => {
      box.settledTimes++;
      box.current = { state: 'fulfilled', value };
    },
    (error: unknown) => {
      box.settledTimes++;
      box.current = { state: 'rejected', error };
    },
  );
  return box;
}

/** A controllable job: `run` is the function to execute; `finish`/`fail` settle it. */
export function job<T = string>(value?: T) {
  const d = deferred<T>();
  const j = {
    started: 0,
    ctx: undefined as Context | undefined,
    run: (ctx: Context) => {
      j.started++;
      j.ctx = ctx;
      return d.promise;
    },
    finish: () => d.resolve(value as T),
    fail: (e: unknown) => d.reject(e),
  };
  return j;
}

export function rejectionOf(settled: Settled): BulkheadRejectedError {
  expect(settled.state).toBe('rejected');
  const error = (settled as { error: unknown }).error;
  expect(error).toBeInstanceOf(BulkheadRejectedError);
  return error as BulkheadRejectedError;
}
