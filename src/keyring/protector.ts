/**
 * The contract between what stores payloads (audit log, exports, your datasets) and what
 * encrypts them: a `PayloadProtector` seals bytes for a scope (a namespace, an id and optionally
 * a data subject) and opens them again. `payloadEncryption()` implements it with the durable
 * keyring (envelope encryption, key id in every envelope) and, for payloads of a subject, that
 * subject's own data key (crypto-shredding).
 * @module
 */

/** What a payload belongs to: bound into the ciphertext as associated data. */
export interface PayloadScope {
  /** e.g. `audit:main`, `dataset:orders`. */
  readonly namespace: string;
  /** Unique within the namespace (the audit log uses the payload's salted digest). */
  readonly id: string;
  /** The data subject, when the payload is about one: sealed with the subject's key. */
  readonly subject: string | null;
}

/** Sealed bytes and the id of the key that sealed them (`subject:…` for a subject key). */
export interface SealedPayload {
  readonly bytes: Uint8Array;
  readonly keyId: string;
}

/**
 * Encrypts and decrypts payloads.
 *
 * @example
 * ```ts
 * import type { PayloadProtector } from 'bulwark/keyring';
 * const identity: PayloadProtector = {
 *   seal: async (_scope, bytes) => ({ bytes, keyId: 'none' }),
 *   open: async (_scope, _keyId, bytes) => bytes,
 *   rewrap: async () => null,
 * };
 * ```
 */
export interface PayloadProtector {
  seal(scope: PayloadScope, plaintext: Uint8Array): Promise<SealedPayload>;
  /** Throws `BulwarkKeyringError` `SUBJECT_ERASED` when the subject's key was destroyed, `DECRYPT_FAILED` on tampering. */
  open(scope: PayloadScope, keyId: string, bytes: Uint8Array): Promise<Uint8Array>;
  /** Re-wraps the data key with the current key-encryption key; null when it already is current. */
  rewrap(scope: PayloadScope, keyId: string, bytes: Uint8Array): Promise<SealedPayload | null>;
}
