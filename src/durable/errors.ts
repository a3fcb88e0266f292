/**
 * Errors of the durable queue. Every one is a `BulwarkDurableError` with a stable `code`.
 * @module
 */

import { BulwarkError } from '../core/errors.js';

/**
 * The codes a durable queue or store reports:
 * - `LEASE_LOST`: a worker tried to ack, fail or extend an item whose lease expired or was taken
 *   by another worker (the change was refused; the item runs again or already ran elsewhere).
 * - `TX_UNSUPPORTED`: a transaction handle was passed to a store that cannot enlist in it.
 * - `DECRYPT_FAILED`: a payload could not be decrypted (tampered, wrong key, unknown key id).
 * - `KEY_MISSING`: the keyring has no key with the item's key id, or no keyring was given.
 * - `CLOSED`: the queue or store was closed.
 * - `INVALID_STATE`: the operation does not apply to items in that state (purging pending items
 *   without `force`, for example).
 * - `STORE_UNAVAILABLE`: the store's driver could not be loaded or reached.
 * - `INVALID_STORE_SPEC`: a store spec string (`sqlite:PATH`, `postgres://…`) was not understood.
 */
export type DurableErrorCode =
  | 'LEASE_LOST'
  | 'TX_UNSUPPORTED'
  | 'DECRYPT_FAILED'
  | 'KEY_MISSING'
  | 'CLOSED'
  | 'INVALID_STATE'
  | 'STORE_UNAVAILABLE'
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

  constructor(code: DurableErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}
