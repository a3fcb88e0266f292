/**
 * The client's replica: the records as the server last confirmed them, the pull cursor, the
 * clock and the operation counter, in a local SQLite file (better-sqlite3, an optional peer).
 * The client's own unacknowledged operations are not here: they live in the outbox and are laid
 * over these records when read.
 * @module
 */

import { loadBetterSqlite3 } from '../durable/peers.js';
import { BulwarkSyncError } from './errors.js';
import { isDeleted, type SyncRecord } from './record.js';

/** What a missing `better-sqlite3` package is. */
const NO_SQLITE = 'The sync client needs better-sqlite3: npm install better-sqlite3';

/** The local replica. @internal */
export interface Replica {
  get(entity: string, id: string): SyncRecord | undefined;
  list(entity: string): SyncRecord[];
  /** Every record (for comparisons and exports). */
  all(): SyncRecord[];
  /** Applies server records (a deleted one is removed) and the new cursor, in one transaction. */
  apply(records: readonly SyncRecord[], cursor: number): void;
  /** Drops every record and the cursor (the server's cursor expired). */
  reset(): void;
  meta(key: 'cursor' | 'hlc' | 'seq'): string | undefined;
  setMeta(key: 'hlc' | 'seq', value: string): void;
  close(): void;
}

interface Row {
  entity: string;
  id: string;
  fields: string;
  stamps: string;
  deleted: string | null;
  version: number;
}

const toRecord = (r: Row): SyncRecord => ({
  entity: r.entity,
  id: r.id,
  fields: JSON.parse(r.fields) as Record<string, unknown>,
  stamps: JSON.parse(r.stamps) as Record<string, string>,
  deleted: r.deleted,
  version: r.version,
});

/** Opens (creating) the replica at `path` (`:memory:` for none on disk). @internal */
export async function openReplica(path: string): Promise<Replica> {
  const Database = await loadBetterSqlite3(
    (cause) => new BulwarkSyncError('STORE_UNAVAILABLE', NO_SQLITE, { cause }),
  );
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 10000');
  db.exec(`CREATE TABLE IF NOT EXISTS records (entity TEXT NOT NULL, id TEXT NOT NULL, fields TEXT NOT NULL,
    stamps TEXT NOT NULL, deleted TEXT, version INTEGER NOT NULL, PRIMARY KEY (entity, id));
    CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);`);
  const getStmt = db.prepare<[string, string], Row>('SELECT * FROM records WHERE entity = ? AND id = ?');
  const listStmt = db.prepare<[string], Row>('SELECT * FROM records WHERE entity = ? ORDER BY id');
  const allStmt = db.prepare<[], Row>('SELECT * FROM records ORDER BY entity, id');
  const upsert = db.prepare(
    `INSERT INTO records (entity, id, fields, stamps, deleted, version) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (entity, id) DO UPDATE SET fields = excluded.fields, stamps = excluded.stamps,
       deleted = excluded.deleted, version = excluded.version`,
  );
  const remove = db.prepare('DELETE FROM records WHERE entity = ? AND id = ?');
  const getMeta = db.prepare<[string], { v: string }>('SELECT v FROM meta WHERE k = ?');
  const putMeta = db.prepare(
    'INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v',
  );
  const apply = db.transaction((records: readonly SyncRecord[], cursor: number) => {
    for (const r of records) {
      if (isDeleted(r)) remove.run(r.entity, r.id);
      else
        upsert.run(r.entity, r.id, JSON.stringify(r.fields), JSON.stringify(r.stamps), r.deleted, r.version);
    }
    putMeta.run('cursor', String(cursor));
  });
  // The cursor is read on every pull and by `snapshot()` (which must not do I/O, nor fail once
  // the replica is closed): kept in memory, written through.
  let cursorCache = getMeta.get('cursor')?.v;
  return {
    get: (entity, id) => {
      const r = getStmt.get(entity, id);
      return r === undefined ? undefined : toRecord(r);
    },
    list: (entity) => listStmt.all(entity).map(toRecord),
    all: () => allStmt.all().map(toRecord),
    apply: (records, cursor) => {
      apply(records, cursor);
      cursorCache = String(cursor);
    },
    reset: () => {
      db.exec("DELETE FROM records; DELETE FROM meta WHERE k = 'cursor';");
      cursorCache = undefined;
    },
    meta: (key) => (key === 'cursor' ? cursorCache : getMeta.get(key)?.v),
    setMeta: (key, value) => {
      putMeta.run(key, value);
    },
    close: () => db.close(),
  };
}
