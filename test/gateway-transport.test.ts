// The gateway's HTTP/1.1 upstream transport (src/gateway/h1-pool.ts) on real sockets: framing,
// keep-alive reuse, stale keep-alive sockets, resets mid-body, timeouts, backpressure, request
// bodies and the connection limit.
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, createServer, type Socket, type Server as TcpServer } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Call,
  H1Pool,
  parseGatewayConfig,
  type ResponseHeaders,
  startGateway,
} from '../src/gateway/index.js';

interface Result {
  status: number;
  headers: ResponseHeaders;
  body: Buffer;
  error: (Error & { code?: string }) | null;
}

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function listen<S extends TcpServer | Server>(server: S): Promise<number> {
  closers.push(
    () =>
      new Promise((r) => {
        (server as Server).closeAllConnections?.();
        server.close(() => r(undefined));
      }),
  );
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** A raw TCP server: `onRequest(socket, head, n)` for each request head (n: its index on the socket). */
function raw(onRequest: (socket: Socket, head: string, n: number) => void): {
  server: TcpServer;
  connections: () => number;
} {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    let n = 0;
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end = buf.indexOf('\r\n\r\n');
      while (end >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        onRequest(socket, head, n++);
        end = buf.indexOf('\r\n\r\n');
      }
    });
  });
  closers.push(() => {
    for (const s of sockets) s.destroy();
  });
  return { server, connections: () => connections };
}

function pool(port: number, connections = 8, keepAliveTimeoutMs = 5000): H1Pool {
  const p = new H1Pool({ host: '127.0.0.1', port, connections, keepAliveTimeoutMs, connectTimeoutMs: 2000 });
  closers.push(() => p.close());
  return p;
}

function call(
  p: H1Pool,
  method: string,
  path: string,
  options: {
    body?: Buffer | Readable | null;
    headersTimeoutMs?: number;
    bodyTimeoutMs?: number;
    retrySafe?: boolean;
    onStart?: (c: Call) => void;
    onData?: (c: Call, chunk: Buffer) => void;
  } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const out: Result = { status: 0, headers: {}, body: Buffer.alloc(0), error: null };
    const chunks: Buffer[] = [];
    p.request(
      method,
      path,
      ['host', 'upstream.test', 'x-test', '1'],
      options.body ?? null,
      options.headersTimeoutMs ?? 5000,
      options.bodyTimeoutMs ?? 5000,
      options.retrySafe ?? true,
      {
        onResponseStart: (c, status, headers) => {
          out.status = status;
          out.headers = headers;
          options.onStart?.(c);
        },
        onResponseData: (c, chunk) => {
          chunks.push(Buffer.from(chunk));
          options.onData?.(c, chunk);
        },
        onResponseEnd: () => {
          out.body = Buffer.concat(chunks);
          resolve(out);
        },
        onResponseError: (_c, error) => {
          out.body = Buffer.concat(chunks);
          out.error = error;
          resolve(out);
        },
      },
    );
  });
}

describe('h1 transport', () => {
  it('keeps connections alive: sequential requests reuse one socket; the request head is as sent', async () => {
    const heads: string[] = [];
    const up = raw((s, head) => {
      heads.push(head);
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    });
    const p = pool(await listen(up.server));
    for (let i = 0; i < 5; i++) {
      const r = await call(p, 'GET', `/x?i=${i}`);
      expect(r.error).toBeNull();
      expect(r.body.toString()).toBe('hello');
    }
    expect(up.connections()).toBe(1);
    expect(heads[0]).toBe('GET /x?i=0 HTTP/1.1\r\nhost: upstream.test\r\nx-test: 1');
    expect(p.idleCount).toBe(1);
  });

  it('passes chunked and until-close bodies; an until-close response does not keep its socket', async () => {
    const up = raw((s, head) => {
      if (head.startsWith('GET /chunked'))
        s.write(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: 1\r\n\r\n',
        );
      else s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    });
    const p = pool(await listen(up.server));
    expect((await call(p, 'GET', '/chunked')).body.toString()).toBe('abcdefg');
    expect((await call(p, 'GET', '/chunked')).body.toString()).toBe('abcdefg');
    expect(up.connections()).toBe(1);
    expect((await call(p, 'GET', '/close')).body.toString()).toBe('until the end');
    expect((await call(p, 'GET', '/chunked')).body.toString()).toBe('abcdefg');
    expect(up.connections()).toBe(2);
  });

  it('a socket the upstream half-closed while idle leaves the pool: the next request, even a POST, gets a fresh one', async () => {
    const up = raw((s) => {
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'); // then FIN, without Connection: close
    });
    const p = pool(await listen(up.server));
    expect((await call(p, 'GET', '/')).body.toString()).toBe('ok');
    await new Promise((r) => setTimeout(r, 50));
    expect(p.idleCount).toBe(0);
    const r = await call(p, 'POST', '/', { body: Buffer.from('x'), retrySafe: false });
    expect(r.error).toBeNull();
    expect(r.body.toString()).toBe('ok');
    expect(up.connections()).toBe(2);
  });

  it('a stale keep-alive socket (closed as the request arrives) is retried once on a fresh one only when safe', async () => {
    // Each socket answers its first request and drops the second without a byte: the keep-alive race.
    const up = raw((s, _head, n) => {
      if (n === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else s.destroy();
    });
    const p = pool(await listen(up.server));
    expect((await call(p, 'GET', '/')).body.toString()).toBe('ok');
    const safe = await call(p, 'GET', '/', { retrySafe: true });
    expect(safe.error).toBeNull();
    expect(safe.body.toString()).toBe('ok');
    expect(up.connections()).toBe(2);
    const unsafe = await call(p, 'POST', '/', { body: Buffer.from('pay'), retrySafe: false });
    expect(unsafe.error).not.toBeNull();
    expect(['ECONNRESET', 'EPIPE', 'UPSTREAM_CLOSED']).toContain(unsafe.error!.code);
    expect(up.connections()).toBe(2);
  });

  it('a reset mid-body reaches the handler after the head, as an error (never a clean end)', async () => {
    const up = raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    const p = pool(await listen(up.server));
    const r = await call(p, 'GET', '/');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('0123456789');
    expect(['ECONNRESET', 'UPSTREAM_CLOSED']).toContain(r.error?.code);
    // A connection cut before the head: the same, with no head.
    const up2 = raw((s) => s.end('HTTP/1.1 200 OK\r\nContent-'));
    const p2 = pool(await listen(up2.server));
    const r2 = await call(p2, 'GET', '/', { retrySafe: false });
    expect(r2.status).toBe(0);
    expect(r2.error?.code).toBe('UPSTREAM_CLOSED');
  });

  it('an invalid response is a protocol error and its socket is not reused', async () => {
    const up = raw((s, head) => {
      if (head.includes('/bad'))
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const p = pool(await listen(up.server));
    expect((await call(p, 'GET', '/good')).body.toString()).toBe('ok');
    const bad = await call(p, 'GET', '/bad');
    expect(bad.error?.code).toBe('UPSTREAM_PROTOCOL');
    expect((await call(p, 'GET', '/good')).body.toString()).toBe('ok');
    expect(up.connections()).toBe(2);
  });

  it('times out a silent head and a silent body', async () => {
    const up = raw((s, head) => {
      if (head.includes('/body')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    });
    const p = pool(await listen(up.server));
    const head = await call(p, 'GET', '/head', { headersTimeoutMs: 100 });
    expect(head.error?.code).toBe('UPSTREAM_HEADERS_TIMEOUT');
    const body = await call(p, 'GET', '/body', { bodyTimeoutMs: 100 });
    expect(body.status).toBe(200);
    expect(body.error?.code).toBe('UPSTREAM_BODY_TIMEOUT');
    // A long head timeout is checked by the pool's ticker (no timer per request).
    const t0 = performance.now();
    const coarse = await call(p, 'GET', '/head', { headersTimeoutMs: 1000 });
    expect(coarse.error?.code).toBe('UPSTREAM_HEADERS_TIMEOUT');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it('connection refused is ECONNREFUSED', async () => {
    const s = createServer();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    const r = await call(pool(port), 'GET', '/');
    expect(r.error?.code).toBe('ECONNREFUSED');
  });

  it('streams request bodies: known length as is, unknown length chunked; large bodies with backpressure both ways', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 'x');
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.url === '/big') {
          res.writeHead(200, { 'content-length': big.length });
          res.end(big);
          return;
        }
        res.end(
          JSON.stringify({
            te: req.headers['transfer-encoding'] ?? null,
            cl: req.headers['content-length'] ?? null,
            n: body.length,
          }),
        );
      });
    });
    const p = pool(await listen(server));
    const chunked = await call(p, 'POST', '/echo', {
      body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]),
    });
    expect(JSON.parse(chunked.body.toString())).toEqual({ te: 'chunked', cl: null, n: 5 });
    const buffered = await call(p, 'PUT', '/echo', { body: Buffer.from('hello') });
    expect(JSON.parse(buffered.body.toString())).toEqual({ te: null, cl: '5', n: 5 });
    const empty = await call(p, 'POST', '/echo');
    expect(JSON.parse(empty.body.toString())).toEqual({ te: null, cl: '0', n: 0 });
    // A paused reader: the response waits, then arrives whole.
    let paused = 0;
    const r = await call(p, 'GET', '/big', {
      onData: (c) => {
        if (paused++ % 8 === 0) {
          c.pause();
          setTimeout(() => c.resume(), 2);
        }
      },
    });
    expect(r.error).toBeNull();
    expect(r.body.equals(big)).toBe(true);
    expect(paused).toBeGreaterThan(1);
  });

  it('queues beyond the connection limit; aborting a queued call ends it at once', async () => {
    const up = raw((s) => {
      setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 30);
    });
    const p = pool(await listen(up.server), 1);
    const rs = await Promise.all([call(p, 'GET', '/1'), call(p, 'GET', '/2'), call(p, 'GET', '/3')]);
    expect(rs.map((r) => r.body.toString())).toEqual(['ok', 'ok', 'ok']);
    expect(up.connections()).toBe(1);
    let queued: Call | null = null;
    const first = call(p, 'GET', '/a');
    const second = new Promise<Result>((resolve) => {
      queued = p.request('GET', '/b', ['host', 'x'], null, 5000, 5000, true, {
        onResponseStart: () => {},
        onResponseData: () => {},
        onResponseEnd: () => resolve({ status: 200, headers: {}, body: Buffer.alloc(0), error: null }),
        onResponseError: (_c, error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error }),
      });
    });
    (queued as unknown as Call).abort(Object.assign(new Error('gone'), { code: 'TEST_ABORT' }));
    expect((await second).error?.code).toBe('TEST_ABORT');
    expect((await first).body.toString()).toBe('ok');
  });

  it('a queued call sends the headers it was given, even if the caller reuses its list', async () => {
    const heads: string[] = [];
    const up = raw((s, head) => {
      heads.push(head);
      setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 20);
    });
    const p = pool(await listen(up.server), 1);
    const h = ['host', 'first.test'];
    const done = (resolve: (v: unknown) => void) => ({
      onResponseStart: () => {},
      onResponseData: () => {},
      onResponseEnd: () => resolve(null),
      onResponseError: () => resolve(null),
    });
    const a = new Promise((r) => p.request('GET', '/a', h, null, 5000, 5000, true, done(r)));
    const b = new Promise((r) => p.request('GET', '/b', h, null, 5000, 5000, true, done(r)));
    h[1] = 'second.test'; // e.g. the next attempt of an exchange
    await Promise.all([a, b]);
    expect(heads).toEqual(['GET /a HTTP/1.1\r\nhost: first.test', 'GET /b HTTP/1.1\r\nhost: first.test']);
  });

  it('close() waits for calls in flight, then fails later ones', async () => {
    const up = raw((s) => {
      setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 30);
    });
    const p = pool(await listen(up.server));
    const inFlight = call(p, 'GET', '/');
    await new Promise((r) => setTimeout(r, 5));
    const closed = p.close();
    expect((await inFlight).body.toString()).toBe('ok');
    await closed;
    expect(p.size).toBe(0);
    expect((await call(p, 'GET', '/')).error?.code).toBe('UPSTREAM_POOL_CLOSED');
  });

  it('clients that go away mid-request are no verdict on the endpoint: its breaker stays closed', async () => {
    const up = raw((s, head) => {
      if (head.includes('/slow')) return; // never answers
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const port = await listen(up.server);
    const gw = await startGateway({
      config: parseGatewayConfig({
        listen: '127.0.0.1:0',
        accessLog: false,
        upstreams: { api: { endpoints: [{ url: `http://127.0.0.1:${port}` }], breaker: { threshold: 2 } } },
        routes: [{ match: { path: '/' }, upstream: 'api' }],
      }),
    });
    closers.push(() => gw.close(100));
    for (let i = 0; i < 5; i++) {
      const req = httpRequest(`${gw.url}/slow`);
      req.on('error', () => {});
      req.end();
      await new Promise((r) => setTimeout(r, 30));
      req.destroy();
    }
    await new Promise((r) => setTimeout(r, 50));
    const ep = gw.components.upstreams[0]!.endpoints[0]!;
    expect(ep.breaker?.state).toBe('closed');
    const res = await fetch(`${gw.url}/fast`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });
});
