/**
 * How store failures are told apart: "the store is unreachable" (`STORE_UNAVAILABLE`, retryable)
 * versus "your configuration is wrong" (`STORE_CONFIG`: bad URL, missing database, not a database
 * file, no permission — a retry cannot help), each naming the store and never a password.
 * @module
 */

import { BulwarkDurableError, storeError } from './errors.js';

const PG_TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '40001', // serialization_failure (a retry will do)
  '40P01', // deadlock_detected
]);

/** PostgreSQL errors that say the configuration is wrong: retrying cannot help. */
const PG_CONFIG_CODES: Readonly<Record<string, string>> = {
  ENOTFOUND: 'the host name does not resolve',
  '3D000': 'the database does not exist',
  '28P01': 'the password was refused',
  '28000': 'the user may not connect (pg_hba.conf or role)',
  '42501': 'the user lacks a privilege the store needs',
  '3F000': 'the schema does not exist',
  '42P01': 'a table of the store is missing',
};

const PG_TRANSIENT_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection closed|not queryable|ended by the server|terminating connection|the database system is (starting up|shutting down|in recovery)/i;

function codeOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** True when `error` means the database is unreachable or the connection broke (worth retrying). */
export function isPgUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = codeOf(error);
  if (code !== undefined && (PG_TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && PG_TRANSIENT_MESSAGE.test(message);
}

/**
 * A PostgreSQL driver error as the typed error it stands for (`STORE_CONFIG` or
 * `STORE_UNAVAILABLE`), or the error itself when it is neither (a bug, a constraint). @internal
 */
export function classifyPg(error: unknown, store: string): unknown {
  if (error instanceof BulwarkDurableError) return error;
  const code = codeOf(error);
  const config = code === undefined ? undefined : PG_CONFIG_CODES[code];
  if (config !== undefined) return storeError('STORE_CONFIG', store, config, error);
  if (isPgUnavailable(error))
    return storeError('STORE_UNAVAILABLE', store, 'the database is unavailable', error);
  return error;
}

/**
 * A failure to open a SQLite database file as a typed error: the file is not a database, cannot be
 * opened (a directory, a missing directory, no permission), is missing (read-only opens), or is
 * busy (another process holds the lock: retryable). @internal
 */
export function classifySqliteOpen(error: unknown, store: string, readOnly: boolean): BulwarkDurableError {
  if (error instanceof BulwarkDurableError) return error;
  const code = codeOf(error) ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_IOERR'))
    return storeError('STORE_UNAVAILABLE', store, 'the database is busy or its disk failed', error);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
    return storeError('STORE_CONFIG', store, 'the file is not a SQLite database (or it is corrupt)', error);
  if (readOnly && (code === 'SQLITE_CANTOPEN' || /does not exist/i.test(message)))
    return storeError('STORE_NOT_FOUND', store, 'no database file at this path', error);
  if (/directory does not exist/i.test(message))
    return storeError('STORE_CONFIG', store, 'the directory of the database file does not exist', error);
  if (code === 'SQLITE_CANTOPEN')
    return storeError(
      'STORE_CONFIG',
      store,
      'the database file cannot be opened (a directory? no permission?)',
      error,
    );
  if (code === 'SQLITE_PERM' || code === 'SQLITE_READONLY' || code === 'SQLITE_AUTH')
    return storeError('STORE_CONFIG', store, 'no permission to use the database file', error);
  return storeError('STORE_CONFIG', store, 'the database cannot be opened', error);
}

/** The `READ_ONLY` refusal of a store opened read-only. @internal */
export function readOnlyError(store: string): BulwarkDurableError {
  return new BulwarkDurableError(
    'READ_ONLY',
    `Store ${store} was opened read-only; open it without readOnly to change it`,
    { store },
  );
}
