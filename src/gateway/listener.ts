/**
 * The gateway's listener: plain HTTP/1.1, HTTPS (`tls`: certificate and key files, `minVersion`
 * TLS 1.2 or 1.3), and HTTP/2 (`http2: true`): h2 negotiated by ALPN over TLS with HTTP/1.1 as
 * the fallback, or, without `tls`, h2c by prior knowledge and HTTP/1.1 on the same port (the
 * connection preface decides). Requests that arrive over HTTP/2 are adapted once (pseudo-headers
 * out of the raw header list, `:authority` as Host) and then take the same handler — the same
 * routing and policies — as HTTP/1.1 ones.
 * @module
 */

import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import {
  createServer as createH2Server,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { GatewayConfig } from './config.js';
import { createH1Server, type FastHandler } from './h1-server.js';

/** The request listener the gateway's handler is. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** What the gateway needs of its listener, whichever the protocol. */
export interface GatewayListener {
  /** The server that listens (its `address()` is the gateway's). */
  readonly server: NetServer;
  /** `http` or `https`: the scheme of the gateway's URL. */
  readonly scheme: 'http' | 'https';
  /** Where HTTP/1.1 client errors (bad requests, header overflows, slowloris) are reported. */
  readonly http1: HttpServer | null;
  /** Closes idle connections (and sends GOAWAY to HTTP/2 sessions). */
  closeIdle(): void;
  /** Destroys every connection. */
  closeAll(): void;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

interface Peer {
  address: string | undefined;
  family: string | undefined;
  port: number | undefined;
}
/** Node's wrapper of a non-native stream under an HTTP/2 session (its peer address is `_peername`). */
interface PeerSocket {
  stream?: { peer?: Peer };
  _peername?: Peer;
}

/**
 * A stream over `socket` that first yields `head` (the bytes read to tell h2c from HTTP/1.1).
 * HTTP/2 sessions read native sockets below JavaScript, where bytes given back with `unshift`
 * would be lost, so an h2c connection runs over this wrapper instead.
 */
function h2Stream(socket: Socket, head: Buffer): Duplex {
  const d = new Duplex({
    read: () => {
      socket.resume();
    },
    write: (chunk: Buffer, _enc, cb) => {
      socket.write(chunk, cb);
    },
    final: (cb) => {
      socket.end();
      cb();
    },
    destroy: (error, cb) => {
      socket.destroy(error ?? undefined);
      cb(error);
    },
  });
  (d as unknown as { peer: Peer }).peer = {
    address: socket.remoteAddress,
    family: socket.remoteFamily,
    port: socket.remotePort,
  };
  d.push(head);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.once('end', () => d.push(null));
  socket.once('close', () => d.destroy());
  return d;
}

/**
 * Adapts an HTTP/2 compatibility request in place for the handler: pseudo-headers leave the raw
 * header list, `:authority` becomes Host, a body without content-length is marked as streamed. Connection-specific headers the handler may set (e.g.
 * `connection: close` on a 413) are dropped, since HTTP/2 forbids them.
 */
function adaptH2(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const raw = req.rawHeaders;
  let w = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.charCodeAt(0) === 58 /* : */) continue;
    raw[w++] = raw[i]!;
    raw[w++] = raw[i + 1]!;
  }
  raw.length = w;
  // An h2 request has a body unless its HEADERS frame ended the stream; without a
  // content-length, the handler must see it as a streamed (chunked) body.
  if (req.headers['content-length'] === undefined && req.stream.endAfterHeaders === false)
    req.headers['transfer-encoding'] = 'chunked';
  const authority = req.headers[':authority'];
  if (req.headers.host === undefined && typeof authority === 'string') {
    req.headers.host = authority;
    raw.push('host', authority);
  }
  const writeHead = res.writeHead.bind(res) as (s: number, h?: Record<string, unknown>) => unknown;
  (res as unknown as { writeHead: typeof writeHead }).writeHead = (status, headers) => {
    if (headers !== undefined) {
      delete headers.connection;
      delete headers['keep-alive'];
    }
    return writeHead(status, headers);
  };
}

function tlsOptions(tls: NonNullable<GatewayConfig['tls']>) {
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    minVersion: tls.minVersion,
  } as const;
}

/**
 * Makes the listener for `config` (not yet listening).
 *
 * @example
 * ```ts nocheck
 * const l = createListener(config, handler, { maxHeaderSize: 16384 });
 * l.server.listen(8443, '127.0.0.1');
 * ```
 */
export function createListener(
  config: GatewayConfig,
  handler: RequestListener,
  http1Options: ServerOptions,
): GatewayListener {
  const sessions = new Set<Http2Session>();
  const h2handler = (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (req.httpVersionMajor === 2) adaptH2(req, res);
    handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  };
  const track = (server: Http2Server | Http2SecureServer) =>
    server.on('session', (s: Http2Session) => {
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
      // An h2c session runs over our stream wrapper: give its socket the client's address.
      const key = Object.getOwnPropertySymbols(s).find((k) => k.description === 'socket');
      const socket = key === undefined ? undefined : (s as unknown as Record<symbol, PeerSocket>)[key];
      if (socket?.stream?.peer !== undefined) socket._peername = socket.stream.peer;
    });
  const closeSessions = (all: boolean) => {
    for (const s of sessions) {
      if (all) s.destroy();
      else s.close();
    }
  };

  if (config.tls !== undefined && config.http2) {
    // h2 by ALPN, HTTP/1.1 fallback (the compat API serves both through one handler).
    const server = createSecureServer(
      {
        ...tlsOptions(config.tls),
        allowHTTP1: true,
        maxSessionMemory: 64,
        settings: { maxHeaderListSize: http1Options.maxHeaderSize ?? 16_384 },
      },
      h2handler,
    );
    track(server);
    return {
      server,
      scheme: 'https',
      http1: null,
      closeIdle: () => closeSessions(false),
      closeAll: () => closeSessions(true),
    };
  }
  if (config.tls !== undefined) {
    const server = createHttpsServer({ ...http1Options, ...tlsOptions(config.tls) }, handler);
    return {
      server,
      scheme: 'https',
      http1: server,
      closeIdle: () => server.closeIdleConnections(),
      closeAll: () => server.closeAllConnections(),
    };
  }
  const http1 = createHttpServer(http1Options, handler);
  // The lean front end serves the common bodiless requests and hands every other connection to
  // `http1`. Its light request/response objects carry what the handler reads and writes of
  // node:http's (h1-server.ts lists it), hence the cast.
  const front = createH1Server(http1, handler as unknown as FastHandler, {
    maxHeaderSize: http1Options.maxHeaderSize ?? 16_384,
    keepAliveTimeoutMs: http1Options.keepAliveTimeout ?? 5_000,
  });
  if (!config.http2) {
    return {
      server: front.server,
      scheme: 'http',
      http1,
      closeIdle: () => front.closeIdle(),
      closeAll: () => front.closeAll(),
    };
  }
  // h2c by prior knowledge and HTTP/1.1 on one port: the first bytes say which.
  const h2c = createH2Server(
    { settings: { maxHeaderListSize: http1Options.maxHeaderSize ?? 16_384 } },
    h2handler,
  );
  track(h2c);
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), http1Options.headersTimeout ?? 10_000);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const h2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && head.length < PREFACE.length) return; // wait for the whole preface
      socket.off('data', onData);
      clearTimeout(timer);
      if (h2) h2c.emit('connection', h2Stream(socket, head));
      else {
        sockets.delete(socket);
        front.accept(socket, head);
      }
    };
    socket.on('data', onData);
  });
  front.attach(server);
  return {
    server,
    scheme: 'http',
    http1,
    closeIdle: () => {
      front.closeIdle();
      closeSessions(false);
    },
    closeAll: () => {
      front.closeAll();
      closeSessions(true);
      for (const s of sockets) s.destroy();
    },
  };
}
