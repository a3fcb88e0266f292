/**
 * A byte-level streaming pass over PostgreSQL's `COPY … TO STDOUT (FORMAT csv)` output that makes
 * it exactly what the csv-stringify path writes for the same rows: cells starting with `=`, `+`,
 * `-`, `@`, TAB, CR (or their full-width forms) get a leading `'` (a `-` is left alone in number
 * columns), records end with CRLF, and the only fields PostgreSQL quotes without needing to (the
 * empty string `""` and a lone `\.`) are written bare. Quoted fields are tracked across chunk
 * boundaries, so any chunking gives the same bytes.
 * @module
 */

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const APOS = 0x27;

/** States of the field scanner. */
const START = 0;
const HEAD_PLAIN = 1;
const HEAD_QUOTED = 2;
const HEAD_QUOTED_QUOTE = 3;
const PLAIN = 4;
const QUOTED = 5;
const QUOTED_QUOTE = 6;

/** Bytes of a field's start collected before deciding (a full-width sign is 3 bytes in UTF-8). */
const HEAD = 3;

/**
 * Neutralises a CSV byte stream from PostgreSQL. `numeric[i]` is true for columns whose values
 * the generic path sees as JavaScript numbers (a leading `-` is then left alone, as csv-stringify
 * does).
 *
 * @example
 * ```ts
 * import { CsvNeutraliser } from 'bulwark/export';
 * const n = new CsvNeutraliser([true, false]);
 * const out = Buffer.concat([n.push(Buffer.from('-1,=SUM(A1)\n2,""\n')), n.end()]);
 * console.log(JSON.stringify(out.toString()), n.rows); // "-1,'=SUM(A1)\r\n2,\r\n" 2
 * ```
 */
export class CsvNeutraliser {
  /** Records written so far. */
  rows = 0;
  readonly #numeric: readonly boolean[];
  #state = START;
  #col = 0;
  readonly #head = Buffer.alloc(HEAD);
  #headLen = 0;

  constructor(numeric: readonly boolean[]) {
    this.#numeric = numeric;
  }

  /** Whether the collected head starts a formula: 1 yes, 0 no, -1 not known yet. */
  #danger(complete: boolean): number {
    if (this.#headLen === 0) return 0;
    const b = this.#head[0]!;
    if (b === 0x3d || b === 0x2b || b === 0x40 || b === 0x09 || b === CR) return 1;
    if (b === 0x2d) return this.#numeric[this.#col] === true ? 0 : 1;
    if (b !== 0xef) return 0;
    if (this.#headLen < 3) return complete ? 0 : -1;
    const c = this.#head[2]!;
    // U+FF1D ＝, U+FF0B ＋, U+FF0D －, U+FF20 ＠ are EF BC 9D, EF BC 8B, EF BC 8D, EF BC A0 in UTF-8.
    return this.#head[1] === 0xbc && (c === 0x9d || c === 0x8b || c === 0x8d || c === 0xa0) ? 1 : 0;
  }

  /** Writes the head once decided (field still open); returns the new write offset. */
  #flushHead(out: Buffer, o: number, quoted: boolean, danger: boolean): number {
    if (quoted) out[o++] = QUOTE;
    if (danger) out[o++] = APOS;
    for (let i = 0; i < this.#headLen; i++) {
      const b = this.#head[i]!;
      out[o++] = b;
      if (quoted && b === QUOTE) out[o++] = QUOTE;
    }
    this.#headLen = 0;
    return o;
  }

  /** Writes a field that ended within its head: quoted only when its content needs it. */
  #finishHead(out: Buffer, o: number): number {
    const danger = this.#danger(true) === 1;
    let needsQuote = false;
    for (let i = 0; i < this.#headLen; i++) {
      const b = this.#head[i]!;
      if (b === COMMA || b === QUOTE || b === LF || b === CR) needsQuote = true;
    }
    o = this.#flushHead(out, o, needsQuote, danger);
    if (needsQuote) out[o++] = QUOTE;
    return o;
  }

  /** Ends a field on terminator byte `b` (`,` or LF; CR is dropped). */
  #terminate(out: Buffer, o: number, b: number): number {
    if (b === COMMA) {
      out[o++] = COMMA;
      this.#col++;
      this.#state = START;
    } else if (b === LF) {
      out[o++] = CR;
      out[o++] = LF;
      this.rows++;
      this.#col = 0;
      this.#state = START;
    }
    return o;
  }

  /** Neutralises the next chunk; returns the bytes to write. */
  push(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(chunk.length * 2 + 16);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      switch (this.#state) {
        case PLAIN:
          if (b === COMMA || b === LF || b === CR) o = this.#terminate(out, o, b);
          else out[o++] = b;
          break;
        case QUOTED:
          if (b === QUOTE) this.#state = QUOTED_QUOTE;
          else out[o++] = b;
          break;
        case QUOTED_QUOTE:
          if (b === QUOTE) {
            out[o++] = QUOTE;
            out[o++] = QUOTE;
            this.#state = QUOTED;
          } else {
            out[o++] = QUOTE;
            o = this.#terminate(out, o, b);
          }
          break;
        case START:
          if (b === QUOTE) {
            this.#state = HEAD_QUOTED;
          } else if (b === COMMA || b === LF || b === CR) {
            o = this.#terminate(out, o, b);
          } else {
            this.#head[this.#headLen++] = b;
            this.#state = HEAD_PLAIN;
            o = this.#decidePlain(out, o);
          }
          break;
        case HEAD_PLAIN:
          if (b === COMMA || b === LF || b === CR) {
            o = this.#flushHead(out, o, false, this.#danger(true) === 1);
            o = this.#terminate(out, o, b);
          } else {
            this.#head[this.#headLen++] = b;
            o = this.#decidePlain(out, o);
          }
          break;
        case HEAD_QUOTED:
          if (b === QUOTE) this.#state = HEAD_QUOTED_QUOTE;
          else o = this.#addQuotedHead(out, o, b);
          break;
        case HEAD_QUOTED_QUOTE:
          if (b === QUOTE) {
            this.#state = HEAD_QUOTED;
            o = this.#addQuotedHead(out, o, QUOTE);
          } else {
            o = this.#finishHead(out, o);
            o = this.#terminate(out, o, b);
          }
          break;
      }
    }
    return out.subarray(0, o);
  }

  #decidePlain(out: Buffer, o: number): number {
    const d = this.#danger(false);
    if (d === -1 && this.#headLen < HEAD) return o;
    this.#state = PLAIN;
    return this.#flushHead(out, o, false, d === 1);
  }

  #addQuotedHead(out: Buffer, o: number, b: number): number {
    this.#head[this.#headLen++] = b;
    if (this.#headLen < HEAD) return o;
    this.#state = QUOTED;
    return this.#flushHead(out, o, true, this.#danger(true) === 1);
  }

  /** Flushes a field left open by a stream that did not end with a newline. */
  end(): Buffer {
    const out = Buffer.allocUnsafe(16);
    let o = 0;
    if (this.#state === HEAD_PLAIN) o = this.#flushHead(out, o, false, this.#danger(true) === 1);
    else if (this.#state === HEAD_QUOTED_QUOTE) o = this.#finishHead(out, o);
    else if (this.#state === QUOTED_QUOTE) out[o++] = QUOTE;
    if (this.#state !== START) {
      out[o++] = CR;
      out[o++] = LF;
      this.rows++;
    }
    this.#state = START;
    this.#col = 0;
    return out.subarray(0, o);
  }
}
