/**
 * `bulwark/postgres`: PostgreSQL transactions with savepoints and retry of serialization
 * failures and deadlocks, a resilient pool (startup retry, a breaker, figures, a health check),
 * and locked, checksummed migrations for PostgreSQL and SQLite.
 * @module
 */

export {
  AmbiguousCommitError,
  MigrationError,
  type MigrationErrorCode,
  PoolUnavailableError,
  RETRYABLE_TX_SQLSTATES,
  TransactionRolledBackError,
} from './errors.js';
export { main as runMigrateCli } from './migrate-cli.js';
export type { AppliedMigration, MigrationDriver, MigrationStep } from './migration-drivers.js';
export {
  checksumOf,
  compareVersions,
  createMigrationFile,
  loadMigrations,
  type Migration,
  parseMigration,
} from './migration-files.js';
export {
  createMigrator,
  type MigrationRun,
  type MigrationStatus,
  Migrator,
  type MigratorEvent,
  type MigratorOptions,
} from './migrator.js';
export {
  createPool,
  type PgPoolInstance,
  type PoolCheckOptions,
  type PostgresPoolEvent,
  ResilientPool,
  type ResilientPoolOptions,
} from './pool.js';
export {
  type IsolationLevel,
  isRetryableTransactionError,
  type Transaction,
  type TransactionOptions,
  withTransaction,
} from './transaction.js';
export type { PoolClientLike, PoolLike, Queryable, QueryResultLike } from './types.js';
