/**
 * Errors of the keyring sources, rotation and subject keys. Messages never contain key material.
 * @module
 */

import { BulwarkError } from '../core/errors.js';

/**
 * - `SUBJECT_ERASED`: the data subject was erased; its key is gone and its payloads are unreadable.
 * - `SOURCE_FAILED`: a keyring source (file, command) could not be read.
 * - `DECRYPT_FAILED`: a payload could not be decrypted (tampered, wrong key).
 * - `KEY_MISSING`: no key with that id.
 */
export type KeyringErrorCode = 'SUBJECT_ERASED' | 'SOURCE_FAILED' | 'DECRYPT_FAILED' | 'KEY_MISSING';

/**
 * An error of `bulwark/keyring`.
 *
 * @example
 * ```ts
 * import { BulwarkKeyringError } from 'bulwark/keyring';
 * const err = new BulwarkKeyringError('SUBJECT_ERASED', 'erased');
 * console.log(err.code); // SUBJECT_ERASED
 * ```
 */
export class BulwarkKeyringError extends BulwarkError {
  override readonly code: KeyringErrorCode;

  constructor(code: KeyringErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}
