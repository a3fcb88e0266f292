/**
 * The small structural view of `pg` that `bulwark/postgres` needs: any pg `Pool` and pool client
 * fit, and so do other drivers with the same shape. No type from `pg` is required.
 * @module
 */

/** A query result: rows, the row count and the command tag. */
export interface QueryResultLike<R = Record<string, unknown>> {
  readonly rows: R[];
  readonly rowCount: number | null;
  readonly command?: string;
}

/** Something that runs SQL: a pg `Client`, a pool client, a `Pool`, or a `Transaction`. */
export interface Queryable {
  // biome-ignore lint/suspicious/noExplicitAny: rows are whatever the caller's query returns
  query<R = any>(text: string, values?: readonly unknown[]): Promise<QueryResultLike<R>>;
}

/** A connection checked out of a pool: `release()` returns it, `release(error)` destroys it. */
export interface PoolClientLike extends Queryable {
  release(destroy?: Error | boolean): void;
}

/** A connection pool: `connect()` checks a connection out. A pg `Pool` fits. */
export interface PoolLike {
  connect(): Promise<PoolClientLike>;
}
