import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { AmbiguousCommitError, TransactionRolledBackError } from './errors.js';
import { withTransaction } from './transaction.js';
import type { PoolClientLike, PoolLike } from './types.js';

/** A scripted pool: `fail(text, n)` decides what the n-th statement of that text throws. */
function fakePool(fail: (text: string, n: number) => unknown = () => undefined) {
  const log: string[] = [];
  const released: (Error | boolean | undefined)[] = [];
  const counts = new Map<string, number>();
  const pool: PoolLike = {
    async connect(): Promise<PoolClientLike> {
      log.push('connect');
      return {
        async query(text: string) {
          log.push(text);
          const n = (counts.get(text) ?? 0) + 1;
          counts.set(text, n);
          const e = fail(text, n);
          if (e !== undefined) throw e;
          return {
            rows: [],
            rowCount: 0,
            command: text === 'COMMIT' && e === undefined ? 'COMMIT' : (text.split(' ')[0] ?? ''),
          };
        },
        release(d) {
          released.push(d);
        },
      };
    },
  };
  return { pool, log, released };
}

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code, severity: 'ERROR' });

describe('withTransaction (scripted pool)', () => {
  it('BEGIN with isolation, read only, deferrable and SET LOCAL statement_timeout in one round trip', async () => {
    const { pool, log } = fakePool();
    await withTransaction(pool, (tx) => tx.query('SELECT 1'), {
      isolation: 'serializable',
      readOnly: true,
      deferrable: true,
      statementTimeoutMs: 250,
    });
    expect(log).toEqual([
      'connect',
      'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE; SET LOCAL statement_timeout = 250',
      'SELECT 1',
      'COMMIT',
    ]);
  });

  it('40001 at COMMIT (a definite failure) is retried on a fresh connection', async () => {
    const { pool, log } = fakePool((t, n) => (t === 'COMMIT' && n === 1 ? pgError('40001') : undefined));
    const attempts: number[] = [];
    await withTransaction(pool, (tx) => {
      attempts.push(tx.attempt);
    });
    expect(attempts).toEqual([1, 2]);
    expect(log.filter((l) => l === 'connect')).toHaveLength(2);
  });

  it('a connection error during COMMIT → AmbiguousCommitError, not retried, connection destroyed', async () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const { pool, released } = fakePool((t) => (t === 'COMMIT' ? reset : undefined));
    let runs = 0;
    const err = await withTransaction(pool, () => {
      runs++;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmbiguousCommitError);
    expect((err as AmbiguousCommitError).cause).toBe(reset);
    expect(runs).toBe(1);
    expect(released[0]).toBe(reset);
  });

  it('57P01 (admin shutdown) at COMMIT is ambiguous too; a unique violation at COMMIT is definite and not retried', async () => {
    const a = fakePool((t) => (t === 'COMMIT' ? pgError('57P01') : undefined));
    await expect(withTransaction(a.pool, () => {})).rejects.toBeInstanceOf(AmbiguousCommitError);
    const b = fakePool((t) => (t === 'COMMIT' ? pgError('23505') : undefined));
    await expect(withTransaction(b.pool, () => {})).rejects.toMatchObject({ code: '23505' });
    expect(b.log.filter((l) => l === 'connect')).toHaveLength(1);
  });

  it('a deadlock in a statement is retried up to maxAttempts, then thrown', async () => {
    const { pool, log } = fakePool((t) => (t === 'UPDATE x' ? pgError('40P01') : undefined));
    await expect(
      withTransaction(pool, (tx) => tx.query('UPDATE x'), { retry: { maxAttempts: 3 } }),
    ).rejects.toMatchObject({
      code: '40P01',
    });
    expect(log.filter((l) => l === 'ROLLBACK')).toHaveLength(3);
    const none = fakePool((t) => (t === 'UPDATE x' ? pgError('40P01') : undefined));
    await expect(
      withTransaction(none.pool, (tx) => tx.query('UPDATE x'), { retry: false }),
    ).rejects.toMatchObject({ code: '40P01' });
    expect(none.log.filter((l) => l === 'connect')).toHaveLength(1);
  });

  it('savepoints: released on success, rolled back to on a throw; nested options refused', async () => {
    const { pool, log } = fakePool();
    await withTransaction(pool, async (tx) => {
      await withTransaction(tx, (sp) => sp.query('INSERT a'));
      await withTransaction(tx, async (sp) => {
        await withTransaction(sp, () => {
          throw new Error('deep');
        }).catch(() => {});
      });
      await expect(withTransaction(tx, () => {}, { readOnly: true })).rejects.toBeInstanceOf(ConfigError);
    });
    expect(log).toEqual([
      'connect',
      'BEGIN',
      'SAVEPOINT bulwark_sp_1',
      'INSERT a',
      'RELEASE SAVEPOINT bulwark_sp_1',
      'SAVEPOINT bulwark_sp_1',
      'SAVEPOINT bulwark_sp_2',
      'ROLLBACK TO SAVEPOINT bulwark_sp_2',
      'RELEASE SAVEPOINT bulwark_sp_1',
      'COMMIT',
    ]);
  });

  it('COMMIT answering ROLLBACK → TransactionRolledBackError; bad options → ConfigError', async () => {
    const pool: PoolLike = {
      async connect() {
        return {
          query: async (t: string) => ({
            rows: [],
            rowCount: 0,
            command: t === 'COMMIT' ? 'ROLLBACK' : 'BEGIN',
          }),
          release() {},
        };
      },
    };
    await expect(withTransaction(pool, () => {})).rejects.toBeInstanceOf(TransactionRolledBackError);
    await expect(withTransaction(pool, () => {}, { isolation: 'snapshot' as never })).rejects.toThrow(
      /withTransaction.isolation must be one of/,
    );
    await expect(withTransaction(pool, () => {}, { statmentTimeoutMs: 5 } as never)).rejects.toThrow(
      /did you mean withTransaction.statementTimeoutMs/,
    );
  });
});
