/**
 * Items as a queue makes them for its store: options checked, a time-ordered id, the payload
 * sealed; and the retry delay of an attempt.
 * @module
 */

import type { Backoff } from '../core/backoff.js';
import type { RandomSource } from '../core/clock.js';
import { uuidv7 } from './ids.js';
import { type EnqueueOptions, enqueueSchema } from './options.js';
import type { SubjectSealing } from './payloads.js';
import type { NewItem, QueueStore } from './store.js';
import { requireFeatures } from './store-features.js';

/** A new item of a queue (options validated at `path`). @internal */
export function newItem<T>(
  q: {
    readonly store: QueueStore;
    readonly maxAttempts: number;
    readonly payloads: {
      seal(id: string, payload: T, subject?: SubjectSealing): { bytes: Uint8Array; keyId: string | null };
    };
  },
  payload: T,
  options: EnqueueOptions | undefined,
  now: number,
  path: string,
  subject?: SubjectSealing,
): NewItem {
  if (options !== undefined) enqueueSchema.parse(options, path);
  if (options?.timeoutMs !== undefined) requireFeatures(q.store, 'timeoutMs per item');
  const id = uuidv7(now);
  const { bytes, keyId } = q.payloads.seal(id, payload, subject);
  return {
    id,
    payload: bytes,
    keyId,
    key: options?.key ?? null,
    priority: options?.priority ?? 0,
    runAt: now + Math.ceil(options?.delayMs ?? 0),
    maxAttempts: options?.maxAttempts ?? q.maxAttempts,
    createdAt: now,
    ...(options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
}

/** The backoff delay before the retry that follows attempt `attempt`. @internal */
export function retryDelay(backoff: Backoff, random: RandomSource, attempt: number): number {
  const seq = backoff.start(undefined, random);
  let delay = 0;
  for (let i = 0; i < attempt; i++) delay = seq.next();
  return delay;
}
