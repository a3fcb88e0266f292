/**
 * Errors of `bulwark/sync`. Every one is a `BulwarkSyncError` with a stable `code`; a refused
 * push (rate limit) is a `SyncRateLimitedError`, a `RejectedError`.
 * @module
 */

import { BulwarkError, RejectedError } from '../core/errors.js';

/**
 * The codes `bulwark/sync` reports:
 * - `CLOCK_DRIFT`: a hybrid-logical-clock stamp is further ahead of the wall clock than
 *   `maxDriftMs` (a device with a wrong clock, or a forged stamp). Nothing is changed.
 * - `INVALID_HLC`: text that is not a stamp made by `hybridClock`.
 * - `BAD_REQUEST`: a push or pull request that does not match the protocol (the message says which field).
 * - `CURSOR_EXPIRED`: a pull cursor older than the tombstone retention; pull again from 0.
 * - `STORE_UNAVAILABLE`: the server's store failed; retry later.
 * - `TRANSPORT`: the client could not reach the server (offline, timeout, 5xx).
 * - `CLOSED`: the client or server was closed.
 */
export type SyncErrorCode =
  | 'CLOCK_DRIFT'
  | 'INVALID_HLC'
  | 'BAD_REQUEST'
  | 'CURSOR_EXPIRED'
  | 'STORE_UNAVAILABLE'
  | 'TRANSPORT'
  | 'CLOSED';

/**
 * An error of `bulwark/sync`.
 *
 * @example
 * ```ts
 * import { BulwarkSyncError } from 'bulwark/sync';
 * const err = new BulwarkSyncError('TRANSPORT', 'offline');
 * if (err instanceof BulwarkSyncError && err.code === 'TRANSPORT') console.log('kept for later');
 * ```
 */
// Deliberate repetition: each capability's error class narrows `code` to its own codes; only the
// shape is shared (the logic lives in BulwarkError).
export class BulwarkSyncError extends BulwarkError {
  override readonly code: SyncErrorCode;

  constructor(code: SyncErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}

/**
 * A stamp was further ahead of this node's wall clock than the allowed drift.
 *
 * @example
 * ```ts
 * import { ClockDriftError, hybridClock } from 'bulwark/sync';
 * const hlc = hybridClock({ node: 'a', maxDriftMs: 1_000 });
 * try { hlc.receive(`${(Date.now() + 60_000).toString(16).padStart(12, '0')}-0000-b`); } catch (err) {
 *   if (err instanceof ClockDriftError) console.log(err.driftMs > 1_000); // true
 * }
 * ```
 */
export class ClockDriftError extends BulwarkSyncError {
  /** How far ahead of the wall clock the stamp was, ms. */
  readonly driftMs: number;
  /** The allowed drift, ms. */
  readonly maxDriftMs: number;

  constructor(driftMs: number, maxDriftMs: number) {
    super(
      'CLOCK_DRIFT',
      `A clock stamp is ${driftMs} ms ahead of this node's wall clock (at most ${maxDriftMs} ms allowed); fix the sender's clock (NTP) or raise maxDriftMs`,
    );
    this.driftMs = driftMs;
    this.maxDriftMs = maxDriftMs;
  }
}

/**
 * The sync server refused a push or pull: the client went over its rate limit. Retry after
 * `retryAfterMs`; nothing was applied.
 *
 * @example
 * ```ts
 * import { SyncRateLimitedError } from 'bulwark/sync';
 * const err = new SyncRateLimitedError('phone-1', 250);
 * console.log(err.reason, err.retryAfterMs); // rateLimited 250
 * ```
 */
export class SyncRateLimitedError extends RejectedError {
  /** The client that was refused. */
  readonly clientId: string;

  constructor(clientId: string, retryAfterMs: number) {
    super(
      'SYNC_RATE_LIMITED',
      'rateLimited',
      retryAfterMs,
      `Sync client "${clientId}" is over its rate limit; retry in ${Math.ceil(retryAfterMs)} ms (nothing was applied)`,
    );
    this.clientId = clientId;
  }
}
