/**
 * `bulwark/keyring`: keyring sources (environment, file, command), scheduled rotation with
 * background rewrap, per-subject data keys for crypto-shredding, and `payloadEncryption` (the
 * protector the audit log and exports use). Built on the durable keyring and envelope.
 * @module
 */

export { Keyring, type KeyringKeyInput, keyring } from '../durable/encryption.js';
export { payloadEncryption } from './encryption.js';
export { BulwarkKeyringError, type KeyringErrorCode } from './errors.js';
export { postgresSubjectKeyStore } from './pg-subject-keys.js';
export type { PayloadProtector, PayloadScope, SealedPayload } from './protector.js';
export { KeyRotation, type RewrapTarget, type RotationOptions, scheduleRotation } from './rotation.js';
export {
  keyFileSaver,
  keyringFromCommand,
  keyringFromEnv,
  keyringFromFile,
  keyringFromText,
} from './sources.js';
export {
  memorySubjectKeyStore,
  type SubjectKeyRecord,
  type SubjectKeyStore,
  SubjectKeys,
  type SubjectKeysOptions,
  sqliteSubjectKeyStore,
  subjectKeyId,
  subjectKeys,
} from './subject-keys.js';
