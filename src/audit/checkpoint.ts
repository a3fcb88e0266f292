/**
 * Signed tree heads (checkpoints): the RFC 6962 tree head over the first `treeSize` entries,
 * signed with Ed25519 (node:crypto), to be sent off the box. Anyone holding the public key can
 * later check that the log still contains exactly those entries (and, with a consistency proof,
 * that a later head extends it).
 * @module
 */

import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { canonical } from './entry.js';
import { BulwarkAuditError } from './errors.js';
import type { Checkpoint } from './store.js';

/** The checkpoint format version. */
export const CHECKPOINT_VERSION = 1;

/** An Ed25519 private key: a KeyObject or PEM text. */
export type SigningKey = KeyObject | string;

/** Turns a signing key into a private KeyObject (Ed25519 only). @internal */
export function privateKeyOf(key: SigningKey): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (cause) {
    throw new BulwarkAuditError(
      'NO_SIGNING_KEY',
      'signingKey is not a PEM private key (make one with `openssl genpkey -algorithm ed25519`)',
      { cause },
    );
  }
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') {
    throw new BulwarkAuditError(
      'NO_SIGNING_KEY',
      'signingKey must be an Ed25519 private key (`openssl genpkey -algorithm ed25519`)',
    );
  }
  return k;
}

/** A short id of a public key: SHA-256 of its raw 32 bytes, first 16 hex characters. */
export function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function message(c: Omit<Checkpoint, 'signature' | 'keyId'>): string {
  return canonical({ v: c.v, log: c.log, treeSize: c.treeSize, rootHash: c.rootHash, time: c.time });
}

/** Signs a tree head. @internal */
export function signCheckpoint(body: Omit<Checkpoint, 'signature' | 'keyId'>, key: KeyObject): Checkpoint {
  const signature = sign(null, Buffer.from(message(body)), key).toString('base64');
  return { ...body, signature, keyId: keyIdOf(createPublicKey(key)) };
}

/**
 * Checks a checkpoint's Ed25519 signature with the log's public key (a KeyObject or PEM text).
 * Needs the audit log's canonicaliser loaded (any opened log, or `loadCanonical()`).
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { openAuditLog, verifyCheckpoint } from 'bulwark/audit';
 * const { privateKey, publicKey } = generateKeyPairSync('ed25519');
 * const log = openAuditLog({ store: 'sqlite::memory:', signingKey: privateKey });
 * await log.append({ actor: 'a', action: 'b', resource: 'c' });
 * const cp = await log.checkpoint();
 * console.log(verifyCheckpoint(cp, publicKey)); // true
 * await log.close();
 * ```
 */
export function verifyCheckpoint(c: Checkpoint, publicKey: KeyObject | string): boolean {
  try {
    const key =
      typeof publicKey === 'string' || publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
    return verify(null, Buffer.from(message(c)), key, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}
