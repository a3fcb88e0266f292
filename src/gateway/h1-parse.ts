/**
 * The HTTP/1.1 response parser of the gateway's upstream transport (`h1-pool.ts`): a strict head
 * parser (status line, header tokens, no obs-fold, no bare CR/LF, a 64 KiB head limit) and the
 * body framings of RFC 9112 §6.3 — none (HEAD, 204, 304), Content-Length, chunked (extensions
 * skipped, trailers read and dropped), or until the connection closes. It refuses what a
 * smuggling-aware proxy must: Transfer-Encoding with Content-Length, several or malformed
 * lengths, bad chunk sizes. Bodies are handed on as zero-copy slices of the socket's buffers.
 * @module
 */

import { BulwarkError } from '../core/errors.js';
import { headerKey } from './header-name.js';

/** Response headers as the gateway passes them on: lower-case names, repeated ones as arrays. */
export type ResponseHeaders = Record<string, string | string[]>;

/**
 * A failure of the upstream exchange, with a stable `code`:
 * `UPSTREAM_PROTOCOL` (an invalid response), `UPSTREAM_CLOSED` (the connection ended before the
 * response did), `UPSTREAM_CONNECT_TIMEOUT`, `UPSTREAM_HEADERS_TIMEOUT`, `UPSTREAM_BODY_TIMEOUT`,
 * `UPSTREAM_ABORTED` (the gateway gave the request up), `UPSTREAM_POOL_CLOSED`.
 *
 * @example
 * ```ts
 * import { UpstreamError } from 'bulwark/gateway';
 * const e = new UpstreamError('UPSTREAM_PROTOCOL', 'invalid status line');
 * console.log(e.code); // UPSTREAM_PROTOCOL
 * ```
 */
export class UpstreamError extends BulwarkError {}

const HEAD_MAX = 65_536;
const TRAILER_MAX = 16_384;

enum S {
  Head,
  Length,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  Trailers,
  Eof,
  Done,
}

/** What the parser calls; `head` for the final (>= 200) response head only. */
export interface ParserEvents {
  head(status: number, headers: ResponseHeaders): void;
  body(chunk: Buffer): void;
}

function protocol(message: string): UpstreamError {
  return new UpstreamError('UPSTREAM_PROTOCOL', `invalid upstream response: ${message}`);
}

/**
 * Parses one response at a time (call `reset(method)` before each). `execute` returns the index
 * where it stopped: the end of the buffer, or just past the end of the message (`done` is then
 * true; bytes after it are not part of this response). Throws `UpstreamError` on invalid input.
 *
 * @example
 * ```ts
 * import { ResponseParser } from 'bulwark/gateway';
 * const p = new ResponseParser({ head: (s) => console.log(s), body: (b) => console.log(String(b)) });
 * p.reset('GET');
 * p.execute(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi'));
 * console.log(p.done, p.keepAlive); // true true
 * ```
 */
export class ResponseParser {
  private state = S.Done;
  private method = 'GET';
  private pending: Buffer | null = null;
  private remaining = 0;
  private lineBytes = 0;
  private sizeDigits = 0;
  /** True once the final response head was parsed. */
  headSeen = false;
  /** The connection may carry another request after this response. */
  keepAlive = true;
  /** The server's keep-alive timeout hint (`Keep-Alive: timeout=N`), ms, or 0. */
  keepAliveHintMs = 0;
  /** Bytes of this response seen so far (heads included). */
  received = 0;

  constructor(private readonly on: ParserEvents) {}

  /** Prepares for the response to a request with `method`. */
  reset(method: string): void {
    this.state = S.Head;
    this.method = method;
    this.pending = null;
    this.headSeen = false;
    this.keepAlive = true;
    this.received = 0;
  }

  /** The message is complete. */
  get done(): boolean {
    return this.state === S.Done;
  }

  /** Whether the body is framed by the connection's end (EOF completes it). */
  get untilClose(): boolean {
    return this.state === S.Eof;
  }

  /** The connection ended: completes an until-close body, else throws `UPSTREAM_CLOSED`. */
  eof(): void {
    if (this.state === S.Eof) {
      this.state = S.Done;
      return;
    }
    if (this.state === S.Done) return;
    throw new UpstreamError(
      'UPSTREAM_CLOSED',
      this.headSeen
        ? 'the upstream closed the connection before the response body ended'
        : 'the upstream closed the connection before answering',
    );
  }

  /** Parses `buf` from `start` to `end`; returns where it stopped. */
  execute(buf: Buffer, start = 0, end = buf.length): number {
    this.received += end - start;
    let i = start;
    const n = end;
    while (i < n) {
      switch (this.state) {
        case S.Head: {
          i = this.headPart(buf, i, n);
          break;
        }
        case S.Length: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          const end = i + take;
          if (this.remaining === 0) this.state = S.Done;
          this.on.body(i === 0 && end === buf.length ? buf : buf.subarray(i, end));
          i = end;
          break;
        }
        case S.Eof: {
          this.on.body(i === 0 && n === buf.length ? buf : buf.subarray(i, n));
          return n;
        }
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          const end = i + take;
          if (this.remaining === 0) this.state = S.ChunkDataCr;
          this.on.body(buf.subarray(i, end));
          i = end;
          break;
        }
        case S.Done:
          return i;
        default:
          i = this.chunkByte(buf[i]!, i);
      }
    }
    return i;
  }

  /** One byte of a chunk-size line, the CRLF after chunk data, or the trailer section. */
  private chunkByte(c: number, i: number): number {
    switch (this.state) {
      case S.ChunkSize: {
        const d =
          c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d >= 0) {
          if (++this.sizeDigits > 12) throw protocol('chunk size too large');
          this.remaining = this.remaining * 16 + d;
        } else if (this.sizeDigits === 0) throw protocol('invalid chunk size');
        else if (c === 13) this.state = S.ChunkSizeLf;
        else if (c === 59 || c === 32 || c === 9) {
          this.state = S.ChunkExt;
          this.lineBytes = 0;
        } else throw protocol('invalid chunk size');
        return i + 1;
      }
      case S.ChunkExt:
        if (c === 13) this.state = S.ChunkSizeLf;
        else if (c === 10 || ++this.lineBytes > 4096) throw protocol('invalid chunk extension');
        return i + 1;
      case S.ChunkSizeLf:
        if (c !== 10) throw protocol('invalid chunk size line');
        if (this.remaining === 0) {
          this.state = S.Trailers;
          this.lineBytes = 0;
          this.sizeDigits = 0; // bytes of trailer section
        } else this.state = S.ChunkData;
        return i + 1;
      case S.ChunkDataCr:
        if (c !== 13) throw protocol('chunk data longer than its size');
        this.state = S.ChunkDataLf;
        return i + 1;
      case S.ChunkDataLf:
        if (c !== 10) throw protocol('chunk data not followed by CRLF');
        this.state = S.ChunkSize;
        this.sizeDigits = 0;
        return i + 1;
      default: {
        // Trailers: lines until an empty one; dropped.
        if (++this.sizeDigits > TRAILER_MAX) throw protocol('trailer section too large');
        if (c === 10) {
          if (this.lineBytes === 0) throw protocol('bare LF in trailers');
          if (this.lineBytes === 1) {
            this.state = S.Done;
            return i + 1;
          }
          this.lineBytes = 0;
          return i + 1;
        }
        if (c === 13) {
          this.lineBytes = this.lineBytes === 0 ? 1 : this.lineBytes + 1;
          return i + 1;
        }
        this.lineBytes = this.lineBytes <= 1 ? 2 : this.lineBytes + 1;
        return i + 1;
      }
    }
  }

  /** Collects head bytes; parses the head once its blank line is in. */
  private headPart(buf: Buffer, i: number, n: number): number {
    let b = buf;
    let from = i;
    let searchFrom = i;
    if (this.pending !== null) {
      searchFrom = Math.max(0, this.pending.length - 3);
      b = Buffer.concat([this.pending, buf.subarray(i, n)]);
      from = 0;
    }
    let end = b.indexOf('\r\n\r\n', searchFrom, 'latin1');
    if (b === buf && end + 4 > n) end = -1;
    if (end < 0) {
      if ((b === buf ? n : b.length) - from > HEAD_MAX) throw protocol('response head larger than 64 KiB');
      this.pending = b === buf ? Buffer.from(buf.subarray(from, n)) : b;
      return n;
    }
    if (end - from > HEAD_MAX) throw protocol('response head larger than 64 KiB');
    const consumedOfBuf = b === buf ? end + 4 : end + 4 - (this.pending?.length ?? 0) + i;
    this.pending = null;
    this.parseHead(b.toString('latin1', from, end));
    return consumedOfBuf;
  }

  private parseHead(text: string): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    if (
      eol < 12 ||
      text.charCodeAt(0) !== 72 ||
      !text.startsWith('HTTP/1.') ||
      (text[7] !== '1' && text[7] !== '0') ||
      text[8] !== ' ' ||
      (eol > 12 && text[12] !== ' ')
    )
      throw protocol(`bad status line ${JSON.stringify(text.slice(0, Math.min(eol, 64)))}`);
    const d0 = text.charCodeAt(9) - 48;
    const d1 = text.charCodeAt(10) - 48;
    const d2 = text.charCodeAt(11) - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9)
      throw protocol(`bad status code ${JSON.stringify(text.slice(9, 12))}`);
    const status = d0 * 100 + d1 * 10 + d2;
    const http10 = text[7] === '0';
    const headers: ResponseHeaders = {};
    let length: string | undefined;
    let te: string | undefined;
    let conn: string | undefined;
    let ka: string | undefined;
    let pos = eol + 2;
    while (pos < text.length) {
      let next = text.indexOf('\r\n', pos);
      if (next < 0) next = text.length;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon >= next) throw protocol('header line without a name');
      const name = text.slice(pos, colon);
      const key = headerKey(name);
      if (key === null) throw protocol(`invalid header name ${JSON.stringify(name.slice(0, 64))}`);
      let vs = colon + 1;
      let ve = next;
      while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
      while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
      const value = text.slice(vs, ve);
      if (value.includes('\n') || value.includes('\r') || value.includes('\0'))
        throw protocol(`invalid value of header ${name}`);
      pos = next + 2;
      switch (key) {
        case 'content-length':
          if (length !== undefined) throw protocol('several Content-Length headers');
          length = value;
          break;
        case 'transfer-encoding':
          te = te === undefined ? value : `${te}, ${value}`;
          break;
        case 'connection':
          conn = conn === undefined ? value : `${conn}, ${value}`;
          break;
        case 'keep-alive':
          ka = value;
          break;
        case '__proto__':
          continue;
      }
      const had = headers[key];
      if (had === undefined) headers[key] = value;
      else if (typeof had === 'string') headers[key] = [had, value];
      else had.push(value);
    }
    if (status < 200) {
      if (status === 101) throw protocol('101 Switching Protocols was not asked for');
      return; // an interim response (100, 103): the final one follows
    }
    this.headSeen = true;
    const c = conn?.toLowerCase();
    this.keepAlive = http10
      ? c !== undefined && /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(c)
      : !hasToken(c, 'close');
    if (ka !== undefined) {
      const m = /timeout=(\d+)/i.exec(ka);
      this.keepAliveHintMs = m === null ? 0 : Number(m[1]) * 1000;
    }
    const noBody = this.method === 'HEAD' || status === 204 || status === 304;
    if (te !== undefined) {
      if (length !== undefined) throw protocol('both Transfer-Encoding and Content-Length');
      const codings = te.toLowerCase();
      if (/(?:^|,)\s*chunked\s*$/.test(codings)) {
        if (/chunked\s*,/.test(codings)) throw protocol('chunked applied twice');
        this.state = noBody ? S.Done : S.ChunkSize;
        this.remaining = 0;
        this.sizeDigits = 0;
      } else {
        this.state = noBody ? S.Done : S.Eof;
        this.keepAlive = false;
      }
    } else if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) throw protocol(`invalid Content-Length ${JSON.stringify(length)}`);
      this.remaining = noBody ? 0 : Number(length);
      this.state = this.remaining === 0 ? S.Done : S.Length;
    } else if (noBody) this.state = S.Done;
    else {
      this.state = S.Eof;
      this.keepAlive = false;
    }
    this.on.head(status, headers);
  }
}

/**
 * True when the comma-separated `list` (a Connection header, lower case) holds `token`.
 *
 * @example
 * ```ts nocheck
 * hasToken('keep-alive, close', 'close'); // true
 * ```
 */
export function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  if (list === token) return true;
  for (const t of list.split(',')) if (t.trim() === token) return true;
  return false;
}
