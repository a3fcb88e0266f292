/**
 * The contract of an audit store (SQLite, PostgreSQL, or your own), and the row mapping both
 * built-in stores share.
 * @module
 */

import type { AuditEntry, AuditHeader, AuditOutcome, StoredPayload } from './entry.js';

/** The last entry of the log (seq 0 and the genesis hash when empty). */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** An entry ready to be chained: everything but seq, prevHash and hash. */
export interface PreparedEntry {
  readonly header: Omit<AuditHeader, 'seq' | 'prevHash'>;
  readonly payload: Omit<StoredPayload, 'seq'> | null;
}

/** Assigns seq, prevHash and hash to a batch after `head` (called inside the store's transaction). */
export type Chainer = (head: AuditHead, batch: readonly PreparedEntry[]) => AuditEntry[];

/** What `list` selects. Every field narrows; none means everything (up to `limit`). */
export interface AuditFilter {
  /** Entries with seq > afterSeq. */
  readonly afterSeq?: number;
  /** Entries with seq < beforeSeq. */
  readonly beforeSeq?: number;
  readonly actor?: string;
  readonly action?: string;
  readonly resource?: string;
  readonly outcome?: AuditOutcome;
  /** Entries carrying this tag. */
  readonly tag?: string;
  readonly subject?: string;
  /** Entries with time >= since (epoch ms). */
  readonly since?: number;
  /** Entries with time < until (epoch ms). */
  readonly until?: number;
  /** Only entries whose payload is still stored. */
  readonly hasPayload?: boolean;
  /** Default 100, at most 10 000. */
  readonly limit?: number;
  /** `asc` (default, oldest first) or `desc`. */
  readonly order?: 'asc' | 'desc';
}

/** A signed tree head, as stored and exported. */
export interface Checkpoint {
  readonly v: number;
  /** The log's name. */
  readonly log: string;
  readonly treeSize: number;
  /** RFC 6962 tree head over the entries' hashes, hex. */
  readonly rootHash: string;
  readonly time: number;
  /** Ed25519 signature (base64) over the canonical JSON of the other fields. */
  readonly signature: string;
  /** SHA-256 of the signer's raw public key, hex (first 16 characters). */
  readonly keyId: string;
}

/** A legal hold: while present, matching payloads are never purged. */
export interface LegalHold {
  readonly id: string;
  /** Entries carrying any of these tags (none and no subject: every entry). */
  readonly tags: readonly string[];
  readonly subject: string | null;
  readonly reason: string;
  readonly since: number;
}

/**
 * Where an audit log keeps its entries. Built in: `sqliteAuditStore`, `postgresAuditStore`.
 * Implementations must make `append` atomic (all of the batch or nothing) and durable when it
 * resolves, and must never update or delete entries.
 */
export interface AuditStore {
  /** Where it stores, for messages (no credentials). */
  readonly description: string;
  init(): Promise<void>;
  /** In one transaction: reads (and locks) the head, chains the batch after it, writes entries, payloads and the new head. */
  append(batch: readonly PreparedEntry[], chain: Chainer): Promise<AuditEntry[]>;
  /** The head as recorded with the last append. */
  head(): Promise<AuditHead>;
  /** Entries with `fromSeq <= seq <= toSeq`, in seq order, in pages of `pageSize`. */
  scan(fromSeq: number, toSeq: number, pageSize: number): AsyncIterable<AuditEntry[]>;
  list(filter: AuditFilter): Promise<AuditEntry[]>;
  /** The payload rows of these entries (those that still exist). */
  payloads(seqs: readonly number[]): Promise<StoredPayload[]>;
  /** Payload rows with seq > afterSeq, in seq order. */
  scanPayloads(afterSeq: number, limit: number): Promise<StoredPayload[]>;
  /** Deletes payload rows; returns how many existed. */
  deletePayloads(seqs: readonly number[]): Promise<number>;
  /** Replaces payload bodies whose key id is still `expectKeyId` (a re-wrap); returns how many changed. */
  replacePayloads(rows: readonly { row: StoredPayload; expectKeyId: string | null }[]): Promise<number>;
  addCheckpoint(c: Checkpoint): Promise<void>;
  /** Every stored checkpoint, by ascending tree size. */
  checkpoints(): Promise<Checkpoint[]>;
  putHold(h: LegalHold): Promise<void>;
  deleteHold(id: string): Promise<boolean>;
  holds(): Promise<LegalHold[]>;
  close(): Promise<void>;
}

/** The columns of an entry row, as both SQL stores name them. @internal */
export interface EntryRow {
  seq: number | string;
  v: number;
  time: number | string;
  actor: string;
  action: string;
  resource: string;
  outcome: string;
  tags: string;
  subject: string | null;
  payload_digest: string | null;
  prev_hash: string;
  hash: string;
}

/** Tags as stored: `,a,b,` (so `LIKE '%,a,%'` finds one; tags never hold commas). @internal */
export function tagsColumn(tags: readonly string[]): string {
  return tags.length === 0 ? ',' : `,${tags.join(',')},`;
}

/** The columns of a payload row, as both SQL stores name them. @internal */
export interface PayloadRow {
  seq: number | string;
  salt: Uint8Array;
  body: Uint8Array;
  key_id: string | null;
}

/** @internal */
export function rowToPayload(r: PayloadRow): StoredPayload {
  return { seq: Number(r.seq), salt: r.salt, body: r.body, keyId: r.key_id };
}

/** The head row (`seq` is a string where the driver reads BIGINT as one). @internal */
export function rowToHead(r: { seq: number | string; hash: string }): AuditHead {
  return { seq: Number(r.seq), hash: r.hash };
}

/**
 * `AuditStore.scan` over a store's page query: `page(next, toSeq, pageSize)` reads the entry rows
 * with `next <= seq <= toSeq` in seq order, at most `pageSize`. @internal
 */
export async function* scanPages(
  fromSeq: number,
  toSeq: number,
  pageSize: number,
  page: (next: number, toSeq: number, pageSize: number) => EntryRow[] | Promise<EntryRow[]>,
): AsyncIterable<AuditEntry[]> {
  let next = fromSeq;
  for (;;) {
    const rows = await page(next, toSeq, pageSize);
    if (rows.length === 0) return;
    const entries = rows.map(rowToEntry);
    yield entries;
    next = entries[entries.length - 1]!.seq + 1;
    if (rows.length < pageSize) return;
  }
}

/** @internal */
export function rowToEntry(r: EntryRow): AuditEntry {
  return {
    v: Number(r.v),
    seq: Number(r.seq),
    time: Number(r.time),
    actor: r.actor,
    action: r.action,
    resource: r.resource,
    outcome: r.outcome as AuditOutcome,
    tags: r.tags.split(',').filter((t) => t !== ''),
    subject: r.subject,
    payloadDigest: r.payload_digest,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** @internal The column values of an entry, in the order of `ENTRY_COLUMNS` (bench/audit.bench.ts binds them). */
export function entryValues(e: AuditEntry): unknown[] {
  return entryParams([e], 0, 1);
}

/**
 * @internal The parameters of a multi-row INSERT of `entries[from, from + n)`: each row's column
 * values in the order of `ENTRY_COLUMNS`, one flat array.
 */
export function entryParams(entries: readonly AuditEntry[], from: number, n: number): unknown[] {
  const width = ENTRY_COLUMNS.length; // the assignments below follow ENTRY_COLUMNS one for one
  const out = new Array<unknown>(n * width);
  for (let i = 0, o = 0; i < n; i++, o += width) {
    const e = entries[from + i]!;
    out[o] = e.seq;
    out[o + 1] = e.v;
    out[o + 2] = e.time;
    out[o + 3] = e.actor;
    out[o + 4] = e.action;
    out[o + 5] = e.resource;
    out[o + 6] = e.outcome;
    out[o + 7] = tagsColumn(e.tags);
    out[o + 8] = e.subject;
    out[o + 9] = e.payloadDigest;
    out[o + 10] = e.prevHash;
    out[o + 11] = e.hash;
  }
  return out;
}

/**
 * @internal The parameters of a multi-row INSERT of the payloads of `entries[from, from + n)`
 * (those that have one): `seq, salt, body, key_id` a row, one flat array (its length / 4 rows).
 * `batch` is what was chained into `entries`, index for index.
 */
export function payloadParams(
  entries: readonly AuditEntry[],
  batch: readonly PreparedEntry[],
  from: number,
  n: number,
): unknown[] {
  const out: unknown[] = [];
  for (let i = from; i < from + n; i++) {
    const p = batch[i]!.payload;
    if (p !== null) out.push(entries[i]!.seq, p.salt, p.body, p.keyId);
  }
  return out;
}

/** @internal `(p1,…,pc),(…)` for `rows` rows of `cols` parameters; `param(i)` renders the i-th (from 1). */
export function valuesSql(rows: number, cols: number, param: (i: number) => string): string {
  let out = '';
  for (let r = 0, i = 1; r < rows; r++) {
    out += r === 0 ? '(' : ',(';
    for (let c = 0; c < cols; c++, i++) out += c === 0 ? param(i) : `,${param(i)}`;
    out += ')';
  }
  return out;
}

/** @internal */
export const ENTRY_COLUMNS = [
  'seq',
  'v',
  'time',
  'actor',
  'action',
  'resource',
  'outcome',
  'tags',
  'subject',
  'payload_digest',
  'prev_hash',
  'hash',
] as const;

/**
 * The WHERE clause and parameters of a filter; `param(i)` renders the i-th placeholder
 * (`?` for SQLite, `$i` for PostgreSQL). @internal
 */
export function filterSql(
  f: AuditFilter,
  param: (i: number) => string,
  payloadTable: string,
): { where: string; params: unknown[]; limit: number; order: 'ASC' | 'DESC' } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    clauses.push(sql(param(params.length)));
  };
  if (f.afterSeq !== undefined) add((p) => `e.seq > ${p}`, f.afterSeq);
  if (f.beforeSeq !== undefined) add((p) => `e.seq < ${p}`, f.beforeSeq);
  for (const key of ['actor', 'action', 'resource', 'outcome', 'subject'] as const) {
    if (f[key] !== undefined) add((p) => `e.${key} = ${p}`, f[key]);
  }
  if (f.tag !== undefined) add((p) => `e.tags LIKE ${p}`, `%,${f.tag.replace(/[%_,]/g, '')},%`);
  if (f.since !== undefined) add((p) => `e.time >= ${p}`, f.since);
  if (f.until !== undefined) add((p) => `e.time < ${p}`, f.until);
  if (f.hasPayload === true) clauses.push(`EXISTS (SELECT 1 FROM ${payloadTable} p WHERE p.seq = e.seq)`);
  const limit = Math.min(Math.max(1, Math.floor(f.limit ?? 100)), 10_000);
  return {
    where: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`,
    params,
    limit,
    order: f.order === 'desc' ? 'DESC' : 'ASC',
  };
}
