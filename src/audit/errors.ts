/**
 * Errors of the audit log. Every one is a `BulwarkAuditError` with a stable `code`.
 * @module
 */

import { BulwarkError } from '../core/errors.js';

/**
 * The codes the audit log reports:
 * - `CLOSED`: the log was closed.
 * - `STORE_UNAVAILABLE`: the store's driver (better-sqlite3, pg) or a peer (canonicalize) could
 *   not be loaded, or the database could not be reached.
 * - `INVALID_ENTRY`: an entry was refused (missing actor/action/resource, a payload that is not
 *   JSON, a bad tag).
 * - `INVALID_STORE_SPEC`: a store spec string was not understood.
 * - `NOT_FOUND`: no entry (or checkpoint) with that sequence number or size.
 * - `NO_SIGNING_KEY`: a checkpoint was asked for without a `signingKey`.
 */
export type AuditErrorCode =
  | 'CLOSED'
  | 'STORE_UNAVAILABLE'
  | 'INVALID_ENTRY'
  | 'INVALID_STORE_SPEC'
  | 'NOT_FOUND'
  | 'NO_SIGNING_KEY';

/**
 * An error of the audit log.
 *
 * @example
 * ```ts
 * import { BulwarkAuditError } from 'bulwark/audit';
 * const err = new BulwarkAuditError('CLOSED', 'closed');
 * console.log(err.code); // CLOSED
 * ```
 */
export class BulwarkAuditError extends BulwarkError {
  // Deliberate repetition: each capability's error class narrows `code` to its own union (so
  // `err.code` is checked by the compiler); the body is the two lines that narrowing takes.
  override readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}

/** Loads an optional peer, or throws `STORE_UNAVAILABLE` saying what to install. @internal */
export async function loadPeer<T>(name: string, load: () => Promise<T>, purpose: string): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    throw new BulwarkAuditError(
      'STORE_UNAVAILABLE',
      `${purpose} needs the optional package "${name}": run \`npm install ${name}\``,
      { cause },
    );
  }
}
