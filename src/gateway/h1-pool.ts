/**
 * The gateway's HTTP/1.1 upstream transport for plain `http://` endpoints: a keep-alive pool of
 * `net.Socket`s per endpoint, lean enough for the proxy's hot path (no promise, stream or
 * closure per request; the request head written as one string; the response parsed in JS by
 * `h1-parse.ts`, its body handed on as slices of the socket's buffers).
 *
 * - Bodies stream both ways with backpressure (`pause`/`resume` of the response; the request
 *   body paused while the socket's buffer is full); a request body of unknown length goes
 *   chunked.
 * - Idle sockets leave the pool when the upstream half-closes them, past `keepAliveTimeoutMs`,
 *   or past the upstream's own `Keep-Alive: timeout=N` hint less a second.
 * - A reused socket that dies before a single byte of the response (the upstream closed it as
 *   we wrote: the keep-alive race) is retried once on a fresh connection — only when the call
 *   is `retrySafe` (an idempotent or keyed request whose body is a buffer or absent). Any other
 *   failure reaches the handler (`onResponseError`) with a typed error (`UpstreamError`, or
 *   the socket's own `ECONNREFUSED` / `ECONNRESET` / `EPIPE`).
 * - A response that ends before its request was fully written, carries bytes past its end,
 *   says `Connection: close`, or is framed by the connection's end closes its socket.
 * @module
 */

import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { type ResponseHeaders, ResponseParser, UpstreamError } from './h1-parse.js';

/** What a call reports to (the undici-compatible subset the gateway's attempts implement). */
export interface CallHandler {
  onResponseStart(controller: Call, status: number, headers: ResponseHeaders): void;
  /** `last`: the body's last chunk (known for Content-Length bodies; `onResponseEnd` follows). */
  onResponseData(controller: Call, chunk: Buffer, last: boolean): void;
  onResponseEnd(controller: Call, trailers: Record<string, string>): void;
  onResponseError(controller: Call, error: Error): void;
}

/** Options of an `H1Pool`. */
export interface H1PoolOptions {
  readonly host: string;
  readonly port: number;
  /** Most sockets open at once; further calls queue. */
  readonly connections: number;
  /** Idle time after which a socket is closed; 0: a socket per request (`connection: close`). */
  readonly keepAliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

const READ_BYTES = 65_536;
/** Body slices up to this size are copied out of the socket's read buffer (which is then reused). */
const COPY_MAX = 4096;
/**
 * Head timeouts of at least this many ms are checked by the pool's ticker every `TICK_MS`
 * (no timer per request; undici's "fast timers" do the same with a 1 s tick); shorter ones get
 * a timer of their own.
 */
const COARSE_MS = 1000;
const TICK_MS = 50;
const NO_TRAILERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

function onHeadersTimeout(call: Call): void {
  call.pool.fail(
    call,
    new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response head within ${call.headersTimeoutMs} ms`),
  );
}

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

/** One request on the pool; also its controller (`abort`, `pause`, `resume`). */
export class Call {
  conn: Conn | null = null;
  done = false;
  /** The request (head and body) is fully written. */
  written = false;
  retried = false;
  timer: NodeJS.Timeout | null = null;
  /** When the head is due (ticker-checked), ms on `performance.now()`; Infinity once it came. */
  deadline = Number.POSITIVE_INFINITY;

  constructor(
    readonly pool: H1Pool,
    readonly method: string,
    readonly path: string,
    /** Flat [name, value, …] list; a Content-Length in it is replaced by the body's framing. */
    readonly headers: readonly string[],
    readonly body: Buffer | Readable | null,
    readonly headersTimeoutMs: number,
    /** Longest silence inside the response body; 0: none. */
    readonly bodyTimeoutMs: number,
    readonly retrySafe: boolean,
    readonly handler: CallHandler,
  ) {}

  /** Gives the call up: its socket is closed and the handler gets `onResponseError(reason)`. */
  abort(reason: Error): void {
    this.pool.fail(this, reason);
  }

  /** Stops reading the response (backpressure). */
  pause(): void {
    if (!this.done) this.conn?.socket.pause();
  }

  /** Reads the response again. */
  resume(): void {
    if (!this.done && this.conn?.call === this) this.conn.socket.resume();
  }
}

/** One socket of the pool. */
export class Conn {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  call: Call | null = null;
  uses = 0;
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
    if (this.keepAliveMs <= 0) head += 'connection: close\r\n';
    const body = call.body;
    const socket = this.socket;
    if (body === null) {
      socket.write(WITH_BODY.has(call.method) ? `${head}content-length: 0\r\n\r\n` : `${head}\r\n`, 'latin1');
      call.written = true;
    } else if (Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
      call.written = true;
    } else {
      const chunked = length === undefined;
      socket.write(
        chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}content-length: ${length}\r\n\r\n`,
        'latin1',
      );
      this.pipe(call, body, chunked);
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

/**
 * A keep-alive pool of HTTP/1.1 connections to one `host:port`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { H1Pool } from 'bulwark/gateway';
 * const server = createServer((_req, res) => res.end('hi')).listen(0, '127.0.0.1');
 * await new Promise((r) => server.once('listening', r));
 * const port = (server.address() as { port: number }).port;
 * const pool = new H1Pool({ host: '127.0.0.1', port, connections: 4, keepAliveTimeoutMs: 5000, connectTimeoutMs: 1000 });
 * await new Promise<void>((resolve) => {
 *   pool.request('GET', '/', ['host', `127.0.0.1:${port}`], null, 1000, 1000, true, {
 *     onResponseStart: (_c, status) => console.log(status), // 200
 *     onResponseData: (_c, chunk) => console.log(String(chunk)), // hi
 *     onResponseEnd: () => resolve(),
 *     onResponseError: (_c, e) => { console.error(e); resolve(); },
 *   });
 * });
 * await pool.close();
 * server.close();
 * ```
 */
export class H1Pool {
  private readonly idle: Conn[] = [];
  private readonly queue: Call[] = [];
  private readonly all = new Set<Conn>();
  private sweeper: NodeJS.Timeout | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private closing: (() => void) | null = null;
  closed = false;

  constructor(readonly options: H1PoolOptions) {}

  /** Open sockets. */
  get size(): number {
    return this.all.size;
  }

  /** Idle sockets. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Starts a request; the returned call is its controller. */
  request(
    method: string,
    path: string,
    headers: readonly string[],
    body: Buffer | Readable | null,
    headersTimeoutMs: number,
    bodyTimeoutMs: number,
    retrySafe: boolean,
    handler: CallHandler,
  ): Call {
    const call = new Call(
      this,
      method,
      path,
      headers,
      body,
      headersTimeoutMs,
      bodyTimeoutMs,
      retrySafe,
      handler,
    );
    if (headersTimeoutMs < COARSE_MS) call.timer = setTimeout(onHeadersTimeout, headersTimeoutMs, call);
    else {
      call.deadline = performance.now() + headersTimeoutMs;
      if (this.ticker === null) {
        this.ticker = setInterval(() => this.tick(), TICK_MS);
        this.ticker.unref();
      }
    }
    this.dispatch(call, false);
    return call;
  }

  /** Fails the calls whose head is overdue; stops when no call waits for its head. */
  private tick(): void {
    const now = performance.now();
    let waiting = false;
    const check = (call: Call) => {
      if (call.done || call.deadline === Number.POSITIVE_INFINITY) return;
      if (now >= call.deadline) onHeadersTimeout(call);
      else waiting = true;
    };
    for (const c of this.all) if (c.call !== null) check(c.call);
    for (const call of this.queue) check(call);
    if (!waiting && this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  /** Puts `call` on a socket: an idle one (unless `fresh`), a new one, or the queue. */
  dispatch(call: Call, fresh: boolean): void {
    if (this.closed) {
      queueMicrotask(() =>
        this.fail(call, new UpstreamError('UPSTREAM_POOL_CLOSED', 'the upstream pool was closed (reload)')),
      );
      return;
    }
    if (!fresh) {
      const now = performance.now();
      while (this.idle.length > 0) {
        const conn = this.idle.pop()!;
        if (conn.dead || now - conn.idleSince >= conn.keepAliveMs) {
          conn.destroy();
          continue;
        }
        conn.start(call);
        return;
      }
    }
    if (this.all.size < this.options.connections) {
      const conn = new Conn(this);
      this.all.add(conn);
      conn.start(call);
      return;
    }
    if (fresh) this.queue.unshift(call);
    else this.queue.push(call);
  }

  /** A socket finished its call and may take another. */
  release(conn: Conn): void {
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next.done) continue;
      conn.start(next);
      return;
    }
    if (this.closing !== null) {
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    conn.socket.resume();
    this.idle.push(conn);
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), 1000);
      this.sweeper.unref();
    }
  }

  /** A socket closed. */
  forget(conn: Conn): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    while (this.queue.length > 0 && this.all.size < this.options.connections) {
      const next = this.queue.shift()!;
      if (next.done) continue;
      this.dispatch(next, true);
      return;
    }
    if (this.closing !== null && this.all.size === 0) this.closing();
  }

  /** Ends `call` with `error` (once); its socket, if any, is closed. */
  fail(call: Call, error: Error): void {
    if (call.done) return;
    call.done = true;
    if (call.timer !== null) clearTimeout(call.timer);
    call.timer = null;
    const conn = call.conn;
    if (conn !== null) {
      if (conn.call === call) conn.call = null;
      conn.destroy();
    }
    call.handler.onResponseError(call, error);
  }

  private sweep(): void {
    const now = performance.now();
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (now - c.idleSince >= c.keepAliveMs) c.destroy();
    }
    if (this.idle.length === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** Closes idle sockets now and the others once their calls end; later calls fail. */
  close(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    return new Promise((resolve) => {
      const done = () => {
        this.closed = true;
        if (this.ticker !== null) clearInterval(this.ticker);
        this.ticker = null;
        resolve();
      };
      if (this.all.size === 0) return done();
      this.closing = done;
      for (const c of [...this.idle]) c.destroy();
    });
  }
}
