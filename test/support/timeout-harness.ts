import type { Context } from '../../src/index.js';
import { flushMicrotasks } from '../../src/testing/index.js';
export type Settled<T> =
  | { state: 'pending' }
  | { state: 'fulfilled'; value: T }
  | { state: 'rejected'; error: unknown };

/** Observes a promise without awaiting it, so a test can check whether it settled yet. */
export function track<T>(promise: Promise<T>): { readonly current: Settled<T> } {
  const box: { current: Settled<T> } = { current: { state: 'pending' } };
  promise.then(
    (value) => {
      box.current = { state: 'fulfilled', value };
    },
    (error: unknown) => {
      box.current = { state: 'rejected', error };
    },
  );
  return box;
}

/** A function that waits until its signal aborts, then rejects with the abort reason. */
export function untilAborted(ctx: Context): Promise<never> {
  const signal = ctx.signal;
  return new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Collects unhandled rejections while `body` runs (and a few turns of the event loop after). */
export async function withUnhandledRejections(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await body();
    for (let i = 0; i < 5; i++) await flushMicrotasks();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return seen;
}
