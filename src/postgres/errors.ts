/**
 * Typed errors of `bulwark/postgres`: every one has a stable `code`, says what to do, and
 * chains the driver's error as `cause`.
 * @module
 */

import { BulwarkError, nonRetryable } from '../core/errors.js';

/**
 * The connection was lost while COMMIT was in flight: the transaction may or may not have been
 * committed, and nobody can tell from the client side. It is never retried (a retry could apply
 * the work twice). Check whether the transaction's effects are present (an idempotency key, a
 * unique row) before running it again.
 *
 * @example
 * ```ts
 * import { AmbiguousCommitError } from 'bulwark/postgres';
 * function onError(err: unknown): string {
 *   return err instanceof AmbiguousCommitError ? 'look up the order by its key before retrying' : 'failed';
 * }
 * console.log(onError(new AmbiguousCommitError(new Error('Connection terminated'))));
 * ```
 */
export class AmbiguousCommitError extends BulwarkError {
  override readonly code = 'COMMIT_OUTCOME_UNKNOWN' as const;
  constructor(cause: unknown) {
    super(
      'COMMIT_OUTCOME_UNKNOWN',
      'The connection was lost while COMMIT was in flight, so the transaction may or may not have been committed. ' +
        'It was not retried (a retry could apply it twice): check whether its effects are present ' +
        '(e.g. by an idempotency key) before running it again.',
      { cause },
    );
    nonRetryable(this);
  }
}

/**
 * A statement failed inside the transaction, its error was caught by your function, and
 * PostgreSQL therefore rolled the whole transaction back at COMMIT. Wrap statements whose errors
 * you handle in a nested `withTransaction(tx, …)` (a savepoint) so that the rest can commit.
 *
 * @example
 * ```ts
 * import { TransactionRolledBackError } from 'bulwark/postgres';
 * console.log(new TransactionRolledBackError().code); // TRANSACTION_ROLLED_BACK
 * ```
 */
export class TransactionRolledBackError extends BulwarkError {
  override readonly code = 'TRANSACTION_ROLLED_BACK' as const;
  constructor() {
    super(
      'TRANSACTION_ROLLED_BACK',
      'PostgreSQL rolled the transaction back at COMMIT because a statement inside it had failed (and its error was caught). ' +
        'Put statements whose errors you handle in a nested withTransaction(tx, …) so a savepoint contains the failure.',
    );
    nonRetryable(this);
  }
}

/**
 * The pool could not give a connection: PostgreSQL is unreachable (after the startup retries),
 * or acquiring a connection timed out.
 *
 * @example
 * ```ts
 * import { PoolUnavailableError } from 'bulwark/postgres';
 * console.log(new PoolUnavailableError('db', 'no connection', new Error('ECONNREFUSED')).code); // POOL_UNAVAILABLE
 * ```
 */
export class PoolUnavailableError extends BulwarkError {
  override readonly code = 'POOL_UNAVAILABLE' as const;
  readonly pool: string;
  constructor(pool: string, what: string, cause: unknown) {
    super(
      'POOL_UNAVAILABLE',
      `PostgreSQL pool "${pool}": ${what}. Check that the server is up and reachable (pg_isready), that max_connections is not exhausted, and the connection string.`,
      { cause },
    );
    this.pool = pool;
  }
}

/** Codes of `MigrationError`. */
export type MigrationErrorCode =
  | 'MIGRATION_CHECKSUM_MISMATCH'
  | 'MIGRATION_MISSING'
  | 'MIGRATION_FAILED'
  | 'MIGRATION_FILE_INVALID'
  | 'MIGRATION_NO_DOWN';

/**
 * A migration was refused or failed: an applied migration's file was edited
 * (`MIGRATION_CHECKSUM_MISMATCH`), an applied migration's file is gone (`MIGRATION_MISSING`), a
 * statement failed (`MIGRATION_FAILED`, rolled back when it ran in a transaction), a file could
 * not be read (`MIGRATION_FILE_INVALID`), or a migration has no down part (`MIGRATION_NO_DOWN`).
 *
 * @example
 * ```ts
 * import { MigrationError } from 'bulwark/postgres';
 * const err = new MigrationError('MIGRATION_FAILED', '0002_add_email', 'syntax error');
 * console.log(err.code, err.migration); // MIGRATION_FAILED 0002_add_email
 * ```
 */
export class MigrationError extends BulwarkError {
  override readonly code: MigrationErrorCode;
  /** The migration (`version_name`). */
  readonly migration: string;
  constructor(code: MigrationErrorCode, migration: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
    this.migration = migration;
    nonRetryable(this);
  }
}

/** PostgreSQL SQLSTATEs a whole transaction is retried on: serialization failure and deadlock. */
export const RETRYABLE_TX_SQLSTATES: ReadonlySet<string> = new Set(['40001', '40P01']);

/** The SQLSTATE of a driver error, if it has one. @internal */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}

/**
 * True for an error PostgreSQL itself sent (an ErrorResponse with a SQLSTATE), on a connection
 * that is still usable: the statement definitely failed. Connection loss, class 08 and the
 * shutdown codes 57P01-57P03 are not (the server may have gone away mid-statement). @internal
 */
export function isDefiniteServerError(error: unknown): boolean {
  const state = sqlState(error);
  if (state === undefined || typeof (error as { severity?: unknown }).severity !== 'string') return false;
  return !state.startsWith('08') && !state.startsWith('57P');
}

/**
 * True for a failure to reach PostgreSQL (refused, reset, timed out, class 08, shutdown codes,
 * too many connections): what a pool's breaker counts. @internal
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const state = sqlState(error);
  if (state !== undefined && (state.startsWith('08') || state.startsWith('57P') || state === '53300'))
    return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  const message = (error as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(
      message,
    )
  );
}
