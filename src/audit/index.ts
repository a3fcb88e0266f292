/**
 * `bulwark/audit`: a tamper-evident audit log. Entries form a SHA-256 hash chain over RFC 8785
 * canonical headers, payloads are stored apart under salted digests (purgeable, encryptable per
 * data subject), RFC 6962 Merkle checkpoints are signed with Ed25519, and `verify` names the
 * first bad entry. Stores: SQLite (default) and PostgreSQL. Plus request audit middleware for
 * node:http, Express and Fastify.
 * @module
 */

export { CHECKPOINT_VERSION, keyIdOf, type SigningKey, verifyCheckpoint } from './checkpoint.js';
export {
  type AuditEntry,
  type AuditEntryInput,
  type AuditHeader,
  type AuditOutcome,
  ENTRY_VERSION,
  GENESIS_HASH,
  type StoredPayload,
} from './entry.js';
export { type AuditErrorCode, BulwarkAuditError } from './errors.js';
export type { AuditLogEvent } from './events.js';
export { AuditLog, openAuditLog } from './log.js';
export type {
  AuditLogOptions,
  AuditRecord,
  ConsistencyProof,
  InclusionProof,
  PurgeOptions,
  VerifyReport,
} from './log-types.js';
export {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MerkleAccumulator,
  merkleRoot,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
export { REDACTED, type RequestAuditOptions, redactJson, redactUrl, requestAudit } from './middleware.js';
export { PostgresAuditStore, type PostgresAuditStoreOptions, postgresAuditStore } from './postgres-store.js';
export { expired, holdCovers, isHeld, type RetentionPolicy, retentionOf } from './retention.js';
export { auditStoreFromSpec } from './spec.js';
export { SqliteAuditStore, type SqliteAuditStoreOptions, sqliteAuditStore } from './sqlite-store.js';
export type {
  AuditFilter,
  AuditHead,
  AuditStore,
  Chainer,
  Checkpoint,
  LegalHold,
  PreparedEntry,
} from './store.js';
export { ChainVerifier, type CheckpointTarget, type VerifyIssue, type VerifyReason } from './verify.js';
