/**
 * A promise with its resolve and reject at hand: for tests that decide when an operation ends.
 */

/** A promise and the functions that settle it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * Makes a deferred promise.
 *
 * @example
 * ```ts
 * import { bulkhead } from 'bulwark';
 * import { deferred } from 'bulwark/testing';
 * const gate = deferred<void>();
 * const pool = bulkhead({ limit: 1 });
 * const running = pool.execute(() => gate.promise);
 * console.log(pool.active); // 1
 * gate.resolve();
 * await running;
 * ```
 */
export function deferred<T = unknown>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
