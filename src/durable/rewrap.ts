/**
 * Key rotation: re-wrapping the data keys of a queue's items with the keyring's current key, in
 * resumable batches.
 * @module
 */

import { ConfigError } from '../core/errors.js';
import { type Keyring, rewrapPayload } from './encryption.js';
import type { RewrapProgress } from './job.js';
import { isSubjectKeyId } from './payloads.js';
import type { QueueStore } from './store.js';

/** Re-wraps the items of `queue` encrypted with older keys (see `queue.rewrap`). @internal */
export async function rewrapItems(
  store: QueueStore,
  queue: string,
  ring: Keyring,
  options: { batchSize?: number; cursor?: string | null; maxBatches?: number },
): Promise<RewrapProgress> {
  const batchSize = options.batchSize ?? 100;
  const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
  let cursor = options.cursor ?? null;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ConfigError('rewrap.batchSize', 'an integer >= 1', batchSize);
  let rewrapped = 0;
  let failed = 0;
  let conflicts = 0;
  for (let b = 0; b < maxBatches; b++) {
    const items = await store.listForRewrap(queue, ring.currentKeyId, cursor, batchSize);
    for (const item of items) {
      // Items sealed with a subject key keep it (subjectKeys.rewrap() re-wraps those keys).
      if (isSubjectKeyId(item.keyId)) {
        cursor = item.id;
        continue;
      }
      let next: { bytes: Uint8Array; keyId: string };
      try {
        next = rewrapPayload(ring, queue, item.id, item.keyId, item.payload);
      } catch {
        // Only a crypto failure (unknown key, tampered envelope) counts as failed.
        failed++;
        cursor = item.id;
        continue;
      }
      // A store error (busy, unavailable) propagates: the cursor stays before this item, and a
      // new pass lists it again (re-wrapped items are no longer listed).
      if (await store.replacePayload(queue, item.id, item.keyId, next.bytes, next.keyId)) rewrapped++;
      else conflicts++;
      cursor = item.id;
    }
    if (items.length < batchSize) return { rewrapped, failed, conflicts, cursor, done: failed === 0 };
  }
  return { rewrapped, failed, conflicts, cursor, done: false };
}
