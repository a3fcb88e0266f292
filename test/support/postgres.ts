/**
 * The real PostgreSQL the PostgreSQL tests run against (127.0.0.1:5432, database `test`, trust
 * auth). On CI (CI=true) the tests must run: when PostgreSQL is unreachable they fail. Elsewhere
 * they are skipped, with a message.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const PG_DATABASE = 'test';
const USERS = ['postgres', 'root'];

/** Connection string for `user` at `host:port` (the proxy in fault tests uses another port). */
export function pgUrl(user: string, port = PG_PORT, host = PG_HOST): string {
  return `postgres://${user}@${host}:${port}/${PG_DATABASE}`;
}

async function probe(): Promise<string | undefined> {
  for (const user of USERS) {
    const c = new pg.Client({ connectionString: pgUrl(user), connectionTimeoutMillis: 1000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
      return user;
    } catch {
      // next user
    } finally {
      await c.end().catch(() => {});
    }
  }
  return undefined;
}

/** The role that connected (`postgres` or `root`), or undefined when PostgreSQL is unreachable. */
export const pgUser = await probe();
/** True when PostgreSQL answered. */
export const pgUp = pgUser !== undefined;
const onCi = process.env.CI === 'true';
if (!pgUp && !onCi) {
  console.warn(
    `PostgreSQL tests SKIPPED: no PostgreSQL at ${PG_HOST}:${PG_PORT}/${PG_DATABASE} (start one; with CI=true they fail instead)`,
  );
}

/** The connection string of the test database (throws on CI when PostgreSQL is unreachable). */
export function pgConnectionString(port = PG_PORT): string {
  if (pgUser === undefined) {
    throw new Error(`PostgreSQL at ${PG_HOST}:${PG_PORT}/${PG_DATABASE} is unreachable (CI=${String(onCi)})`);
  }
  return pgUrl(pgUser, port);
}

/** `describe` for PostgreSQL tests: runs when PostgreSQL is up or on CI (where it then fails). */
export const describePg = pgUp || onCi ? describe : describe.skip;

/** A fresh lower-case identifier (schema or queue name), unique to one test. */
export function uniqueName(prefix = 'bw_test'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A pool on the test database (throws on CI when it is unreachable). */
export function pgPool(options: { max?: number; port?: number } = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: pgConnectionString(options.port), max: options.max ?? 4 });
  pool.on('error', () => {});
  return pool;
}

/** Drops `schema` (and everything in it) if it exists. */
export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgConnectionString() });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Polls `cond` every 10 ms until it holds or `deadlineMs` passes; returns whether it held. */
export async function until(cond: () => Promise<boolean> | boolean, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}
