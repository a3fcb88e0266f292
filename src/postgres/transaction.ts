/**
 * `withTransaction`: BEGIN … COMMIT with rollback on a throw or an abort, nested calls as
 * savepoints, and the whole transaction retried on a serialization failure (40001) or a deadlock
 * (40P01) through the core retry policy, each attempt on a fresh connection. A connection lost
 * while COMMIT is in flight is never retried: it ends in `AmbiguousCommitError`.
 * @module
 */

import { backoff } from '../core/backoff.js';
import { ConfigError } from '../core/errors.js';
import { handle } from '../core/handle.js';
import { type RetryPolicy, retry } from '../core/retry.js';
import { s } from '../core/schema.js';
import {
  AmbiguousCommitError,
  isConnectionError,
  isDefiniteServerError,
  RETRYABLE_TX_SQLSTATES,
  sqlState,
  TransactionRolledBackError,
} from './errors.js';
import type { PoolClientLike, PoolLike, Queryable, QueryResultLike } from './types.js';

/** Isolation levels of `withTransaction`. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** Options of `withTransaction()` (top level only; a nested call takes none but `name`). */
export interface TransactionOptions {
  /** Default `read committed` (the server's default). */
  isolation?: IsolationLevel;
  /** `READ ONLY`. Default false. */
  readOnly?: boolean;
  /** `DEFERRABLE` (only meaningful for serializable read-only transactions). Default false. */
  deferrable?: boolean;
  /**
   * How the whole transaction is retried on 40001 / 40P01: a retry policy of your own (its
   * `handle` decides), `{ maxAttempts }`, or `false` for no retry. Default 5 attempts with
   * exponential backoff from 10 ms to 1 s, full jitter.
   */
  retry?: RetryPolicy | false | { maxAttempts?: number };
  /** `SET LOCAL statement_timeout` for the transaction, ms (0 = none). Default: the session's. */
  statementTimeoutMs?: number;
  /** Aborting rolls the transaction back (the connection is closed if a statement is running). */
  signal?: AbortSignal;
}

/** A transaction in progress, passed to your function. Run nested transactions with `withTransaction(tx, fn)`. */
export interface Transaction extends Queryable {
  /** The underlying connection. */
  readonly client: PoolClientLike;
  /** 0 for the top-level transaction, 1+ for savepoints. */
  readonly depth: number;
  /** The attempt number of the top-level transaction (1-based). */
  readonly attempt: number;
}

const TX: unique symbol = Symbol('bulwark.transaction');

class Tx implements Transaction {
  readonly [TX] = true;
  constructor(
    readonly client: PoolClientLike,
    readonly depth: number,
    readonly attempt: number,
  ) {}
  // biome-ignore lint/suspicious/noExplicitAny: rows are whatever the caller's query returns
  query<R = any>(text: string, values?: readonly unknown[]): Promise<QueryResultLike<R>> {
    return values === undefined ? this.client.query<R>(text) : this.client.query<R>(text, values);
  }
}

function isTx(value: unknown): value is Tx {
  return typeof value === 'object' && value !== null && (value as { [TX]?: boolean })[TX] === true;
}

/** True for 40001 (serialization failure) and 40P01 (deadlock), also as a `cause`. */
export function isRetryableTransactionError(error: unknown): boolean {
  for (let e = error, i = 0; e !== undefined && e !== null && i < 5; i++) {
    const state = sqlState(e);
    if (state !== undefined && RETRYABLE_TX_SQLSTATES.has(state)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const DEFAULT_RETRY = retry({
  name: 'transaction',
  maxAttempts: 5,
  backoff: backoff.exponential({ initialMs: 10, maxMs: 1_000, jitter: 'full' }),
  handle: handle.errors(isRetryableTransactionError),
});

const optionsSchema = s.object({
  isolation: s.optional(s.oneOf(['read committed', 'repeatable read', 'serializable'] as const)),
  readOnly: s.optional(s.boolean()),
  deferrable: s.optional(s.boolean()),
  retry: s.optional(
    s.union(
      [
        s.custom('a retry policy', (v, p) =>
          typeof v === 'object' && v !== null && typeof (v as RetryPolicy).execute === 'function'
            ? (v as RetryPolicy)
            : s.fail(p, 'a retry policy', v),
        ),
        s.oneOf([false] as const),
        s.object({ maxAttempts: s.optional(s.int({ min: 1 })) }),
      ],
      'a retry policy, false, or { maxAttempts }',
    ),
  ),
  statementTimeoutMs: s.optional(s.int({ min: 0 })),
  signal: s.optional(
    s.custom('an AbortSignal', (v, p) => (v instanceof AbortSignal ? v : s.fail(p, 'an AbortSignal', v))),
  ),
});

/** The BEGIN statement (plus SET LOCAL) for `o`, built once per options object. */
function beginSql(o: TransactionOptions): string {
  let sql = 'BEGIN';
  if (o.isolation !== undefined) sql += ` ISOLATION LEVEL ${o.isolation.toUpperCase()}`;
  if (o.readOnly === true) sql += ' READ ONLY';
  if (o.deferrable === true) sql += ' DEFERRABLE';
  if (o.statementTimeoutMs !== undefined) sql += `; SET LOCAL statement_timeout = ${o.statementTimeoutMs}`;
  return sql;
}

function policyOf(o: TransactionOptions): RetryPolicy | null {
  if (o.retry === undefined) return DEFAULT_RETRY;
  if (o.retry === false) return null;
  if (typeof (o.retry as RetryPolicy).execute === 'function') return o.retry as RetryPolicy;
  return retry({
    name: 'transaction',
    maxAttempts: (o.retry as { maxAttempts?: number }).maxAttempts ?? 5,
    backoff: backoff.exponential({ initialMs: 10, maxMs: 1_000, jitter: 'full' }),
    handle: handle.errors(isRetryableTransactionError),
  });
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The transaction was aborted', 'AbortError');
}

/** Resolves like `p`, or rejects when `signal` aborts first. */
function untilAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** One attempt of a top-level transaction on a fresh connection. */
async function attemptOnce<T>(
  pool: PoolLike,
  fn: (tx: Transaction) => Promise<T> | T,
  begin: string,
  attempt: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  const client = await pool.connect();
  // A connection that may be mid-statement or broken is destroyed, not returned to the pool.
  let destroy: Error | undefined;
  try {
    await client.query(begin);
    let result: T;
    try {
      result = await untilAbort(
        Promise.resolve().then(() => fn(new Tx(client, 0, attempt))),
        signal,
      );
      if (signal?.aborted === true) throw abortError(signal);
    } catch (error) {
      if (signal?.aborted === true)
        destroy = new Error('transaction aborted'); // a statement may still run
      else {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          destroy = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
      }
      throw error;
    }
    let commit: QueryResultLike;
    try {
      commit = await client.query('COMMIT');
    } catch (error) {
      // The server answered: COMMIT definitely failed (e.g. 40001 at commit), nothing was applied.
      if (isDefiniteServerError(error)) throw error;
      destroy = error instanceof Error ? error : new Error(String(error));
      throw new AmbiguousCommitError(error);
    }
    // COMMIT of a transaction in the aborted state answers ROLLBACK (a caught statement error).
    if (commit.command === 'ROLLBACK') throw new TransactionRolledBackError();
    return result;
  } catch (error) {
    if (
      destroy === undefined &&
      (isConnectionError(error) || (sqlState(error) !== undefined && !isDefiniteServerError(error)))
    ) {
      destroy = error instanceof Error ? error : new Error(String(error));
    }
    throw error;
  } finally {
    client.release(destroy);
  }
}

/** A savepoint inside `parent`. */
async function savepoint<T>(parent: Tx, fn: (tx: Transaction) => Promise<T> | T): Promise<T> {
  const depth = parent.depth + 1;
  const name = `bulwark_sp_${depth}`;
  await parent.client.query(`SAVEPOINT ${name}`);
  let result: T;
  try {
    result = await fn(new Tx(parent.client, depth, parent.attempt));
  } catch (error) {
    await parent.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
    throw error;
  }
  await parent.client.query(`RELEASE SAVEPOINT ${name}`);
  return result;
}

/**
 * Runs `fn` in a transaction and commits, or rolls back when `fn` throws or `signal` aborts.
 *
 * - `target` is a pool (a pg `Pool`, a `resilientPool`): a new transaction on a connection of
 *   its own. Or a `Transaction` given to an enclosing `fn`: a savepoint, rolled back on its own
 *   when `fn` throws (the enclosing transaction carries on); a nested call takes no options.
 * - The whole transaction is retried on 40001 / 40P01 (serialization failure, deadlock), also
 *   when COMMIT reports them, each attempt on a fresh connection: `fn` must be safe to run
 *   again (keep side effects outside, or make them idempotent). `tx.attempt` says which attempt.
 * - A connection lost while COMMIT is in flight throws `AmbiguousCommitError`
 *   (`COMMIT_OUTCOME_UNKNOWN`) and is never retried.
 * - A statement error caught inside `fn` leaves PostgreSQL's transaction aborted; COMMIT then
 *   throws `TransactionRolledBackError` (use a nested call around statements whose errors you handle).
 *
 * @example
 * ```ts nocheck
 * import pg from 'pg';
 * import { withTransaction } from 'bulwark/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const id = await withTransaction(pool, async (tx) => {
 *   const { rows } = await tx.query('INSERT INTO orders (total) VALUES ($1) RETURNING id', [42]);
 *   await withTransaction(tx, (sp) => sp.query('INSERT INTO audit (what) VALUES ($1)', ['order'])).catch(() => {});
 *   return rows[0].id;
 * }, { isolation: 'serializable', statementTimeoutMs: 5_000 });
 * ```
 */
export function withTransaction<T>(
  target: PoolLike | Transaction,
  fn: (tx: Transaction) => Promise<T> | T,
  options?: TransactionOptions,
): Promise<T> {
  if (typeof fn !== 'function') {
    return Promise.reject(new ConfigError('withTransaction.fn', 'a function (tx) => …', fn));
  }
  if (isTx(target)) {
    if (options !== undefined && Object.keys(options).length > 0) {
      return Promise.reject(
        new ConfigError(
          'withTransaction.options',
          'no options for a nested transaction (a savepoint inherits the enclosing transaction)',
          options,
        ),
      );
    }
    return savepoint(target, fn);
  }
  if (typeof (target as PoolLike | null)?.connect !== 'function') {
    return Promise.reject(
      new ConfigError('withTransaction.target', 'a pool (with connect()) or a Transaction', target),
    );
  }
  let o: TransactionOptions;
  try {
    o = options === undefined ? {} : (optionsSchema.parse(options, 'withTransaction') as TransactionOptions);
  } catch (error) {
    return Promise.reject(error);
  }
  const begin = options === undefined ? 'BEGIN' : beginSql(o);
  const policy = options === undefined ? DEFAULT_RETRY : policyOf(o);
  const pool = target as PoolLike;
  if (policy === null) return attemptOnce(pool, fn, begin, 1, o.signal);
  return policy.execute(
    (ctx) => attemptOnce(pool, fn, begin, ctx.attempt, o.signal),
    o.signal === undefined ? undefined : { signal: o.signal },
  );
}
