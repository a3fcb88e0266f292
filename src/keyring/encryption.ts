/**
 * `payloadEncryption`: a `PayloadProtector` over the durable envelope (AES-256-GCM, fresh data
 * key per payload, key id in every envelope, associated data binding namespace and id). Payloads
 * of a data subject are sealed with the subject's own key when `subjectKeys` is given.
 * @module
 */

import { type Keyring, openPayload, rewrapPayload, sealPayload } from '../durable/encryption.js';
import { BulwarkKeyringError } from './errors.js';
import type { PayloadProtector, PayloadScope, SealedPayload } from './protector.js';
import { type SubjectKeys, subjectKeyId } from './subject-keys.js';

function decryptError(cause: unknown): BulwarkKeyringError {
  if (cause instanceof BulwarkKeyringError) return cause;
  return new BulwarkKeyringError(
    'DECRYPT_FAILED',
    'The payload could not be decrypted: it was altered, or its key is not in the keyring',
    { cause },
  );
}

/**
 * Encrypts payloads with the keyring, and payloads of a subject with that subject's key.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * import { memorySubjectKeyStore, payloadEncryption, subjectKeys } from 'bulwark/keyring';
 * const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
 * const enc = payloadEncryption({ keyring: ring, subjectKeys: subjectKeys({ keyring: ring, store: memorySubjectKeyStore() }) });
 * const scope = { namespace: 'demo', id: '1', subject: 'user-42' };
 * const sealed = await enc.seal(scope, Buffer.from('hello'));
 * console.log(sealed.keyId, Buffer.from(await enc.open(scope, sealed.keyId, sealed.bytes)).toString()); // subject:1 hello
 * ```
 */
export function payloadEncryption(options: {
  keyring: Keyring;
  subjectKeys?: SubjectKeys;
}): PayloadProtector {
  const { keyring: ring, subjectKeys: subjects } = options;
  const bySubject = (scope: PayloadScope) => subjects !== undefined && scope.subject !== null;
  return {
    async seal(scope, plaintext): Promise<SealedPayload> {
      if (bySubject(scope)) {
        const { ring: sring, generation } = await subjects!.ringFor(scope.subject!, { create: true });
        return {
          bytes: sealPayload(sring, scope.namespace, scope.id, plaintext).bytes,
          keyId: subjectKeyId(generation),
        };
      }
      return sealPayload(ring, scope.namespace, scope.id, plaintext);
    },
    async open(scope, keyId, bytes) {
      try {
        if (keyId.startsWith('subject:')) {
          if (subjects === undefined || scope.subject === null)
            throw new BulwarkKeyringError(
              'KEY_MISSING',
              'A subject-sealed payload needs subjectKeys and its subject',
            );
          const { ring: sring } = await subjects.ringFor(scope.subject, {
            generation: Number(keyId.slice('subject:'.length)),
          });
          return openPayload(sring, scope.namespace, scope.id, 's', bytes);
        }
        return openPayload(ring, scope.namespace, scope.id, keyId, bytes);
      } catch (error) {
        throw decryptError(error);
      }
    },
    async rewrap(scope, keyId, bytes) {
      // Subject-sealed payloads keep their subject key; `subjectKeys.rewrap()` re-wraps those keys.
      if (keyId.startsWith('subject:') || keyId === ring.currentKeyId) return null;
      try {
        return rewrapPayload(ring, scope.namespace, scope.id, keyId, bytes);
      } catch (error) {
        throw decryptError(error);
      }
    },
  };
}
