/**
 * withTransaction against the real PostgreSQL: commit/rollback, savepoints, two conflicting
 * SERIALIZABLE transactions (both complete, one retried), a real deadlock (retried), and a
 * connection killed while COMMIT is in flight (through the TCP proxy) → AmbiguousCommitError,
 * never retried.
 */

import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRegistry } from '../src/core/registry.js';
import {
  AmbiguousCommitError,
  createPool,
  type PoolClientLike,
  type PoolLike,
  TransactionRolledBackError,
  withTransaction,
} from '../src/postgres/index.js';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName } from './support/postgres.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const schema = uniqueName('bw_tx');
let pool: pg.Pool;

function barrier(n: number): () => Promise<void> {
  let waiting = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return async () => {
    if (++waiting >= n) open();
    await opened;
  };
}

describePg('withTransaction (real PostgreSQL)', () => {
  beforeAll(async () => {
    pool = pgPool({ max: 8 });
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(`CREATE TABLE ${schema}.doctors (id int PRIMARY KEY, on_call boolean NOT NULL)`);
    await pool.query(`CREATE TABLE ${schema}.items (id serial PRIMARY KEY, v text NOT NULL)`);
    await pool.query(`CREATE TABLE ${schema}.accounts (id int PRIMARY KEY, balance int NOT NULL)`);
  });
  afterAll(async () => {
    await pool.end();
    await dropSchema(schema);
  });

  it('commits, rolls back on a throw, and nested calls are savepoints', async () => {
    await withTransaction(pool, async (tx) => {
      await tx.query(`INSERT INTO ${schema}.items (v) VALUES ('a')`);
      await withTransaction(tx, async (sp) => {
        expect(sp.depth).toBe(1);
        await sp.query(`INSERT INTO ${schema}.items (v) VALUES ('b')`);
        throw new Error('inner fails');
      }).catch(() => {});
      await withTransaction(tx, (sp) => sp.query(`INSERT INTO ${schema}.items (v) VALUES ('c')`));
    });
    await expect(
      withTransaction(pool, async (tx) => {
        await tx.query(`INSERT INTO ${schema}.items (v) VALUES ('d')`);
        throw new Error('outer fails');
      }),
    ).rejects.toThrow('outer fails');
    const { rows } = await pool.query(`SELECT v FROM ${schema}.items ORDER BY v`);
    expect(rows.map((r) => r.v)).toEqual(['a', 'c']);
  });

  it('a caught statement error without a savepoint: COMMIT answers ROLLBACK → TransactionRolledBackError', async () => {
    await expect(
      withTransaction(pool, async (tx) => {
        await tx.query(`INSERT INTO ${schema}.items (v) VALUES ('e')`);
        await tx.query('SELECT * FROM no_such_table_here').catch(() => {});
      }),
    ).rejects.toBeInstanceOf(TransactionRolledBackError);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${schema}.items WHERE v = 'e'`);
    expect(rows[0].n).toBe(0);
  });

  it('statementTimeoutMs cancels a slow statement (57014, not retried); an abort rolls back', async () => {
    let runs = 0;
    await expect(
      withTransaction(
        pool,
        async (tx) => {
          runs++;
          await tx.query('SELECT pg_sleep(2)');
        },
        { statementTimeoutMs: 50 },
      ),
    ).rejects.toMatchObject({ code: '57014' });
    expect(runs).toBe(1);
    const ac = new AbortController();
    const p = withTransaction(
      pool,
      async (tx) => {
        await tx.query(`INSERT INTO ${schema}.items (v) VALUES ('aborted')`);
        setTimeout(() => ac.abort(new Error('caller gave up')), 20);
        await tx.query('SELECT pg_sleep(2)');
      },
      { signal: ac.signal },
    );
    await expect(p).rejects.toThrow('caller gave up');
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${schema}.items WHERE v = 'aborted'`);
    expect(rows[0].n).toBe(0);
  });

  it('two conflicting SERIALIZABLE transactions: both complete, one of them retried', async () => {
    await pool.query(`INSERT INTO ${schema}.doctors VALUES (1, true), (2, true)`);
    const bothRead = barrier(2);
    const attempts: number[][] = [[], []];
    // Write skew: each reads that two doctors are on call and takes a different one off call.
    const goOff = (who: number) =>
      withTransaction(
        pool,
        async (tx) => {
          attempts[who - 1]!.push(tx.attempt);
          const { rows } = await tx.query(`SELECT count(*)::int AS n FROM ${schema}.doctors WHERE on_call`);
          if (tx.attempt === 1) await bothRead();
          if (rows[0].n >= 2)
            await tx.query(`UPDATE ${schema}.doctors SET on_call = false WHERE id = $1`, [who]);
          return rows[0].n as number;
        },
        { isolation: 'serializable' },
      );
    const results = await Promise.all([goOff(1), goOff(2)]);
    const retried = attempts.filter((a) => a.length > 1);
    expect(retried).toHaveLength(1); // exactly one was retried…
    expect(results.sort()).toEqual([1, 2]); // …and on its retry it saw the other's commit
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${schema}.doctors WHERE on_call`);
    expect(rows[0].n).toBe(1); // the invariant holds: one doctor stays on call
  });

  it('a real deadlock (40P01) is retried and both transactions complete', async () => {
    await pool.query(`INSERT INTO ${schema}.accounts VALUES (1, 100), (2, 100)`);
    const bothLocked = barrier(2);
    let total = 0;
    let retried = false;
    const transfer = (from: number, to: number) =>
      withTransaction(pool, async (tx) => {
        total++;
        if (tx.attempt > 1) retried = true;
        await tx.query(`UPDATE ${schema}.accounts SET balance = balance - 10 WHERE id = $1`, [from]);
        if (tx.attempt === 1) await bothLocked();
        await tx.query(`UPDATE ${schema}.accounts SET balance = balance + 10 WHERE id = $1`, [to]);
      });
    await Promise.all([transfer(1, 2), transfer(2, 1)]);
    expect(total).toBeGreaterThanOrEqual(3); // at least one of the two ran again after 40P01
    expect(retried).toBe(true);
    const { rows } = await pool.query(`SELECT balance FROM ${schema}.accounts ORDER BY id`);
    expect(rows.map((r) => r.balance)).toEqual([100, 100]);
  });

  it('the connection killed while COMMIT is in flight → AmbiguousCommitError, no retry', async () => {
    const proxy: TcpProxy = await startTcpProxy({ port: 5432 });
    const registry = createRegistry();
    const resilient = await createPool({
      connectionString: pgConnectionString(proxy.port),
      max: 2,
      name: 'viaProxy',
      registry,
    });
    // A pool whose clients cut the connection right after sending COMMIT.
    const cutting: PoolLike = {
      async connect(): Promise<PoolClientLike> {
        const client = await resilient.connect();
        return {
          query: (text: string, values?: readonly unknown[]) => {
            const p = client.query(text, values as unknown[]);
            if (text === 'COMMIT') setImmediate(() => proxy.dropAll());
            return p;
          },
          release: (d) => client.release(d),
        };
      },
    };
    let runs = 0;
    const err = await withTransaction(cutting, async (tx) => {
      runs++;
      await tx.query(`INSERT INTO ${schema}.items (v) VALUES ('maybe')`);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmbiguousCommitError);
    expect((err as AmbiguousCommitError).code).toBe('COMMIT_OUTCOME_UNKNOWN');
    expect((err as Error).message).toMatch(/may or may not have been committed/);
    expect(runs).toBe(1);
    expect(registry.get('postgresPool', 'viaProxy')).toBe(resilient);
    // The pool recovers: a fresh connection works.
    const { rows } = await resilient.query('SELECT 1 AS one');
    expect(rows[0].one).toBe(1);
    await resilient.end();
    await proxy.close();
  });
});
