/**
 * The CSV fast path of PostgreSQL sources: the query streamed through
 * `COPY (…) TO STDOUT (FORMAT csv)` on the COPY protocol of `pg` itself (no extra package), then
 * through `CsvNeutraliser`, so the bytes equal what the csv-stringify path writes for the same
 * rows. Used when every column has a type whose text form is the one the generic path writes
 * (text, integers, numeric, boolean, uuid) and the query has no parameters; otherwise the
 * caller falls back to the cursor path. Backpressure pauses the socket.
 * @module
 */

import { Readable } from 'node:stream';
import type { PoolClient } from 'pg';
import { CsvNeutraliser } from './csv-neutralise.js';
import type { Column, ColumnType, CsvCopy } from './rows.js';
import { ident } from './sql.js';

/** Type OIDs the fast path handles: column type, whether pg parses it to a JS number, and whether it needs `::text`. */
const SUPPORTED: ReadonlyMap<number, { type: ColumnType; number: boolean; cast: boolean }> = new Map([
  [16, { type: 'boolean' as const, number: false, cast: true }], // bool: 'true'/'false' as cellText writes
  [20, { type: 'integer' as const, number: false, cast: false }], // int8: pg gives a string
  [21, { type: 'integer' as const, number: true, cast: false }],
  [23, { type: 'integer' as const, number: true, cast: false }],
  [26, { type: 'integer' as const, number: true, cast: false }], // oid
  [1700, { type: 'real' as const, number: false, cast: false }], // numeric: pg gives a string
  [25, { type: 'text' as const, number: false, cast: false }],
  [1043, { type: 'text' as const, number: false, cast: false }],
  [1042, { type: 'text' as const, number: false, cast: false }],
  [19, { type: 'text' as const, number: false, cast: false }],
  [2950, { type: 'text' as const, number: false, cast: false }],
]);

const FLUSH_BYTES = 65_536;

interface Connection {
  query(text: string): void;
  stream: { pause(): void; resume(): void };
}

/** A pg Submittable running one `COPY … TO STDOUT` and pushing its data into a Readable. */
class CopyOut {
  readonly stream: Readable;
  #conn: Connection | undefined;
  /** CopyData messages copied here (pg reuses its read buffer, so a message's bytes cannot be kept). */
  #acc = Buffer.allocUnsafe(FLUSH_BYTES);
  #accLen = 0;
  #error: Error | undefined;
  #paused = false;
  /** The server finished the COPY: never pause the socket again (the client's next queries need it). */
  #finished = false;

  constructor(readonly text: string) {
    this.stream = new Readable({
      highWaterMark: 1 << 18,
      read: () => this.#resume(),
    });
  }

  submit(connection: Connection): void {
    this.#conn = connection;
    connection.query(this.text);
  }

  #flush(): void {
    if (this.#accLen === 0) return;
    const chunk = this.#acc.subarray(0, this.#accLen);
    this.#acc = Buffer.allocUnsafe(FLUSH_BYTES);
    this.#accLen = 0;
    if (!this.stream.push(chunk)) this.#pause();
  }

  #pause(): void {
    if (this.#paused || this.#finished) return;
    this.#paused = true;
    this.#conn?.stream.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#conn?.stream.resume();
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    const c = msg.chunk;
    if (this.#accLen + c.length > this.#acc.length) {
      this.#flush();
      // A row longer than the buffer gets its own copy.
      if (c.length > this.#acc.length) {
        if (!this.stream.push(Buffer.from(c))) this.#pause();
        return;
      }
    }
    c.copy(this.#acc, this.#accLen);
    this.#accLen += c.length;
    if (this.#accLen >= FLUSH_BYTES - 512) this.#flush();
  }

  /** pg drops the active query on an error (no readyForQuery follows for it): end the stream now. */
  handleError(error: Error): void {
    this.#finished = true;
    this.#resume();
    this.#error = error;
    this.stream.destroy(error);
  }

  handleReadyForQuery(): void {
    this.#finished = true;
    this.#resume();
    if (this.#error !== undefined) return;
    this.#flush();
    this.stream.push(null);
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}

/**
 * Starts the COPY fast path on `client` (inside the caller's transaction), or returns undefined
 * when the query's columns are not all of a supported type.
 * @internal
 */
export async function copyCsv(client: PoolClient, sql: string): Promise<CsvCopy | undefined> {
  const described = await client.query(`SELECT * FROM (${sql}) bulwark_q LIMIT 0`);
  const fields = described.fields;
  const kinds = fields.map((f) => SUPPORTED.get(f.dataTypeID));
  if (fields.length === 0 || kinds.some((k) => k === undefined)) return undefined;
  if (new Set(fields.map((f) => f.name)).size !== fields.length) return undefined;
  const inner = kinds.some((k) => k!.cast)
    ? `SELECT ${fields.map((f, i) => `bulwark_q.${ident(f.name)}${kinds[i]!.cast ? '::text' : ''}`).join(', ')} FROM (${sql}) bulwark_q`
    : sql;
  const copy = new CopyOut(`COPY (${inner}) TO STDOUT (FORMAT csv)`);
  (client as unknown as { query(q: CopyOut): void }).query(copy);
  const neutraliser = new CsvNeutraliser(kinds.map((k) => k!.number));
  const columns: Column[] = fields.map((f, i) => ({ name: f.name, type: kinds[i]!.type }));
  async function* chunks(): AsyncIterable<Uint8Array> {
    for await (const raw of copy.stream) {
      const out = neutraliser.push(raw as Buffer);
      if (out.length > 0) yield out;
    }
    const tail = neutraliser.end();
    if (tail.length > 0) yield tail;
  }
  return { columns, chunks: chunks(), rows: () => neutraliser.rows };
}
