/**
 * The PostgreSQL store's SQL: the schema's migrations, the row shape, and the hot statements
 * (prepared once per connection, named per schema).
 * @module
 */

import type { QueryResultRow } from 'pg';
import { pgFeaturesMigration } from './pg-features-sql.js';
import type { ItemRow } from './rows.js';
import type { EnqueueOutcome, NewItem } from './store.js';

/**
 * The latest schema version this code creates and understands (`<schema>.schema_version`).
 *
 * @example
 * ```ts nocheck
 * import { POSTGRES_SCHEMA_VERSION } from 'bulwark/durable/postgres-store';
 * console.log(POSTGRES_SCHEMA_VERSION); // 3
 * ```
 */
export const POSTGRES_SCHEMA_VERSION = 3;

export interface Row extends ItemRow, QueryResultRow {}

export const COLUMNS =
  'id, queue, payload, key_id, key, priority, run_at, state, attempts, max_attempts, created_at, updated_at, last_error, dead_reason, redrives, last_redrive_at, lease_token, lease_until, timeout_ms, progress';

export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The schema's DDL, by version. Each runs once, in order, under the migration lock. */
export function migrations(s: string): readonly string[] {
  return [
    // v1
    `CREATE TABLE ${s}.items (
       queue text NOT NULL,
       id text COLLATE "C" NOT NULL,
       payload bytea NOT NULL,
       key_id text,
       key text,
       priority integer NOT NULL DEFAULT 0,
       run_at bigint NOT NULL,
       state text NOT NULL CHECK (state IN ('pending', 'active', 'completed', 'dead')),
       attempts integer NOT NULL DEFAULT 0,
       max_attempts integer NOT NULL,
       created_at bigint NOT NULL,
       updated_at bigint NOT NULL,
       last_error text,
       dead_reason text,
       redrives integer NOT NULL DEFAULT 0,
       last_redrive_at bigint,
       lease_token text,
       lease_until bigint,
       PRIMARY KEY (queue, id)
     );
     CREATE INDEX items_ready ON ${s}.items (queue, priority DESC, run_at, id) WHERE state = 'pending';
     CREATE INDEX items_leases ON ${s}.items (queue, lease_until) WHERE state = 'active';
     CREATE INDEX items_terminal ON ${s}.items (queue, state, updated_at) WHERE state IN ('completed', 'dead');
     CREATE TABLE ${s}.keys (
       queue text NOT NULL,
       key text NOT NULL,
       item_id text COLLATE "C" NOT NULL,
       released_at bigint,
       PRIMARY KEY (queue, key)
     );
     CREATE INDEX keys_released ON ${s}.keys (queue, released_at) WHERE released_at IS NOT NULL;`,
    // v2: fleet-wide pause
    `CREATE TABLE ${s}.paused (queue text PRIMARY KEY, paused_at bigint NOT NULL);`,
    // v3: per-item timeout and progress, schedules, fleet-wide limits
    pgFeaturesMigration(s),
  ];
}

export interface Statement {
  readonly name: string;
  readonly text: string;
}

/** The hot statements, prepared once per connection (named per schema). */
export function statements(s: string, schema: string, asyncAcks: boolean) {
  const named = (name: string, text: string): Statement => ({
    name: `bulwark3_${schema}_${asyncAcks ? 'a' : 's'}_${name}`,
    text,
  });
  // set_config(…, true) lasts until the end of the statement's own (implicit) transaction.
  const cfg = asyncAcks
    ? `cfg AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v), `
    : '';
  const withCfg = asyncAcks ? ', cfg' : '';
  const input = `SELECT t.id, substring($3::bytea FROM t.off + 1 FOR t.len) AS payload, t.key_id, t.key, t.priority,
        t.run_at, t.max_attempts, t.created_at, t.now
      FROM unnest($2::text[], $4::text[], $5::text[], $6::int4[], $7::int8[], $8::int4[], $9::int8[], $10::int8[], $11::int4[], $12::int4[])
      AS t(id, key_id, key, priority, run_at, max_attempts, created_at, now, off, len)`;
  const insertCols = `(queue, id, payload, key_id, key, priority, run_at, state, attempts, max_attempts, created_at, updated_at)`;
  const enqueuePlain = (notify: boolean) => `WITH ins AS (
      INSERT INTO ${s}.items ${insertCols}
      SELECT $1, id, payload, key_id, key, priority, run_at, 'pending', 0, max_attempts, created_at, now FROM (${input}) i
      RETURNING id
    )${notify ? ', n AS MATERIALIZED (SELECT pg_notify($13, $1))' : ''}
    SELECT ins.id, NULL::text AS existing FROM ins${notify ? ' CROSS JOIN n' : ''}`;
  const enqueueKeyed = (notify: boolean) => `WITH input AS MATERIALIZED (${input}),
    k AS (
      INSERT INTO ${s}.keys (queue, key, item_id)
      SELECT $1, key, id FROM input WHERE key IS NOT NULL
      ON CONFLICT (queue, key) DO UPDATE SET item_id = ${s}.keys.item_id
      RETURNING key, item_id
    ), ins AS (
      INSERT INTO ${s}.items ${insertCols}
      SELECT $1, i.id, i.payload, i.key_id, i.key, i.priority, i.run_at, 'pending', 0, i.max_attempts, i.created_at, i.now
      FROM input i LEFT JOIN k ON k.key = i.key
      WHERE i.key IS NULL OR k.item_id = i.id
      RETURNING id
    )${notify ? ', n AS MATERIALIZED (SELECT pg_notify($13, $1))' : ''}
    SELECT i.id, k.item_id AS existing
    FROM input i LEFT JOIN k ON k.key = i.key${notify ? ' CROSS JOIN n' : ''}`;
  const failText = `UPDATE ${s}.items SET state = $5, run_at = COALESCE($6::bigint, run_at),
      last_error = $7, dead_reason = $8, lease_token = NULL, lease_until = NULL, updated_at = $4
    WHERE queue = $1 AND id = $2 AND lease_token = $3 AND state = 'active' AND lease_until > $4
    RETURNING id`;
  return {
    enqueue: named('enqueue', enqueuePlain(false)),
    enqueueNotify: named('enqueue_n', enqueuePlain(true)),
    enqueueKeys: named('enqueue_k', enqueueKeyed(false)),
    enqueueKeysNotify: named('enqueue_kn', enqueueKeyed(true)),
    claim: named(
      'claim',
      `WITH ${cfg}expired AS MATERIALIZED (
         SELECT id, priority, run_at FROM ${s}.items
         WHERE queue = $1 AND state = 'active' AND lease_until <= $2 AND NOT EXISTS (SELECT 1 FROM ${s}.paused p WHERE p.queue = $1)
         ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED
       ), ready AS MATERIALIZED (
         SELECT id, priority, run_at FROM ${s}.items
         WHERE queue = $1 AND state = 'pending' AND run_at <= $2 AND NOT EXISTS (SELECT 1 FROM ${s}.paused p WHERE p.queue = $1)
         ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
       ), pick AS MATERIALIZED (
         SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM ready) c
         ORDER BY priority DESC, run_at, id LIMIT $3
       )
       UPDATE ${s}.items i SET state = 'active', attempts = i.attempts + 1,
         lease_token = gen_random_uuid()::text, lease_until = $4, updated_at = $2
       FROM pick${withCfg} WHERE i.queue = $1 AND i.id = pick.id
       RETURNING i.id, i.payload, i.key_id, i.key, i.priority, i.run_at, i.attempts, i.max_attempts,
         i.created_at, i.last_error, i.dead_reason, i.redrives, i.last_redrive_at, i.lease_token,
         i.timeout_ms`,
    ),
    complete: named(
      'complete',
      `WITH ${cfg}refs AS (SELECT * FROM unnest($2::text[], $3::text[], $4::int8[]) AS r(id, token, now)),
       done AS (
         UPDATE ${s}.items i SET state = 'completed', lease_token = NULL, lease_until = NULL, updated_at = refs.now
         FROM refs${withCfg} WHERE i.queue = $1 AND i.id = refs.id AND i.lease_token = refs.token AND i.state = 'active' AND i.lease_until > refs.now
         RETURNING i.id, i.key, refs.token, refs.now
       ), k AS (
         UPDATE ${s}.keys k SET released_at = done.now FROM done
         WHERE done.key IS NOT NULL AND k.queue = $1 AND k.key = done.key AND k.item_id = done.id
       )
       SELECT id, token FROM done`,
    ),
    fail: named('fail', failText),
    notify: named('notify', 'SELECT pg_notify($1, $2)'),
    extend: named(
      'extend',
      `${asyncAcks ? `WITH ${cfg.slice(0, -2)} ` : ''}UPDATE ${s}.items SET lease_until = $4${withCfg === '' ? '' : ' FROM cfg'}
       WHERE queue = $1 AND id = $2 AND lease_token = $3 AND state = 'active' AND lease_until > $5 RETURNING id`,
    ),
  };
}

/** The colder statements (not prepared), by name. */
export function queries(s: string) {
  return {
    release: `WITH refs AS (SELECT * FROM unnest($2::text[], $3::text[]) AS r(id, token))
       UPDATE ${s}.items i SET state = 'pending', attempts = greatest(i.attempts - 1, 0),
         lease_token = NULL, lease_until = NULL, updated_at = $4
       FROM refs WHERE i.queue = $1 AND i.id = refs.id AND i.lease_token = refs.token
         AND i.state = 'active' AND i.lease_until > $4
       RETURNING i.id, refs.token`,
    listQueues: `WITH RECURSIVE q AS (
         (SELECT queue FROM ${s}.items ORDER BY queue LIMIT 1)
         UNION ALL
         SELECT (SELECT i.queue FROM ${s}.items i WHERE i.queue > q.queue ORDER BY i.queue LIMIT 1)
         FROM q WHERE q.queue IS NOT NULL
       )
       SELECT queue FROM q WHERE queue IS NOT NULL`,
    reclaim: `UPDATE ${s}.items SET state = 'pending', lease_token = NULL, lease_until = NULL, updated_at = $2
       WHERE queue = $1 AND state = 'active' AND lease_until <= $2`,
    stats: `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
              count(*) FILTER (WHERE state = 'pending' AND run_at > $2)::int AS delayed,
              count(*) FILTER (WHERE state = 'active')::int AS active,
              count(*) FILTER (WHERE state = 'completed')::int AS completed,
              count(*) FILTER (WHERE state = 'dead')::int AS dead,
              min(run_at) FILTER (WHERE state = 'pending' AND run_at <= $2) AS oldest
       FROM ${s}.items WHERE queue = $1`,
    get: `SELECT ${COLUMNS} FROM ${s}.items WHERE queue = $1 AND id = $2`,
    list: `SELECT ${COLUMNS} FROM ${s}.items
       WHERE queue = $1 AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
    listByUpdated: `SELECT ${COLUMNS} FROM ${s}.items
       WHERE queue = $1 AND ($2::text IS NULL OR state = $2) ORDER BY updated_at, id LIMIT $3`,
    redrive: `WITH sel AS MATERIALIZED (
         SELECT id, row_number() OVER (ORDER BY updated_at, id) AS rn FROM (
           SELECT id, updated_at FROM ${s}.items
           WHERE queue = $1 AND state = 'dead' AND ($2::text[] IS NULL OR id = ANY($2::text[]))
           ORDER BY updated_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) d
       ), upd AS (
         UPDATE ${s}.items i SET state = 'pending', attempts = 0, run_at = $4, updated_at = $4,
           redrives = i.redrives + 1, last_redrive_at = $4
         FROM sel WHERE i.queue = $1 AND i.id = sel.id AND i.state = 'dead'
         RETURNING i.id
       )
       SELECT upd.id FROM upd JOIN sel ON sel.id = upd.id ORDER BY sel.rn`,
    purge: `WITH del AS (
         DELETE FROM ${s}.items WHERE queue = $1 AND state = $2 AND ($3::bigint IS NULL OR updated_at < $3)
         RETURNING id, key
       ), k AS (
         DELETE FROM ${s}.keys k USING del
         WHERE $2 <> 'completed' AND del.key IS NOT NULL AND k.queue = $1 AND k.key = del.key AND k.item_id = del.id
       )
       SELECT count(*)::int AS n FROM del`,
    pause: `INSERT INTO ${s}.paused (queue, paused_at) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING`,
    resume: `DELETE FROM ${s}.paused WHERE queue = $1`,
    paused: `SELECT 1 FROM ${s}.paused WHERE queue = $1`,
    purgeCount: `SELECT count(*)::int AS n FROM ${s}.items WHERE queue = $1 AND state = $2 AND ($3::bigint IS NULL OR updated_at < $3)`,
    sweep: `WITH victims AS MATERIALIZED (
         (SELECT id FROM ${s}.items WHERE queue = $1 AND state = 'completed' AND updated_at <= $2
          ORDER BY updated_at LIMIT $5)
         UNION ALL
         (SELECT id FROM ${s}.items WHERE queue = $1 AND state = 'dead' AND updated_at <= $3
          ORDER BY updated_at LIMIT $5)
       ), del AS (
         DELETE FROM ${s}.items i USING (SELECT id FROM victims LIMIT $5) v
         WHERE i.queue = $1 AND i.id = v.id AND i.state IN ('completed', 'dead')
         RETURNING i.id, i.key, i.state
       ), kdead AS (
         DELETE FROM ${s}.keys k USING del
         WHERE del.state = 'dead' AND del.key IS NOT NULL AND k.queue = $1 AND k.key = del.key AND k.item_id = del.id
         RETURNING 1
       ), kold AS (
         DELETE FROM ${s}.keys k WHERE k.queue = $1 AND k.ctid = ANY(ARRAY(
           SELECT ctid FROM ${s}.keys WHERE queue = $1 AND released_at IS NOT NULL AND released_at <= $4 LIMIT $5))
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM del)::int AS items, (SELECT count(*) FROM kold)::int AS keys`,
    rewrapList: `SELECT ${COLUMNS} FROM ${s}.items
       WHERE queue = $1 AND key_id IS NOT NULL AND key_id <> $2 AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
    replace: `UPDATE ${s}.items SET payload = $4, key_id = $5
       WHERE queue = $1 AND id = $2 AND key_id IS NOT DISTINCT FROM $3 RETURNING id`,
  };
}

/** A client that runs plain statements (a `pg` PoolClient). */
interface SqlClient {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/** The schema's applied version, or null when the schema has no bulwark tables. Creates nothing. */
export async function schemaVersion(client: SqlClient, s: string): Promise<number | null> {
  const present = await client.query<{ p: boolean }>('SELECT to_regclass($1) IS NOT NULL AS p', [
    `${s}.schema_version`,
  ]);
  if (present.rows[0]?.p !== true) return null;
  const current = await client.query<{ v: number | null }>(
    `SELECT max(version) AS v FROM ${s}.schema_version`,
  );
  return current.rows[0]?.v ?? 0;
}

/**
 * Creates the schema and applies the missing migrations in one transaction under an advisory lock
 * (processes racing here migrate once). Returns the version found under the lock (newer than
 * this code: nothing applied, the caller refuses).
 */
export async function migrate(client: SqlClient, s: string, schema: string): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
      `bulwark.migrate.${schema}`,
    ]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_version`);
    const at = r.rows[0]?.v ?? 0;
    if (at > POSTGRES_SCHEMA_VERSION) {
      await client.query('ROLLBACK');
      return at;
    }
    const all = migrations(s);
    for (let v = at + 1; v <= POSTGRES_SCHEMA_VERSION; v++) {
      await client.query(all[v - 1]!);
      await client.query(`INSERT INTO ${s}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query('COMMIT');
    return at;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * The parameters of one enqueue statement for `items` (a repeated key within them is a duplicate
 * of its first occurrence), and how to turn the statement's rows into each item's outcome.
 */
export function insertParams(
  queue: string,
  items: readonly NewItem[],
  nows: readonly number[],
): {
  values: unknown[];
  anyKey: boolean;
  outcomes: (rows: readonly { id: string; existing: string | null }[]) => EnqueueOutcome[];
} {
  const n = items.length;
  let unique: readonly NewItem[] = items;
  let uniqueNows: readonly number[] = nows;
  let firstOfKey: Map<string, number> | undefined;
  let alias: number[] | undefined;
  for (let i = 0; i < n; i++) {
    const k = items[i]!.key;
    if (k === null) continue;
    firstOfKey ??= new Map();
    const first = firstOfKey.get(k);
    if (first === undefined) firstOfKey.set(k, i);
    else {
      alias ??= new Array<number>(n).fill(-1);
      alias[i] = first;
    }
  }
  if (alias !== undefined) {
    unique = items.filter((_, i) => alias[i] === -1);
    uniqueNows = nows.filter((_, i) => alias[i] === -1);
  }
  const m = unique.length;
  const ids = new Array<string>(m);
  // Payloads travel as ONE binary bytea plus offsets and lengths (a bytea[] would be hex text).
  const parts = new Array<Buffer>(m);
  const offs = new Array<number>(m);
  const lens = new Array<number>(m);
  let at = 0;
  const keyIds = new Array<string | null>(m);
  const keys = new Array<string | null>(m);
  const priorities = new Array<number>(m);
  const runAts = new Array<number>(m);
  const maxAttempts = new Array<number>(m);
  const createdAts = new Array<number>(m);
  let anyKey = false;
  for (let i = 0; i < m; i++) {
    const it = unique[i]!;
    ids[i] = it.id;
    const b = asBuffer(it.payload);
    parts[i] = b;
    offs[i] = at;
    lens[i] = b.length;
    at += b.length;
    keyIds[i] = it.keyId;
    keys[i] = it.key;
    if (it.key !== null) anyKey = true;
    priorities[i] = it.priority;
    runAts[i] = it.runAt;
    maxAttempts[i] = it.maxAttempts;
    createdAts[i] = it.createdAt;
  }
  const values: unknown[] = [
    queue,
    ids,
    m === 1 ? parts[0]! : Buffer.concat(parts, at),
    keyIds,
    keys,
    priorities,
    runAts,
    maxAttempts,
    createdAts,
    uniqueNows,
    offs,
    lens,
  ];
  const outcomes = (rows: readonly { id: string; existing: string | null }[]): EnqueueOutcome[] => {
    const byId = new Map<string, string | null>();
    for (const row of rows) byId.set(row.id, row.existing);
    const out = new Array<EnqueueOutcome>(n);
    for (let i = 0; i < n; i++) {
      const a = alias?.[i] ?? -1;
      if (a !== -1) {
        out[i] = { id: out[a]!.id, duplicate: true };
        continue;
      }
      const id = items[i]!.id;
      const existing = byId.get(id) ?? null;
      out[i] =
        existing !== null && existing !== id ? { id: existing, duplicate: true } : { id, duplicate: false };
    }
    return out;
  };
  return { values, anyKey, outcomes };
}
