/**
 * `bulwark/backup`: verified backups of PostgreSQL (pg_dump -Fc / pg_restore -j), SQLite (the
 * online backup API), Redis (an RDB snapshot over the replication protocol) and configuration
 * files, with a SHA-256 manifest, optional encryption, retention by count and GFS, verify by
 * restore, backup-age figures and alert rules, and point-in-time recovery for PostgreSQL.
 * @module
 */

export { type BackupAlertOptions, backupAlertRules } from './alerts.js';
// Deliberate repetition: the public re-export of the backup types that backups.ts imports (an
// export list).
export type {
  BackupEvent,
  BackupProgress,
  BackupsOptions,
  CreateOptions,
  VerifyReport,
} from './backup-types.js';
export { Backups, createBackups, sourceKind } from './backups.js';
export { main as runBackupCli } from './cli.js';
export type { BackupKind, BackupManifest, ManifestFile, TableStats } from './manifest.js';
export { PgToolError, pgTool } from './pg-tools.js';
export {
  type BaseBackup,
  baseBackup,
  latestBase,
  type PitrRestoreOptions,
  type PitrRestoreResult,
  type PitrSetup,
  restorePitr,
  setupPitr,
  stopPitrServer,
} from './pitr.js';
export type { TableStatsMode } from './postgres-source.js';
export { RedisBackupError } from './redis-source.js';
export {
  type RetentionDecision,
  type RetentionItem,
  type RetentionPolicy,
  selectRetention,
} from './retention.js';
export { BackupIntegrityError } from './stored-file.js';
export { type BackupTarget, localTarget } from './target.js';
