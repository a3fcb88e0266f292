/**
 * Store-and-forward: deliver now through a resilience policy; when that fails, keep the payload in
 * a durable queue so a worker delivers it later.
 * @module
 */

import { isNonRetryable } from '../core/errors.js';
import type { EnqueueOptions } from './options.js';
import type { Queue } from './queue.js';

/** Anything with `execute(fn)`: a Bulwark policy or pipeline. */
export interface ExecutesOperations {
  execute<R>(fn: (ctx: { readonly signal: AbortSignal }) => R | Promise<R>): Promise<unknown>;
}

/** The outcome of a store-and-forward send. */
export type ForwardOutcome<R> =
  | { readonly delivered: R }
  | {
      /** The id of the stored item (or of the existing one when the idempotency key was taken). */
      readonly queued: string;
      readonly duplicate: boolean;
      /** Why the immediate delivery failed. */
      readonly error: unknown;
    };

/** A store-and-forward sender made by `storeAndForward`. */
export type ForwardSender<T, R> = (
  payload: T,
  options?: Omit<EnqueueOptions, 'tx'>,
) => Promise<ForwardOutcome<R>>;

/**
 * Tries to deliver each payload now through `policy`; if the policy gives up (the dependency is
 * down, the breaker is open, …), enqueues the payload and returns `{ queued: id }` instead of
 * failing. Have a worker deliver the queued items later with the same function:
 * `q.work((job, { signal }) => deliver(job.payload, signal))`. Delivery is at-least-once (an
 * attempt that timed out may have reached the dependency), so pass an idempotency key downstream.
 * An enqueue that fails is thrown (nothing was kept). An error marked `nonRetryable` (the
 * dependency rejected the payload itself) is thrown too, not queued, unless `queueNonRetryable`.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 * import { openQueue, sqliteStore, storeAndForward } from 'bulwark/durable';
 * const q = await openQueue<{ orderId: number }>({ name: 'webhooks', store: sqliteStore({ path: ':memory:' }) });
 * let up = false;
 * const deliver = async (p: { orderId: number }) => { if (!up) throw new Error('ECONNREFUSED'); return p.orderId; };
 * const send = storeAndForward(q, retry({ maxAttempts: 2, backoff: undefined }), deliver);
 * console.log(await send({ orderId: 1 }, { key: 'order-1' })); // { queued: '…', duplicate: false, error: … }
 * up = true;
 * const worker = q.work((job) => deliver(job.payload));
 * await new Promise((r) => setTimeout(r, 100));
 * await worker.stop();
 * console.log((await q.stats()).completed); // 1
 * await q.close();
 * ```
 */
export function storeAndForward<T, R>(
  queue: Queue<T>,
  policy: ExecutesOperations,
  deliver: (payload: T, signal: AbortSignal) => R | Promise<R>,
  options: { readonly queueNonRetryable?: boolean } = {},
): ForwardSender<T, R> {
  const queueNonRetryable = options.queueNonRetryable === true;
  return async (payload, options) => {
    try {
      const delivered = (await policy.execute((ctx) => deliver(payload, ctx.signal))) as R;
      return { delivered };
    } catch (error) {
      if (!queueNonRetryable && isNonRetryable(error)) throw error;
      const { id, duplicate } = await queue.enqueue(payload, options);
      return { queued: id, duplicate, error };
    }
  };
}
