/**
 * The options of the PostgreSQL store, their schema (one `ConfigError` path for every bad option),
 * and what they settle to: the schema name (also from `?schema=`), the connection string, and a
 * description naming host, port and database — never the user or password.
 * @module
 */

import type { Pool } from 'pg';
import { s } from '../core/schema.js';

/**
 * Options of {@link postgresStore}.
 *
 * @example
 * ```ts
 * import type { PostgresStoreOptions } from 'bulwark/durable';
 * const options: PostgresStoreOptions = { connectionString: 'postgres://app@db/app', schema: 'jobs', poolSize: 20 };
 * console.log(options.schema); // jobs
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A `postgres://` connection string; a `schema` query parameter (`?schema=jobs`) sets the schema
   * when `schema` is not given. Ignored when `pool` is given. Default: the `pg` defaults
   * (`PG*` environment variables).
   */
  readonly connectionString?: string;
  /**
   * A `pg.Pool` of your own. The store uses it and does not close it; its LISTEN connection is one
   * client checked out of this pool for as long as someone subscribes.
   */
  readonly pool?: Pool;
  /** Schema holding the tables (created by `init`). Default `'bulwark'`. */
  readonly schema?: string;
  /** Connections of the store's own pool (plus one for LISTEN). Default 10. */
  readonly poolSize?: number;
  /** How long to wait for a connection before a call fails with `STORE_UNAVAILABLE`. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Client-side limit per statement of the store's own pool; a statement over it fails with
   * `STORE_UNAVAILABLE` and its connection is discarded (catches half-open connections). Default 30000 ms.
   */
  readonly queryTimeoutMs?: number;
  /** Send NOTIFY on enqueue, retry and redrive so that idle workers elsewhere wake at once. Default true. */
  readonly notify?: boolean;
  /**
   * Commit claims, completes and lease extensions without waiting for the WAL flush
   * (`synchronous_commit = off` for those statements only; enqueues, failures and dead-lettering
   * always wait). Safe for at-least-once delivery: if the PostgreSQL server itself crashes, the
   * last few hundred milliseconds of claims and completes may be lost, and those items simply run
   * again (a lost claim was never claimed; a lost completion expires and re-runs). Default true.
   */
  readonly asyncAcks?: boolean;
  /** How often the LISTEN connection is pinged (a failed or slow ping reconnects it). Default 10000 ms. */
  readonly listenCheckMs?: number;
  /** Called with errors of background work (the LISTEN connection). Default: ignored. */
  readonly onError?: (error: unknown) => void;
}

const IDENT = /^[a-z_][a-z0-9_]{0,47}$/;
const IDENT_RULE = 'a lower-case identifier of at most 48 characters ([a-z_][a-z0-9_]*)';

/** Masks the password of a connection string (for errors). */
export function redactUrl(text: string): string {
  return text.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

const connectionString = s.custom('a postgres:// or postgresql:// URL', (v, path) => {
  const rule = 'a postgres:// or postgresql:// URL';
  if (typeof v !== 'string' || v === '') return s.fail(path, rule, v);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return s.fail(path, rule, redactUrl(v));
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return s.fail(path, rule, redactUrl(v));
  const schema = url.searchParams.get('schema');
  if (schema !== null && !IDENT.test(schema))
    s.fail(path, `a URL whose schema parameter is ${IDENT_RULE}`, redactUrl(v));
  return v;
});

const optionsSchema = s.object({
  connectionString: s.optional(connectionString),
  pool: s.optional(
    s.custom('a pg.Pool', (v, path) =>
      typeof v === 'object' && v !== null && typeof (v as { connect?: unknown }).connect === 'function'
        ? (v as Pool)
        : s.fail(path, 'a pg.Pool', v),
    ),
  ),
  schema: s.optional(s.string({ pattern: IDENT, patternRule: IDENT_RULE })),
  poolSize: s.optional(s.int({ min: 1, max: 1000 })),
  connectTimeoutMs: s.optional(s.int({ min: 1 })),
  queryTimeoutMs: s.optional(s.int({ min: 1 })),
  notify: s.optional(s.boolean()),
  asyncAcks: s.optional(s.boolean()),
  listenCheckMs: s.optional(s.int({ min: 10 })),
  onError: s.optional(s.fn<(error: unknown) => void>()),
});

/** Validates the options and settles the schema, connection string and description. @internal */
export function settlePostgresOptions(options: PostgresStoreOptions): {
  schema: string;
  connectionString: string | undefined;
  description: string;
} {
  optionsSchema.parse(options, 'postgresStore');
  let schema = options.schema;
  let connectionString = options.connectionString;
  let description = 'postgres';
  if (connectionString !== undefined) {
    const url = new URL(connectionString);
    const fromUrl = url.searchParams.get('schema');
    if (fromUrl !== null) {
      url.searchParams.delete('schema');
      connectionString = url.toString();
      schema ??= fromUrl;
    }
    description = `postgres://${url.host}${url.pathname}`;
  } else if (options.pool !== undefined) {
    const o = (
      options.pool as unknown as { options?: { host?: unknown; port?: unknown; database?: unknown } }
    ).options;
    if (o !== undefined && typeof o.host === 'string') {
      description = `postgres://${o.host}${o.port === undefined ? '' : `:${String(o.port)}`}/${String(o.database ?? '')}`;
    }
  }
  const sch = schema ?? 'bulwark';
  return { schema: sch, connectionString, description: `${description}?schema=${sch}` };
}
