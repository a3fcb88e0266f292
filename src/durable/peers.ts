/**
 * The optional peer packages of the stores (`pg`, `better-sqlite3`), loaded on first use: each
 * caller says which error a missing package is (its own capability's error and advice).
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import type * as Pg from 'pg';

/**
 * The `Pool` class of `pg` (ESM or CommonJS build); throws `missing(cause)` when `pg` is not
 * installed. @internal
 *
 * @example
 * ```ts nocheck
 * const Pool = await loadPgPool((cause) => new Error('npm install pg', { cause }));
 * const pool = new Pool({ connectionString: 'postgres://localhost/test' });
 * ```
 */
export async function loadPgPool(missing: (cause: unknown) => Error): Promise<typeof Pg.Pool> {
  let mod: typeof Pg;
  try {
    mod = await import('pg');
  } catch (cause) {
    throw missing(cause);
  }
  return (mod as unknown as { default?: typeof Pg }).default?.Pool ?? mod.Pool;
}

/**
 * The `Database` class of `better-sqlite3`; throws `missing(cause)` when it is not installed.
 * @internal
 *
 * @example
 * ```ts nocheck
 * const Database = await loadBetterSqlite3((cause) => new Error('npm install better-sqlite3', { cause }));
 * const db = new Database(':memory:');
 * ```
 */
export async function loadBetterSqlite3(missing: (cause: unknown) => Error): Promise<typeof BetterSqlite3> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (cause) {
    throw missing(cause);
  }
}
