/**
 * SQLite backups through SQLite's online backup API (better-sqlite3's `db.backup()`): a
 * consistent copy taken while the application keeps writing. Table figures are read from the
 * copy; `verify` checks a restored copy with `PRAGMA integrity_check` and the same figures.
 * @module
 */

import { createHash } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Keyring } from '../durable/encryption.js';
import { loadSqlite, quoteIdent } from '../postgres/migration-drivers.js';
import type { ManifestFile, TableStats } from './manifest.js';
import { writeStored } from './stored-file.js';

interface Db {
  backup(path: string): Promise<unknown>;
  prepare(sql: string): {
    // biome-ignore lint/suspicious/noExplicitAny: rows of arbitrary tables
    all(...a: unknown[]): any[];
    raw(on?: boolean): { iterate(): Iterable<unknown[]> };
  };
  pragma(sql: string, o?: { simple?: boolean }): unknown;
  close(): void;
}

function cell(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { b: v.toString('base64') };
  if (typeof v === 'bigint') return { n: v.toString() };
  return v;
}

/** Row count and SHA-256 of the rows (ordered by every column) of each table of an open SQLite database. @internal */
export function sqliteTableStats(db: Db): TableStats[] {
  const tables = db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
    .all()
    .map((r) => r.name as string);
  return tables.map((name) => {
    const cols = db.prepare(`SELECT count(*) AS n FROM pragma_table_info(?)`).all(name)[0].n as number;
    const order = Array.from({ length: cols }, (_, i) => String(i + 1)).join(', ');
    const hash = createHash('sha256');
    let rows = 0;
    for (const row of db
      .prepare(`SELECT * FROM ${quoteIdent(name)} ORDER BY ${order}`)
      .raw(true)
      .iterate()) {
      hash.update(JSON.stringify((row as unknown[]).map(cell)));
      hash.update('\n');
      rows++;
    }
    return { name, rows, checksum: hash.digest('hex') };
  });
}

/** Opens a SQLite file (read-only when asked). @internal */
export async function openSqlite(path: string, readonly = false): Promise<Db> {
  const Database = (await loadSqlite()) as unknown as new (
    p: string,
    o?: { readonly?: boolean; fileMustExist?: boolean },
  ) => Db;
  return new Database(path, { readonly, fileMustExist: true });
}

/** Backs the SQLite database at `path` up into `dir/database.sqlite`. @internal */
export async function backupSqlite(o: {
  path: string;
  dir: string;
  id: string;
  ring: Keyring | undefined;
}): Promise<{ files: ManifestFile[]; tables: TableStats[]; versions: Record<string, string> }> {
  const source = await openSqlite(o.path);
  const copy = join(o.dir, '.copy.sqlite');
  let version: string;
  try {
    await source.backup(copy);
    version = String(source.prepare('SELECT sqlite_version() AS v').all()[0].v);
  } finally {
    source.close();
  }
  try {
    const snap = await openSqlite(copy, true);
    let tables: TableStats[];
    try {
      tables = sqliteTableStats(snap);
    } finally {
      snap.close();
    }
    const name = 'database.sqlite';
    const stored = await writeStored(createReadStream(copy), join(o.dir, name), o.ring, `${o.id}/${name}`);
    return { files: [{ name, ...stored }], tables, versions: { sqlite: version } };
  } finally {
    rmSync(copy, { force: true });
  }
}

/** Checks a restored SQLite file: integrity_check, then its table figures. @internal */
export async function checkSqlite(path: string): Promise<{ integrity: string; tables: TableStats[] }> {
  const db = await openSqlite(path, true);
  try {
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    return { integrity, tables: sqliteTableStats(db) };
  } finally {
    db.close();
  }
}
