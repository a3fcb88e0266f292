/**
 * Running statements on a `pg` pool client: borrowing one (a broken connection is destroyed, not
 * reused) and running work in a transaction on it. Shared by the PostgreSQL stores.
 * @module
 */

import type { Pool, PoolClient } from 'pg';

/**
 * Runs `fn` on a client of `pool`: errors mapped by `wrap`; a client whose connection broke is
 * released as broken (destroyed, not reused). @internal
 *
 * @example
 * ```ts nocheck
 * const n = await withPoolClient(pool, (e) => e, async (c) => (await c.query('SELECT 1')).rowCount);
 * ```
 */
export async function withPoolClient<T>(
  pool: Pool,
  wrap: (error: unknown) => unknown,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw wrap(error);
  }
  let broken: unknown;
  const onError = (e: unknown) => {
    broken = e;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (error) {
    throw wrap(error);
  } finally {
    client.removeListener('error', onError);
    client.release(broken === undefined ? undefined : (broken as Error));
  }
}

/** What `inTransaction` needs of a client: simple-protocol statements. @internal */
export interface TextQueryClient {
  query(text: string): Promise<unknown>;
}

/**
 * Runs `begin` (`BEGIN`, or `BEGIN` and more statements in one round trip), then `fn`, then
 * `COMMIT`; when any of them fails, `ROLLBACK` (its own failure ignored) and rethrows. @internal
 *
 * @example
 * ```ts nocheck
 * const id = await inTransaction(client, 'BEGIN', async (c) => (await c.query('INSERT …')).rows[0]);
 * ```
 */
export async function inTransaction<C extends TextQueryClient, T>(
  client: C,
  begin: string,
  fn: (client: C) => Promise<T>,
): Promise<T> {
  try {
    await client.query(begin);
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
