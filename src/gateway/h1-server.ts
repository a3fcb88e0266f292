/**
 * The gateway's HTTP/1.1 front end for plain `http://` listeners: a lean server on `net` that
 * parses the common request itself — a bodiless GET, HEAD or OPTIONS whose head is well formed
 * and arrived whole — and answers it through light request and response objects that carry what
 * the gateway's handler uses of `IncomingMessage` and `ServerResponse`. No stream, emitter or
 * header object of node:http is made per request, which is most of what a Node proxy spends.
 *
 * Everything else is node:http's to serve: the first request this parser does not take (a body,
 * HTTP/1.0, an upgrade, an `Expect`, an odd or duplicate framing header, a malformed or partial
 * head, one past the header size limit) hands the connection — with the bytes not yet served —
 * to the node:http server given, for the rest of its life. So bodies, smuggling checks (llhttp),
 * 400/431 answers and slow-header timeouts keep node:http's behaviour exactly, and the parser
 * here only has to be strict, never complete: what it is unsure of, it hands on.
 *
 * Responses: `writeHead` keeps the head until the first write, so head and body leave in one
 * write; a body without Content-Length goes chunked (an `end(chunk)` as the first write gets a
 * Content-Length instead); HEAD, 204 and 304 have none. Connections stay open between requests
 * (`Connection: close` from either side closes them) and are closed after `keepAliveTimeoutMs`
 * idle by one coarse ticker for the whole server.
 * @module
 */

import { type Server as HttpServer, STATUS_CODES } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { hasToken } from './h1-parse.js';
import { headerKey, isToken } from './header-name.js';
import { isHopByHop } from './http.js';
import { holdWrite, releaseWrite } from './write-batch.js';

/** What the front end calls per request (the gateway's handler, typed over these light objects). */
export type FastHandler = (req: FastRequest, res: FastResponse) => void;

/** Options of `createH1Server`. */
export interface H1ServerOptions {
  /** Largest request head taken here, in bytes (beyond it node:http answers 431). */
  readonly maxHeaderSize: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** A field value's bad bytes: control characters but HTAB (obs-text is allowed, as llhttp and node:http do). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Headers whose presence sends the request to node:http (bodies, protocol switches). */
const HAND_ON = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);
/** Duplicates node:http drops (it keeps the first); `host` twice is handed on instead. */
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-type',
  'etag',
  'expires',
  'from',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * Parses a request head (without its final CRLF CRLF). Null when the head is not one this front
 * end takes — the caller then hands the connection to node:http.
 */
export function parseRequestHead(
  head: string,
): { method: string; url: string; rawHeaders: string[]; headers: Record<string, string | string[]> } | null {
  let eol = head.indexOf('\r\n');
  // The request line: METHOD SP origin-form SP HTTP/1.1, the target all visible ASCII.
  const lineEnd = eol < 0 ? head.length : eol;
  const sp = head.indexOf(' ');
  const method = sp > 0 && sp < lineEnd ? head.slice(0, sp) : '';
  const targetEnd = lineEnd - 9; // ' HTTP/1.1'
  if (!METHODS.has(method) || targetEnd <= sp + 1 || head.charCodeAt(sp + 1) !== 47) return null;
  if (!head.startsWith(' HTTP/1.1', targetEnd)) return null;
  for (let i = sp + 2; i < targetEnd; i++) {
    const c = head.charCodeAt(i);
    if (c < 33 || c > 126) return null;
  }
  const rawHeaders: string[] = [];
  const headers: Record<string, string | string[]> = {};
  let host = false;
  while (eol >= 0) {
    const start = eol + 2;
    eol = head.indexOf('\r\n', start);
    const end = eol < 0 ? head.length : eol;
    const colon = head.indexOf(':', start);
    if (colon <= start || colon >= end) return null;
    const name = head.slice(start, colon);
    const lower = headerKey(name);
    if (lower === null) return null;
    let a = colon + 1;
    let b = end;
    while (a < b && (head.charCodeAt(a) === 32 || head.charCodeAt(a) === 9)) a++;
    while (b > a && (head.charCodeAt(b - 1) === 32 || head.charCodeAt(b - 1) === 9)) b--;
    const value = head.slice(a, b);
    if (BAD_VALUE.test(value)) return null;
    if (HAND_ON.has(lower)) return null;
    rawHeaders.push(name, value);
    const had = headers[lower];
    if (lower === 'host') {
      if (host) return null;
      host = true;
    }
    if (had === undefined) headers[lower] = lower === 'set-cookie' ? [value] : value;
    else if (Array.isArray(had)) had.push(value);
    else if (!FIRST_WINS.has(lower)) headers[lower] = `${had}${lower === 'cookie' ? '; ' : ', '}${value}`;
  }
  if (!host) return null; // node:http answers 400 for HTTP/1.1 without Host
  return { method, url: head.slice(sp + 1, targetEnd), rawHeaders, headers };
}

/** The request as the handler sees it: what it reads of an `IncomingMessage` (no body here). */
export class FastRequest {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly complete = true;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly headers: Record<string, string | string[]>,
    readonly rawHeaders: string[],
    readonly socket: Socket,
  ) {}
  /** No body to drain. */
  resume(): this {
    return this;
  }
  /** A bodiless request: `end` comes at once; nothing else is ever emitted. */
  on(event: string, listener: () => void): this {
    if (event === 'end') queueMicrotask(listener);
    return this;
  }
  once(event: string, listener: () => void): this {
    return this.on(event, listener);
  }
  removeAllListeners(): this {
    return this;
  }
}

type Listener = (...args: unknown[]) => void;

/** The response as the handler writes it: the part of `ServerResponse` the gateway uses. */
export class FastResponse {
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  private status = 200;
  private headers: Record<string, unknown> | null = null;
  /** A proxied head: the upstream's headers (validated by their parser), less these names. */
  private dropped: ReadonlySet<string> | null = null;
  private own: Record<string, string> | null = null;
  private chunked = false;
  private bodiless: boolean;
  private closeListeners: Listener[] | null = null;
  private finishListeners: Listener[] | null = null;
  private closed = false;

  constructor(
    private readonly conn: H1Connection,
    head: boolean,
  ) {
    this.bodiless = head;
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  /** Sets the status and headers; they leave with the first write. */
  writeHead(status: number, headers?: Record<string, unknown>): this {
    if (this.headersSent) throw new Error('writeHead after the response head was sent');
    this.status = status;
    this.headers = headers ?? null;
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) this.bodiless = true;
    return this;
  }

  /**
   * `writeHead` for a proxied response, without copying its headers: `upstream` comes from a
   * parser that validated it (h1-parse, undici), so only hop-by-hop names and `dropped` ones are
   * left out; `own` (request id, route additions, RateLimit headers) is validated and written
   * after it, replacing upstream headers of the same names.
   */
  writeProxiedHead(
    status: number,
    upstream: Record<string, unknown>,
    dropped: ReadonlySet<string> | null,
    own: Record<string, string>,
  ): this {
    this.writeHead(status, upstream);
    this.dropped = dropped;
    this.own = own;
    return this;
  }

  /** A header given to `writeHead` (or `writeProxiedHead`). */
  getHeader(name: string): unknown {
    const k = name.toLowerCase();
    return this.own?.[k] ?? this.headers?.[k];
  }

  /** Sends the head now (a stream's head goes out before its first event). */
  flushHeaders(): void {
    if (!this.headersSent && !this.conn.socket.destroyed) {
      releaseWrite(this.conn);
      this.conn.socket.write(this.headString(-1), 'latin1');
    }
  }

  write(chunk: string | Buffer, cb?: () => void): boolean {
    const socket = this.conn.socket;
    if (this.writableEnded || socket.destroyed) return false;
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.bodiless || body.length === 0) {
      if (!this.headersSent) {
        releaseWrite(this.conn);
        socket.write(this.headString(-1), 'latin1');
      }
      if (cb !== undefined) queueMicrotask(cb);
      return true;
    }
    const head = this.headersSent ? '' : this.headString(-1);
    return this.send(head, body, cb, false);
  }

  end(chunk?: string | Buffer | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') return this.end(undefined, chunk);
    if (this.writableEnded) return this;
    this.writableEnded = true;
    const socket = this.conn.socket;
    if (!socket.destroyed) {
      let body = chunk === undefined ? null : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (this.bodiless) body = null;
      const head = this.headersSent ? '' : this.headString(body === null ? 0 : body.length);
      this.send(head, body, cb, true);
    }
    this.writableFinished = !socket.destroyed;
    this.conn.finished(this);
    return this;
  }

  /** Cuts the connection (the client sees a broken response, never a clean end). */
  destroy(): this {
    releaseWrite(this.conn); // an earlier response's held bytes still go out
    this.conn.socket.destroy();
    return this;
  }

  on(event: string, listener: Listener): this {
    if (event === 'close') {
      this.closeListeners ??= [];
      this.closeListeners.push(listener);
    } else if (event === 'finish') {
      this.finishListeners ??= [];
      this.finishListeners.push(listener);
    } else if (event === 'drain') this.conn.socket.on('drain', listener);
    return this;
  }

  once(event: string, listener: Listener): this {
    if (event === 'drain') this.conn.socket.once('drain', listener);
    else this.on(event, listener);
    return this;
  }

  off(event: string, listener: Listener): this {
    const list = event === 'close' ? this.closeListeners : event === 'finish' ? this.finishListeners : null;
    if (list !== null) {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    } else if (event === 'drain') this.conn.socket.off('drain', listener);
    return this;
  }

  removeListener(event: string, listener: Listener): this {
    return this.off(event, listener);
  }

  /** Runs the 'finish' then 'close' listeners (once: after the end, or when the socket closed). */
  emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.writableFinished && this.finishListeners !== null)
      for (const l of this.finishListeners.splice(0)) l();
    if (this.closeListeners !== null) for (const l of this.closeListeners.splice(0)) l();
  }

  /**
   * The response head. `length`: the whole body's size when known at this point (`end`), -1 when
   * not (the body goes chunked unless the headers carry a length).
   */
  private headString(length: number): string {
    this.headersSent = true;
    const conn = this.conn;
    let s = `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    const h = this.headers;
    const own = this.own;
    if (own !== null && h !== null) {
      // A proxied head: the upstream's validated lower-case names, then our own.
      const dropped = this.dropped;
      for (const k in h) {
        const v = h[k];
        if (v === undefined || isHopByHop(k) || dropped?.has(k) === true || own[k] !== undefined) continue;
        if (k === 'content-length') hasLength = true;
        else if (k === 'date') hasDate = true;
        if (typeof v === 'string') s += `${k}: ${v}\r\n`;
        else for (const one of v as string[]) s += `${k}: ${one}\r\n`;
      }
      for (const k in own) s += headerLine(k, own[k]!);
      if (own.date !== undefined) hasDate = true;
      if (own['content-length'] !== undefined) hasLength = true;
    } else if (h !== null)
      for (const k in h) {
        const v = h[k];
        if (v === undefined) continue;
        const lower = k.toLowerCase();
        if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') {
          if (lower === 'connection' && String(v).toLowerCase() === 'close') conn.closeAfter = true;
          continue;
        }
        if (lower === 'content-length') hasLength = true;
        else if (lower === 'date') hasDate = true;
        if (Array.isArray(v)) for (const one of v) s += headerLine(k, String(one));
        else s += headerLine(k, typeof v === 'string' ? v : String(v));
      }
    if (!hasDate) s += `date: ${conn.server.date()}\r\n`;
    if (!hasLength && !this.bodiless) {
      if (length >= 0) s += `content-length: ${length}\r\n`;
      else {
        this.chunked = true;
        s += 'transfer-encoding: chunked\r\n';
      }
    }
    if (conn.closeAfter || conn.server.closing) {
      conn.closeAfter = true;
      s += 'connection: close\r\n\r\n';
    } else s += conn.server.keepAliveLine;
    return s;
  }

  /**
   * Writes head (possibly '') and body in one write when small, framed when chunked; `final`: the
   * response's last write (a chunked body's terminator goes with it).
   */
  private send(head: string, body: Buffer | null, cb: (() => void) | undefined, final: boolean): boolean {
    const chunked = this.chunked;
    const last = final && chunked;
    const conn = this.conn;
    const socket = conn.socket;
    const n = body === null ? 0 : body.length;
    const pre = chunked && n > 0 ? `${head}${n.toString(16)}\r\n` : head;
    const post = chunked ? (n > 0 ? (last ? '\r\n0\r\n\r\n' : '\r\n') : last ? '0\r\n\r\n' : '') : '';
    if (n === 0) {
      const s = pre + post;
      if (s === '') return true;
      // A response's last bytes leave with the other writes of this round of I/O.
      if (final) return holdWrite(conn, s, cb);
      releaseWrite(conn);
      return socket.write(s, 'latin1', cb);
    }
    if (n + pre.length + post.length <= 16_384) {
      const out = Buffer.allocUnsafe(pre.length + n + post.length);
      out.write(pre, 0, 'latin1');
      body!.copy(out, pre.length);
      if (post !== '') out.write(post, pre.length + n, 'latin1');
      if (final) return holdWrite(conn, out, cb);
      releaseWrite(conn);
      return socket.write(out, cb);
    }
    releaseWrite(conn);
    socket.cork();
    if (pre !== '') socket.write(pre, 'latin1');
    let ok = socket.write(body!, post === '' ? cb : undefined);
    if (post !== '') ok = socket.write(post, 'latin1', cb);
    socket.uncork();
    return ok;
  }
}

function headerLine(name: string, value: string): string {
  if (BAD_VALUE.test(value) || !isToken(name))
    throw Object.assign(new TypeError(`Invalid character in header "${name}"`), { code: 'ERR_INVALID_CHAR' });
  return `${name}: ${value}\r\n`;
}

/** One client connection while this front end serves it. */
export class H1Connection {
  /** A response's last bytes, held for the end of this round of I/O (write-batch.ts). */
  held: string | Buffer | null = null;
  heldCb: (() => void) | null = null;
  /** Bytes read and not yet served. */
  private pending: Buffer | null = null;
  current: FastResponse | null = null;
  closeAfter = false;
  /** The server's tick at the last activity (idle connections close by it). */
  lastTick: number;
  private readonly onData = (chunk: Buffer) => this.read(chunk);

  constructor(
    readonly socket: Socket,
    readonly server: H1Server,
  ) {
    this.lastTick = server.tick;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', noop);
    socket.once('close', () => {
      server.connections.delete(this);
      const res = this.current;
      this.current = null;
      res?.emitClose();
    });
  }

  /** True when no request is being served and none waits. */
  get idle(): boolean {
    return this.current === null && this.pending === null;
  }

  /** Bytes read from the socket (or read before this front end took it). */
  read(chunk: Buffer): void {
    const p = this.pending;
    this.pending = p === null ? chunk : Buffer.concat([p, chunk]);
    if (this.current === null) this.serve();
    else if (this.pending.length > this.server.options.maxHeaderSize) this.socket.pause();
  }

  /** Serves what `pending` holds, one request at a time. */
  private serve(): void {
    while (this.current === null && this.pending !== null) {
      const buf = this.pending;
      const max = this.server.options.maxHeaderSize;
      const end = buf.indexOf(CRLF2);
      // A head still arriving, or too large: node:http's timeouts and limits take it.
      const parsed = end < 0 || end + 4 > max ? null : parseRequestHead(buf.toString('latin1', 0, end));
      if (parsed === null) {
        this.handOn();
        return;
      }
      this.pending = end + 4 === buf.length ? null : buf.subarray(end + 4);
      const c = parsed.headers.connection;
      if (typeof c === 'string' && hasToken(c.toLowerCase(), 'close')) this.closeAfter = true;
      const req = new FastRequest(parsed.method, parsed.url, parsed.headers, parsed.rawHeaders, this.socket);
      const res = new FastResponse(this, parsed.method === 'HEAD');
      this.current = res;
      this.lastTick = this.server.tick;
      this.server.handler(req, res);
    }
  }

  /** The response being served ended. */
  finished(res: FastResponse): void {
    if (this.current !== res) return;
    this.current = null;
    this.lastTick = this.server.tick;
    const socket = this.socket;
    if (this.server.closing) this.closeAfter = true; // its head may predate the shutdown
    if (this.closeAfter) {
      releaseWrite(this);
      socket.end();
      this.pending = null;
    }
    // A closure per response: with pipelined requests answered synchronously, several can end
    // before the first microtask runs, and each must get its own close listeners run.
    queueMicrotask(() => {
      res.emitClose();
      if (this.current !== null || socket.destroyed || this.closeAfter) return;
      if (socket.isPaused()) socket.resume();
      if (this.pending !== null) this.serve();
    });
  }

  /** Gives the connection, with the bytes not yet served, to node:http for the rest of its life. */
  private handOn(): void {
    const socket = this.socket;
    releaseWrite(this); // the last response's bytes go before node:http's
    socket.off('data', this.onData);
    socket.off('error', noop);
    this.server.connections.delete(this);
    const rest = this.pending;
    this.pending = null;
    socket.pause();
    if (rest !== null) socket.unshift(rest);
    this.server.http1.emit('connection', socket);
    socket.resume();
  }
}

function noop(): void {}

/** A lean HTTP/1.1 front end; see the module's description. */
export class H1Server {
  readonly connections = new Set<H1Connection>();
  /** Seconds ticked (idle connections close by it). */
  tick = 0;
  closing = false;
  readonly keepAliveLine: string;
  private dateString = '';
  private dateSecond = -1;
  private readonly ticker: NodeJS.Timeout;

  constructor(
    readonly server: NetServer,
    readonly http1: HttpServer,
    readonly handler: FastHandler,
    readonly options: H1ServerOptions,
  ) {
    const idleTicks = Math.max(1, Math.ceil(options.keepAliveTimeoutMs / 1000));
    this.keepAliveLine = `connection: keep-alive\r\nkeep-alive: timeout=${idleTicks}\r\n\r\n`;
    this.ticker = setInterval(() => {
      this.tick++;
      for (const c of this.connections) if (c.idle && this.tick - c.lastTick > idleTicks) c.socket.destroy();
    }, 1000).unref();
    this.attach(server);
  }

  /**
   * Ties this front end to the server listening for it (its own, or h2c's outer one): node:http's
   * connection tracking (header timeouts, closeAll) starts when it listens; it and the ticker
   * stop when it closes.
   */
  attach(listening: NetServer): void {
    listening.once('listening', () => this.http1.emit('listening'));
    listening.once('close', () => {
      clearInterval(this.ticker);
      this.http1.close();
    });
  }

  /** The Date header's value, made once a second. */
  date(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateString = new Date(now).toUTCString();
    }
    return this.dateString;
  }

  /** Serves a new connection (also one whose first bytes were read to tell h2c from HTTP/1.1). */
  accept(socket: Socket, head: Buffer | null = null): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const c = new H1Connection(socket, this);
    this.connections.add(c);
    if (head !== null && head.length > 0) c.read(head);
  }

  /** Closes idle connections now and the busy ones after their current response. */
  closeIdle(): void {
    this.closing = true;
    for (const c of this.connections)
      if (c.idle) {
        releaseWrite(c); // the last response may still be held for this round
        c.socket.destroy();
      }
    this.http1.closeIdleConnections();
  }

  /** Destroys every connection. */
  closeAll(): void {
    this.closing = true;
    for (const c of this.connections) c.socket.destroy();
    this.http1.closeAllConnections();
  }
}

/**
 * Makes a plain HTTP/1.1 listener served by the lean front end, with `http1` (a node:http server
 * that never listens itself) taking the connections it hands on.
 *
 * @example
 * ```ts nocheck
 * const http1 = createServer({ maxHeaderSize: 16384 }, handler);
 * const front = createH1Server(http1, handler, { maxHeaderSize: 16384, keepAliveTimeoutMs: 5000 });
 * front.server.listen(8080, '127.0.0.1');
 * ```
 */
export function createH1Server(http1: HttpServer, handler: FastHandler, options: H1ServerOptions): H1Server {
  let front: H1Server | null = null;
  const server = createNetServer({ noDelay: true }, (socket) => front!.accept(socket));
  front = new H1Server(server, http1, handler, options);
  return front;
}
