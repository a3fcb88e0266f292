/**
 * A job's progress: `job.progress(value)` from the handler stores a number 0..100 or a small JSON
 * value with the item, fenced by the attempt's lease (a handler that lost its lease gets
 * `LEASE_LOST`); readers see it in `get`/`list`, the CLI and the control plane. Calls made while a
 * write is in flight are coalesced: only the latest value is written next.
 * @module
 */

import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { BulwarkDurableError } from './errors.js';
import type { LeaseRef, QueueStore } from './store.js';

/** The largest progress value, as JSON text, in bytes. */
export const MAX_PROGRESS_BYTES = 2048;

/**
 * Checks and encodes a progress value: a finite number in 0..100, or JSON data (string, boolean,
 * array or plain object) of at most `MAX_PROGRESS_BYTES` as JSON. Throws a `ConfigError` otherwise.
 *
 * @example
 * ```ts
 * import { encodeProgress } from 'bulwark/durable';
 * console.log(encodeProgress(42), encodeProgress({ step: 'upload', done: 3, of: 7 })); // 42 {"step":"upload","done":3,"of":7}
 * ```
 */
export function encodeProgress(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || value > 100)
      throw new ConfigError('job.progress', 'a number from 0 to 100, or small JSON data', value);
    return String(value);
  }
  let text: string | undefined;
  try {
    text = value === null || value === undefined ? undefined : JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined)
    throw new ConfigError(
      'job.progress',
      'a number from 0 to 100, or JSON data (no cycles, no BigInt)',
      value,
    );
  if (Buffer.byteLength(text) > MAX_PROGRESS_BYTES)
    throw new ConfigError(
      'job.progress',
      `JSON of at most ${MAX_PROGRESS_BYTES} bytes`,
      `${text.slice(0, 40)}…`,
    );
  return text;
}

/** Stored progress text back to its value (null when none or unreadable). @internal */
export function parseProgress(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** The `job.progress` function of one attempt. @internal */
export function progressReporter(
  store: QueueStore,
  queue: string,
  ref: LeaseRef,
  clock: Clock,
): (value: unknown) => Promise<void> {
  let latest: string | null = null;
  let sent: string | null = null;
  let chain: Promise<void> = Promise.resolve();
  const send = async (): Promise<void> => {
    if (latest === sent || latest === null) return;
    const text = latest;
    sent = text;
    const features = store.features;
    if (features === undefined) {
      throw new BulwarkDurableError('INVALID_STATE', `Store ${store.description} cannot record progress`);
    }
    if (!(await features.setProgress(queue, ref, text, clock.date()))) {
      throw new BulwarkDurableError(
        'LEASE_LOST',
        `Progress of item ${ref.id} of queue "${queue}" was refused: its lease is no longer this attempt's (it timed out, was settled, or runs elsewhere)`,
      );
    }
  };
  return (value) => {
    try {
      latest = encodeProgress(value);
    } catch (error) {
      return Promise.reject(error);
    }
    const p = chain.then(send);
    chain = p.catch(() => {});
    return p;
  };
}
