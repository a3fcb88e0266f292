/**
 * One socket of the gateway's HTTP/1.1 upstream pool (`h1-pool.ts`): connects, writes each
 * request's head in one piece (its body after it: a buffer, or a stream with backpressure,
 * chunked when its length is unknown), reads the response straight into its own buffer
 * (`onread`) through the parser of `h1-parse.ts`, and hands the socket back to the pool when
 * the exchange left it reusable. A reused socket that dies before a byte of the answer is
 * retried once on a fresh one for a `retrySafe` call (the keep-alive race).
 * @module
 */

import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { type ResponseHeaders, ResponseParser, UpstreamError } from './h1-parse.js';
import type { Call, H1Pool } from './h1-pool.js';
import { holdWrite, releaseWrite } from './write-batch.js';

const READ_BYTES = 65_536;
/** Body slices up to this size are copied out of the socket's read buffer (which is then reused). */
const COPY_MAX = 4096;
const NO_TRAILERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

function onBodyTimeout(conn: Conn): void {
  const call = conn.call;
  if (call !== null)
    call.pool.fail(
      call,
      new UpstreamError('UPSTREAM_BODY_TIMEOUT', `the response body was silent for ${call.bodyTimeoutMs} ms`),
    );
}

function onConnectTimeout(conn: Conn): void {
  conn.socket.destroy(
    new UpstreamError(
      'UPSTREAM_CONNECT_TIMEOUT',
      `no connection within ${conn.pool.options.connectTimeoutMs} ms`,
    ),
  );
}

/**
 * The request head of `call`, framing included: the headers as given (a Content-Length among them
 * replaced by the body's framing: its length, the stream's declared length, or chunked).
 * Built once per call (when it is written, or when it has to wait for a socket: the header list
 * may change after).
 */
export function requestHead(call: Call, keepAlive: boolean): string {
  const h = call.headers;
  let head = `${call.method} ${call.path} HTTP/1.1\r\n`;
  let length: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      length = h[i + 1];
      continue;
    }
    head += `${name}: ${h[i + 1]}\r\n`;
  }
  if (!keepAlive) head += 'connection: close\r\n';
  const body = call.body;
  if (body === null) head += WITH_BODY.has(call.method) ? 'content-length: 0\r\n\r\n' : '\r\n';
  else if (Buffer.isBuffer(body)) head += `content-length: ${body.length}\r\n\r\n`;
  else if (length === undefined) {
    call.chunked = true;
    head += 'transfer-encoding: chunked\r\n\r\n';
  } else head += `content-length: ${length}\r\n\r\n`;
  call.head = head;
  return head;
}

/** One socket of the pool. */
export class Conn {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  call: Call | null = null;
  uses = 0;
  /** A bodiless request's head, held for the end of this round of I/O (write-batch.ts). */
  held: string | Buffer | null = null;
  heldCb: (() => void) | null = null;
  idleSince = 0;
  keepAliveMs: number;
  dead = false;
  private ended = false;
  private error: Error | null = null;
  private connectTimer: NodeJS.Timeout | null;
  private bodyTimer: NodeJS.Timeout | null = null;
  private bodyTimerMs = 0;
  private source: Readable | null = null;
  private unpipe: (() => void) | null = null;
  /** The read buffer; replaced when a slice of it was handed on uncopied. */
  private buf = Buffer.allocUnsafe(READ_BYTES);
  private taken = false;

  constructor(readonly pool: H1Pool) {
    const o = pool.options;
    this.keepAliveMs = o.keepAliveTimeoutMs;
    this.parser = new ResponseParser(this);
    // `onread`: reads land in our buffer and come straight to `onRead` (no stream push per read).
    const socket = connect({
      host: o.host,
      port: o.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: {
        buffer: () => {
          if (this.taken) {
            this.taken = false;
            this.buf = Buffer.allocUnsafe(READ_BYTES);
          }
          return this.buf;
        },
        callback: (n: number, buf: Uint8Array) => {
          this.onRead(n, buf as Buffer);
          return true;
        },
      },
    });
    this.socket = socket;
    this.connectTimer = setTimeout(onConnectTimeout, o.connectTimeoutMs, this);
    socket.once('connect', () => {
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
    });
    socket.on('end', () => this.onEnd());
    socket.on('error', (e: Error) => {
      this.error ??= e;
    });
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.source?.resume());
  }

  /** Sends `call` on this socket. */
  start(call: Call): void {
    this.call = call;
    call.conn = this;
    this.uses++;
    this.parser.reset(call.method);
    this.write(call);
  }

  // Parser events.
  head(status: number, headers: ResponseHeaders): void {
    const call = this.call;
    if (call === null || call.done) return;
    if (call.timer !== null) {
      clearTimeout(call.timer);
      call.timer = null;
    }
    call.deadline = Number.POSITIVE_INFINITY;
    call.handler.onResponseStart(call, status, headers);
  }

  body(chunk: Buffer): void {
    const call = this.call;
    if (call === null || call.done) return;
    let out = chunk;
    if (chunk.buffer === this.buf.buffer) {
      if (chunk.length <= COPY_MAX) out = Buffer.from(chunk);
      else this.taken = true;
    }
    call.handler.onResponseData(call, out, this.parser.done);
  }

  private onRead(n: number, buf: Buffer): void {
    const call = this.call;
    if (call === null) {
      this.socket.destroy(); // bytes nobody asked for: the socket is no longer trustworthy
      return;
    }
    let stop: number;
    try {
      stop = this.parser.execute(buf, 0, n);
    } catch (error) {
      call.pool.fail(call, error as Error);
      return;
    }
    if (this.call !== call || call.done) return;
    if (this.parser.done) this.complete(call, stop < n);
    else if (this.parser.headSeen && call.bodyTimeoutMs > 0) {
      if (this.bodyTimer !== null && this.bodyTimerMs === call.bodyTimeoutMs) this.bodyTimer.refresh();
      else {
        if (this.bodyTimer !== null) clearTimeout(this.bodyTimer);
        this.bodyTimer = setTimeout(onBodyTimeout, call.bodyTimeoutMs, this);
        this.bodyTimerMs = call.bodyTimeoutMs;
      }
    }
  }

  private onEnd(): void {
    this.ended = true;
    const call = this.call;
    if (call === null || call.done) {
      this.socket.destroy();
      return;
    }
    try {
      this.parser.eof();
    } catch (error) {
      this.lost(call, error as Error);
      return;
    }
    this.complete(call, false);
  }

  private onClose(): void {
    this.dead = true;
    this.stopTimers();
    this.pool.forget(this);
    const call = this.call;
    if (call !== null && !call.done)
      this.lost(
        call,
        this.error ??
          new UpstreamError(
            'UPSTREAM_CLOSED',
            'the upstream closed the connection before the response ended',
          ),
      );
  }

  /** The socket failed under `call`: a stale keep-alive socket is retried once, else the call fails. */
  private lost(call: Call, error: Error): void {
    if (this.uses > 1 && this.parser.received === 0 && call.retrySafe && !call.retried && !call.pool.closed) {
      call.retried = true;
      this.call = null;
      call.conn = null;
      call.written = false;
      this.detachBody();
      this.socket.destroy();
      call.pool.dispatch(call, true);
      return;
    }
    call.pool.fail(call, error);
  }

  private complete(call: Call, leftover: boolean): void {
    call.done = true;
    if (call.timer !== null) clearTimeout(call.timer);
    call.timer = null;
    this.call = null;
    if (this.bodyTimer !== null) clearTimeout(this.bodyTimer);
    this.bodyTimer = null;
    const p = this.parser;
    if (p.keepAliveHintMs > 0) this.keepAliveMs = Math.min(this.keepAliveMs, p.keepAliveHintMs - 1000);
    if (p.keepAlive && call.written && !leftover && !this.ended && this.keepAliveMs > 0)
      call.pool.release(this);
    else {
      this.detachBody();
      this.socket.destroy();
    }
    call.handler.onResponseEnd(call, NO_TRAILERS);
  }

  /** Closes the socket (the call on it, if any, was already failed or is failed by `close`). */
  destroy(): void {
    this.detachBody();
    this.stopTimers();
    this.socket.destroy();
  }

  private stopTimers(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.bodyTimer !== null) clearTimeout(this.bodyTimer);
    this.bodyTimer = null;
  }

  private detachBody(): void {
    if (this.unpipe !== null) this.unpipe();
  }

  private write(call: Call): void {
    const head = call.head ?? requestHead(call, this.keepAliveMs > 0);
    const body = call.body;
    const socket = this.socket;
    if (body === null) {
      holdWrite(this, head); // sent with the other writes of this round of I/O
      call.written = true;
      return;
    }
    releaseWrite(this);
    if (Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(head, 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
      call.written = true;
    } else {
      socket.write(head, 'latin1');
      this.pipe(call, body, call.chunked);
    }
  }

  private pipe(call: Call, body: Readable, chunked: boolean): void {
    const socket = this.socket;
    let ended = false;
    const onData = (chunk: Buffer) => {
      if (call.done || chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) body.pause();
    };
    const onEnd = () => {
      ended = true;
      detach();
      if (call.done) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      call.written = true;
    };
    const onError = (error: Error) => {
      detach();
      call.pool.fail(call, error);
    };
    const onClose = () => {
      if (ended) return;
      detach();
      call.pool.fail(
        call,
        new UpstreamError(
          'UPSTREAM_ABORTED',
          'the request body ended before it was complete (the client went away)',
        ),
      );
    };
    const detach = () => {
      // Whatever the upstream will not read is drained, so that the client's request completes.
      if (!ended) body.resume();
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      if (this.source === body) {
        this.source = null;
        this.unpipe = null;
      }
    };
    this.source = body;
    this.unpipe = detach;
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.resume();
  }
}
