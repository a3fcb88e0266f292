/**
 * PostgreSQL backups: `pg_dump -Fc` streamed into the backup (hashed, optionally encrypted) while,
 * in the same exported snapshot, each table's row count and checksum are recorded; restores with
 * `pg_restore -j`; and the same figures read from a restored copy for `verify`.
 * @module
 */

import { join } from 'node:path';
import type { Keyring } from '../durable/encryption.js';
import { quoteIdent } from '../postgres/migration-drivers.js';
import { loadPg } from '../postgres/pool.js';
import type { ManifestFile, TableStats } from './manifest.js';
import { pgTool, runToCompletion, runTool, splitPassword, toolVersion, withDatabase } from './pg-tools.js';
import { writeStored } from './stored-file.js';

/** How much of each table is recorded: row count and checksum (default), count only, or nothing. */
export type TableStatsMode = 'checksum' | 'count' | 'none';

interface PgClient {
  connect(): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: rows of catalog queries
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
  end(): Promise<void>;
  on(event: 'error', l: (e: Error) => void): unknown;
}

/** Opens a pg client on `url`. @internal */
export async function pgClient(url: string): Promise<PgClient> {
  const pg = (await loadPg()) as unknown as { Client: new (c: { connectionString: string }) => PgClient };
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Per-table figures of the database `client` is connected to (in its current snapshot). @internal */
export async function tableStats(client: PgClient, mode: TableStatsMode): Promise<TableStats[]> {
  if (mode === 'none') return [];
  const { rows } = await client.query(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
     ORDER BY 1, 2`,
  );
  const out: TableStats[] = [];
  for (const r of rows) {
    const qualified = `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`;
    const sql =
      mode === 'checksum'
        ? `SELECT count(*)::bigint AS rows, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS checksum FROM ONLY ${qualified} t`
        : `SELECT count(*)::bigint AS rows, '' AS checksum FROM ONLY ${qualified}`;
    const {
      rows: [s],
    } = await client.query(sql);
    out.push({ name: `${r.schema}.${r.name}`, rows: Number(s.rows), checksum: s.checksum as string });
  }
  return out;
}

/** The server's major version and full version. @internal */
export async function serverVersion(client: PgClient): Promise<{ major: number; full: string }> {
  const { rows } = await client.query(
    `SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n`,
  );
  return { major: Math.floor(rows[0].n / 10_000), full: String(rows[0].v).split(' ')[0]! };
}

/** What a PostgreSQL dump produced. @internal */
export interface PgDumpResult {
  readonly files: ManifestFile[];
  readonly tables: TableStats[];
  readonly versions: Record<string, string>;
}

/**
 * Dumps the database at `url` into `dir/database.dump` with `pg_dump -Fc`, recording table figures
 * in the same snapshot while the dump runs. @internal
 */
export async function dumpPostgres(o: {
  url: string;
  dir: string;
  id: string;
  ring: Keyring | undefined;
  stats: TableStatsMode;
  binDir?: string | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
}): Promise<PgDumpResult> {
  const client = await pgClient(o.url);
  try {
    const version = await serverVersion(client);
    const pgDump = pgTool('pg_dump', o.binDir, version.major);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await client.query('SELECT pg_export_snapshot() AS s');
    const { url, env } = splitPassword(o.url);
    const dump = runTool(pgDump, ['-Fc', `--snapshot=${rows[0].s}`, `--dbname=${url}`], env);
    if (o.onBytes !== undefined) {
      let n = 0;
      const report = o.onBytes;
      dump.stdout.on('data', (d: Buffer) => {
        n += d.length;
        report(n);
      });
    }
    const name = 'database.dump';
    const stored = writeStored(dump.stdout, join(o.dir, name), o.ring, `${o.id}/${name}`);
    // Counted in the dump's snapshot, on this connection, while pg_dump streams.
    const tablesP = tableStats(client, o.stats);
    const [file, tables] = await Promise.all([stored, tablesP, dump.done]).catch((error: unknown) => {
      dump.kill();
      throw error;
    });
    await client.query('COMMIT');
    return {
      files: [{ name, ...file }],
      tables,
      versions: { server: version.full, pg_dump: toolVersion(pgDump) },
    };
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when the database at `url` has no table outside the system schemas. @internal */
export async function isEmptyDatabase(url: string): Promise<boolean> {
  const client = await pgClient(url);
  try {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','S') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    );
    return rows[0].n === 0;
  } finally {
    await client.end().catch(() => {});
  }
}

/** CREATE DATABASE / DROP DATABASE through the server's `postgres` database. @internal */
export async function createDatabase(url: string, name: string): Promise<void> {
  const client = await pgClient(withDatabase(url, 'postgres'));
  try {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** @internal */
export async function dropDatabase(url: string, name: string): Promise<void> {
  const client = await pgClient(withDatabase(url, 'postgres'));
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** `pg_restore -j jobs --no-owner --exit-on-error` of the plaintext dump at `file` into `url`. @internal */
export async function restorePostgres(o: {
  file: string;
  url: string;
  jobs: number;
  binDir?: string | undefined;
}): Promise<Record<string, string>> {
  const client = await pgClient(o.url);
  let major: number;
  try {
    major = (await serverVersion(client)).major;
  } finally {
    await client.end().catch(() => {});
  }
  const pgRestore = pgTool('pg_restore', o.binDir, major);
  const { url, env } = splitPassword(o.url);
  await runToCompletion(
    pgRestore,
    ['-j', String(o.jobs), '--no-owner', '--exit-on-error', `--dbname=${url}`, o.file],
    env,
  );
  return { pg_restore: toolVersion(pgRestore) };
}

/** Per-table figures of the database at `url` (for verify). @internal */
export async function statsOf(url: string, mode: TableStatsMode): Promise<TableStats[]> {
  const client = await pgClient(url);
  try {
    return await tableStats(client, mode);
  } finally {
    await client.end().catch(() => {});
  }
}
