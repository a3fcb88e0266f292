/**
 * The embedded audit store: one SQLite file (better-sqlite3, an optional peer loaded on first
 * use). A batch is one `BEGIN IMMEDIATE … COMMIT` (one fsync with `synchronous = FULL`), so the
 * log's group commit costs one sync per batch. Triggers refuse UPDATE and DELETE of entries.
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import { s } from '../core/schema.js';
import type { AuditEntry, StoredPayload } from './entry.js';
import { GENESIS_HASH } from './entry.js';
import { BulwarkAuditError, loadPeer } from './errors.js';
import * as S from './store.js';

/** Options of `sqliteAuditStore`. */
export interface SqliteAuditStoreOptions {
  /** Database file (created if missing) or `':memory:'`. */
  readonly path: string;
  /** `FULL` (default: an acknowledged append survives a power loss) or `NORMAL`. */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** Table name prefix. Default `bulwark_audit`. */
  readonly table?: string;
  /** How long a write waits for another process's lock, ms. Default 10 000. */
  readonly busyTimeoutMs?: number;
}

const optionsSchema = s.object({
  path: s.string(),
  synchronous: s.optional(s.oneOf(['FULL', 'NORMAL'] as const), 'FULL'),
  table: s.optional(
    s.string({ pattern: /^[A-Za-z_][A-Za-z0-9_]{0,40}$/, patternRule: 'a plain SQL identifier' }),
    'bulwark_audit',
  ),
  busyTimeoutMs: s.optional(s.duration(), 10_000),
});

type Stmt = BetterSqlite3.Statement<unknown[], unknown>;
type AppendTx = BetterSqlite3.Transaction<
  (batch: readonly S.PreparedEntry[], chain: S.Chainer) => AuditEntry[]
>;

/**
 * Rows per multi-row INSERT at most: a group of 64 entries goes in with one statement for the
 * entries and one for their payloads, instead of a statement a row (a statement is prepared once
 * per row count, at most 2 × CHUNK of them).
 */
const CHUNK = 64;

/**
 * The SQLite audit store.
 *
 * @example
 * ```ts
 * import { openAuditLog, sqliteAuditStore } from 'bulwark/audit';
 * const log = openAuditLog({ store: sqliteAuditStore({ path: ':memory:' }) });
 * await log.append({ actor: 'alice', action: 'login', resource: 'app' });
 * await log.close();
 * ```
 */
export class SqliteAuditStore implements S.AuditStore {
  readonly description: string;
  readonly #o: Required<SqliteAuditStoreOptions>;
  #db: BetterSqlite3.Database | undefined;
  #s: Record<string, Stmt> = {};
  /** Multi-row INSERTs by row count: entries under +n, payloads under -n. */
  readonly #rows = new Map<number, Stmt>();
  #appendTx: AppendTx | undefined;
  #opening: Promise<void> | undefined;

  constructor(options: SqliteAuditStoreOptions) {
    this.#o = optionsSchema.parse(options, 'sqliteAuditStore') as Required<SqliteAuditStoreOptions>;
    this.description = `sqlite:${this.#o.path}`;
  }

  init(): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    const Database = await loadPeer(
      'better-sqlite3',
      async () => (await import('better-sqlite3')).default,
      'sqliteAuditStore',
    );
    let db: BetterSqlite3.Database;
    try {
      db = new Database(this.#o.path, { timeout: this.#o.busyTimeoutMs });
    } catch (cause) {
      throw new BulwarkAuditError(
        'STORE_UNAVAILABLE',
        `Cannot open the audit database ${this.description}: ${String(cause)}`,
        { cause },
      );
    }
    const t = this.#o.table;
    if (this.#o.path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.#o.synchronous}`);
    const schema = `
      CREATE TABLE IF NOT EXISTS ${t}_entries (
        seq INTEGER PRIMARY KEY, v INTEGER NOT NULL, time INTEGER NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, tags TEXT NOT NULL,
        subject TEXT, payload_digest TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS ${t}_entries_time ON ${t}_entries (time);
      CREATE INDEX IF NOT EXISTS ${t}_entries_subject ON ${t}_entries (subject) WHERE subject IS NOT NULL;
      CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t}_entries
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t}_entries
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
      CREATE TABLE IF NOT EXISTS ${t}_payloads (seq INTEGER PRIMARY KEY, salt BLOB NOT NULL, body BLOB NOT NULL, key_id TEXT);
      CREATE TABLE IF NOT EXISTS ${t}_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
      INSERT OR IGNORE INTO ${t}_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
      CREATE TABLE IF NOT EXISTS ${t}_checkpoints (tree_size INTEGER PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS ${t}_holds (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    `;
    db.transaction(() => db.exec(schema)).immediate();
    const p = (sql: string): Stmt => db.prepare(sql);
    this.#s = {
      head: p(`SELECT seq, hash FROM ${t}_head WHERE id = 1`),
      setHead: p(`UPDATE ${t}_head SET seq = ?, hash = ? WHERE id = 1`),
      scan: p(`SELECT * FROM ${t}_entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`),
      scanPayloads: p(`SELECT * FROM ${t}_payloads WHERE seq > ? ORDER BY seq LIMIT ?`),
      payload: p(`SELECT * FROM ${t}_payloads WHERE seq = ?`),
      deletePayload: p(`DELETE FROM ${t}_payloads WHERE seq = ?`),
      replacePayload: p(`UPDATE ${t}_payloads SET body = ?, key_id = ? WHERE seq = ? AND key_id IS ?`),
      addCheckpoint: p(`INSERT OR REPLACE INTO ${t}_checkpoints (tree_size, body) VALUES (?, ?)`),
      checkpoints: p(`SELECT body FROM ${t}_checkpoints ORDER BY tree_size`).pluck(),
      putHold: p(`INSERT OR REPLACE INTO ${t}_holds (id, body) VALUES (?, ?)`),
      deleteHold: p(`DELETE FROM ${t}_holds WHERE id = ?`),
      holds: p(`SELECT body FROM ${t}_holds ORDER BY id`).pluck(),
    };
    // One transaction function for every append (its BEGIN IMMEDIATE / COMMIT are prepared once).
    this.#appendTx = db.transaction((batch: readonly S.PreparedEntry[], chain: S.Chainer) => {
      const st = this.#s;
      const head = st.head!.get() as S.AuditHead;
      const entries = chain(S.rowToHead(head), batch);
      for (let i = 0; i < entries.length; i += CHUNK) {
        const n = Math.min(CHUNK, entries.length - i);
        this.#insertRows(n).run(S.entryParams(entries, i, n));
        const pv = S.payloadParams(entries, batch, i, n);
        if (pv.length > 0) this.#insertRows(-pv.length / 4).run(pv);
      }
      const last = entries[entries.length - 1];
      if (last !== undefined) st.setHead!.run(last.seq, last.hash);
      return entries;
    });
    this.#db = db;
  }

  /** The INSERT of `n` entry rows (n > 0) or of -n payload rows (n < 0), prepared on first use. */
  #insertRows(n: number): Stmt {
    let st = this.#rows.get(n);
    if (st === undefined) {
      const t = this.#o.table;
      st =
        n > 0
          ? this.#db!.prepare(
              `INSERT INTO ${t}_entries (${S.ENTRY_COLUMNS.join(', ')}) VALUES ${S.valuesSql(n, S.ENTRY_COLUMNS.length, () => '?')}`,
            )
          : this.#db!.prepare(
              `INSERT INTO ${t}_payloads (seq, salt, body, key_id) VALUES ${S.valuesSql(-n, 4, () => '?')}`,
            );
      this.#rows.set(n, st);
    }
    return st;
  }

  #ready(): Record<string, Stmt> {
    if (this.#db === undefined) {
      throw new BulwarkAuditError(
        'CLOSED',
        `The audit store ${this.description} is closed or not initialised`,
      );
    }
    return this.#s;
  }

  async append(batch: readonly S.PreparedEntry[], chain: S.Chainer): Promise<AuditEntry[]> {
    this.#ready();
    return this.#appendTx!.immediate(batch, chain);
  }

  async head(): Promise<S.AuditHead> {
    return S.rowToHead(this.#ready().head!.get() as S.AuditHead);
  }

  scan(fromSeq: number, toSeq: number, pageSize: number): AsyncIterable<AuditEntry[]> {
    return S.scanPages(fromSeq, toSeq, pageSize, (next, to, size) => {
      return this.#ready().scan!.all(next, to, size) as S.EntryRow[];
    });
  }

  async list(filter: S.AuditFilter): Promise<AuditEntry[]> {
    this.#ready();
    const t = this.#o.table;
    const q = S.filterSql(filter, () => '?', `${t}_payloads`);
    const rows = this.#db!.prepare(
      `SELECT e.* FROM ${t}_entries e ${q.where} ORDER BY e.seq ${q.order} LIMIT ${q.limit}`,
    ).all(...q.params) as S.EntryRow[];
    return rows.map(S.rowToEntry);
  }

  async payloads(seqs: readonly number[]): Promise<StoredPayload[]> {
    const st = this.#ready();
    const out: StoredPayload[] = [];
    for (const seq of seqs) {
      const r = st.payload!.get(seq) as S.PayloadRow | undefined;
      if (r !== undefined) out.push(S.rowToPayload(r));
    }
    return out;
  }

  async scanPayloads(afterSeq: number, limit: number): Promise<StoredPayload[]> {
    return (this.#ready().scanPayloads!.all(afterSeq, limit) as S.PayloadRow[]).map(S.rowToPayload);
  }

  async deletePayloads(seqs: readonly number[]): Promise<number> {
    const st = this.#ready();
    return this.#db!.transaction(() =>
      seqs.reduce((n, seq) => n + st.deletePayload!.run(seq).changes, 0),
    ).immediate();
  }

  async replacePayloads(
    rows: readonly { row: StoredPayload; expectKeyId: string | null }[],
  ): Promise<number> {
    const st = this.#ready();
    return this.#db!.transaction(() =>
      rows.reduce(
        (n, { row, expectKeyId }) =>
          n + st.replacePayload!.run(row.body, row.keyId, row.seq, expectKeyId).changes,
        0,
      ),
    ).immediate();
  }

  async addCheckpoint(c: S.Checkpoint): Promise<void> {
    this.#ready().addCheckpoint!.run(c.treeSize, JSON.stringify(c));
  }

  async checkpoints(): Promise<S.Checkpoint[]> {
    return (this.#ready().checkpoints!.all() as string[]).map((b) => JSON.parse(b) as S.Checkpoint);
  }

  async putHold(h: S.LegalHold): Promise<void> {
    this.#ready().putHold!.run(h.id, JSON.stringify(h));
  }

  async deleteHold(id: string): Promise<boolean> {
    return this.#ready().deleteHold!.run(id).changes > 0;
  }

  async holds(): Promise<S.LegalHold[]> {
    return (this.#ready().holds!.all() as string[]).map((b) => JSON.parse(b) as S.LegalHold);
  }

  async close(): Promise<void> {
    await this.#opening?.catch(() => {});
    this.#db?.close();
    this.#db = undefined;
    this.#appendTx = undefined;
    this.#rows.clear();
  }
}

/**
 * Creates a SQLite audit store (one file; the default store of `openAuditLog`).
 *
 * @example
 * ```ts
 * import { openAuditLog, sqliteAuditStore } from 'bulwark/audit';
 * const log = openAuditLog({ store: sqliteAuditStore({ path: ':memory:', synchronous: 'FULL' }) });
 * await log.close();
 * ```
 */
export function sqliteAuditStore(options: SqliteAuditStoreOptions): SqliteAuditStore {
  return new SqliteAuditStore(options);
}
