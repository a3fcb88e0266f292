/**
 * Errors of the durable queue. Every one is a `BulwarkDurableError` with a stable `code`; errors of
 * a store name the store (`store`: a path, or host/database — never a password) and say whether a
 * retry can help (`retryable`).
 * @module
 */

import { BulwarkError } from '../core/errors.js';

/**
 * The codes a durable queue or store reports:
 * - `LEASE_LOST`: a worker tried to ack, fail or extend an item whose lease expired or was taken
 *   by another worker (the change was refused; the item runs again or already ran elsewhere).
 * - `HANDLER_TIMEOUT`: a handler ran longer than its item's `timeoutMs`; the attempt failed.
 * - `TX_UNSUPPORTED`: a transaction handle was passed to a store that cannot enlist in it.
 * - `DECRYPT_FAILED`: a payload could not be decrypted (tampered, wrong key, unknown key id).
 * - `ENCODE_FAILED`: a payload could not be encoded (a circular object, a BigInt for JSON, …).
 * - `KEY_MISSING`: the keyring has no key with the item's key id, or no keyring was given.
 * - `CLOSED`: the queue or store was closed.
 * - `READ_ONLY`: a change was asked of a queue or store opened read-only.
 * - `INVALID_STATE`: the operation does not apply to items in that state (purging pending items
 *   without `force`, for example).
 * - `STORE_UNAVAILABLE`: the store could not be reached or its connection broke (retryable).
 * - `STORE_CONFIG`: the store's configuration is wrong (bad URL, missing database, not a database
 *   file, no permission, a schema newer than this code): a retry cannot help.
 * - `STORE_NOT_FOUND`: a read-only open found no store (no file, schema or table) — nothing was
 *   created.
 * - `INVALID_STORE_SPEC`: a store spec string (`sqlite:PATH`, `postgres://…`) was not understood.
 */
export type DurableErrorCode =
  | 'LEASE_LOST'
  | 'HANDLER_TIMEOUT'
  | 'TX_UNSUPPORTED'
  | 'DECRYPT_FAILED'
  | 'ENCODE_FAILED'
  | 'KEY_MISSING'
  | 'CLOSED'
  | 'READ_ONLY'
  | 'INVALID_STATE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_CONFIG'
  | 'STORE_NOT_FOUND'
  | 'INVALID_STORE_SPEC';

/**
 * An error of the durable queue or one of its stores.
 *
 * @example
 * ```ts
 * import { BulwarkDurableError } from 'bulwark/durable';
 * const err = new BulwarkDurableError('LEASE_LOST', 'lease lost');
 * if (err instanceof BulwarkDurableError && err.code === 'LEASE_LOST') console.log('ran elsewhere');
 * ```
 */
export class BulwarkDurableError extends BulwarkError {
  override readonly code: DurableErrorCode;
  /** The store the error is about (`sqlite:PATH`, `postgres://host:port/db?schema=…`), if any. */
  readonly store: string | undefined;
  /** True when the same call may succeed later (the store was unreachable, busy). */
  readonly retryable: boolean;

  constructor(
    code: DurableErrorCode,
    message: string,
    options?: { cause?: unknown; store?: string; retryable?: boolean },
  ) {
    super(code, message, options);
    this.code = code;
    this.store = options?.store;
    this.retryable = options?.retryable ?? code === 'STORE_UNAVAILABLE';
  }
}

/**
 * A store error: `STORE_UNAVAILABLE` (retryable), `STORE_CONFIG` or `STORE_NOT_FOUND` (fix the
 * configuration), naming the store. @internal
 */
export function storeError(
  code: 'STORE_UNAVAILABLE' | 'STORE_CONFIG' | 'STORE_NOT_FOUND',
  store: string,
  what: string,
  cause?: unknown,
): BulwarkDurableError {
  const why = cause instanceof Error ? ` (${cause.message})` : '';
  const advice =
    code === 'STORE_UNAVAILABLE'
      ? 'the call can be retried once it is reachable'
      : code === 'STORE_NOT_FOUND'
        ? 'check the path or URL; nothing was created (open it read-write once to create it)'
        : 'fix the store configuration; retrying will not help';
  return new BulwarkDurableError(code, `Store ${store}: ${what}${why}; ${advice}`, {
    cause,
    store,
  });
}
