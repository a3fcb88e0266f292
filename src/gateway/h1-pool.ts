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

import type { Readable } from 'node:stream';
import { Conn, requestHead } from './h1-conn.js';
import { type ResponseHeaders, UpstreamError } from './h1-parse.js';

export { Conn } from './h1-conn.js';

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

/**
 * Head timeouts of at least this many ms are checked by the pool's ticker every `TICK_MS`
 * (no timer per request; undici's "fast timers" do the same with a 1 s tick); shorter ones get
 * a timer of their own.
 */
const COARSE_MS = 1000;
const TICK_MS = 50;

function onHeadersTimeout(call: Call): void {
  call.pool.fail(
    call,
    new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response head within ${call.headersTimeoutMs} ms`),
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
  /** The request head, once built. */
  head: string | null = null;
  /** The body is a stream sent chunked. */
  chunked = false;
  /** When the head is due (ticker-checked), ms on `performance.now()`; Infinity once it came. */
  deadline = Number.POSITIVE_INFINITY;

  constructor(
    readonly pool: H1Pool,
    readonly method: string,
    readonly path: string,
    /**
     * Flat [name, value, …] list, read when the head is built (at once, or when the call must
     * wait for a socket); a Content-Length in it is replaced by the body's framing.
     */
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
    // It waits: its head is built now, from the header list as it is now.
    if (call.head === null) requestHead(call, this.options.keepAliveTimeoutMs > 0);
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
