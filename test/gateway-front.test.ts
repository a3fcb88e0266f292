/**
 * The gateway's lean HTTP/1.1 front end (src/gateway/h1-server.ts) over real sockets:
 * - differential: every head it takes, node:http parses to the same method, URL and headers
 *   (fast-check generates heads from the grammar with mutations: bad bytes, folds, lone LF,
 *   framing headers, HTTP/1.0, duplicates);
 * - keep-alive, pipelining, HEAD/204/chunked framing, Connection: close;
 * - hand-on to node:http mid-connection (a body, a partial head, a malformed head) answered
 *   exactly as node:http answers;
 * - a client leaving mid-response and a graceful close leave no connection behind.
 */

import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRequestHead } from '../src/gateway/h1-server.js';
import { config, gatewayTestKit, rawRequest } from './support/gateway.js';

const { up, gateway, later } = gatewayTestKit();

/** What node:http makes of `bytes` (null when it refuses them). */
function nodeParse(
  port: number,
  bytes: string,
  seen: { last: IncomingMessage | null },
): Promise<{ method: string; url: string; headers: Record<string, unknown> } | null> {
  return new Promise((resolve) => {
    seen.last = null;
    const s = connect(port, '127.0.0.1');
    let out = '';
    const finish = () => {
      s.destroy();
      const r = seen.last;
      resolve(
        r === null || !out.startsWith('HTTP/1.1 200')
          ? null
          : { method: r.method!, url: r.url!, headers: { ...r.headers } },
      );
    };
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (out.includes('\r\n\r\nok')) finish();
    });
    s.on('close', finish);
    s.on('error', () => {});
    s.end(Buffer.from(bytes, 'latin1'));
  });
}

const tchar = fc.constantFrom(...'abcxyzABZ019-_.!#$%&*+^`|~'.split(''));
const name = fc.oneof(
  fc.constantFrom('Accept', 'x-a', 'X-A', 'cookie', 'Cookie', 'user-agent', 'set-cookie', 'via', 'Host'),
  fc.string({ unit: tchar, minLength: 1, maxLength: 6 }),
);
const value = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('a', ' b ', 'x, y', '\tz', 'é', 'c=d; e=f', '') },
  fc.string({
    unit: fc.constantFrom('a', ' ', '\t', ':', ';', '=', ',', '\x7f', '\x00', '\xe9'),
    maxLength: 4,
  }),
);
const mutation = fc.constantFrom(
  'none',
  'none',
  'none',
  'none',
  'none',
  'none',
  'lf',
  'fold',
  'cl',
  'te',
  'http10',
  'space-before-colon',
  'no-host',
  'two-hosts',
  'post',
  'abs-uri',
  'ctl-in-target',
  'lower-method',
);

function head(method: string, path: string, headers: [string, string][], m: string): string {
  let line = `${method} ${path} HTTP/1.1`;
  const hs = headers.map(([k, v]) => `${k}: ${v}`);
  if (m !== 'no-host') hs.unshift('Host: h.test');
  if (m === 'two-hosts') hs.push('host: other.test');
  if (m === 'cl') hs.push('Content-Length: 0');
  if (m === 'te') hs.push('Transfer-Encoding: chunked');
  if (m === 'fold') hs.push('X-F: a', ' b');
  if (m === 'space-before-colon') hs.push('X-S : a');
  if (m === 'http10') line = line.replace('HTTP/1.1', 'HTTP/1.0');
  if (m === 'post') line = line.replace(method, 'POST');
  if (m === 'abs-uri') line = line.replace(path, `http://h.test${path}`);
  if (m === 'ctl-in-target') line = line.replace(path, `${path}\x01`);
  if (m === 'lower-method') line = line.replace(method, method.toLowerCase());
  const sep = m === 'lf' ? '\n' : '\r\n';
  return `${[line, ...hs].join(sep)}\r\n\r\n`;
}

describe('gateway front end: parsing', () => {
  it('takes only heads node:http parses the same way (differential, 300 runs)', async () => {
    const seen: { last: IncomingMessage | null } = { last: null };
    const server = createServer((req, res) => {
      seen.last = req;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    later(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    let taken = 0;
    let handed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'OPTIONS'),
        fc.constantFrom('/', '/a/b?c=d&e', '/%20x', '/a#f', '/~!$'),
        fc.array(fc.tuple(name, value), { maxLength: 5 }),
        mutation,
        async (method, path, headers, m) => {
          const bytes = head(method, path, headers, m);
          const ours = parseRequestHead(bytes.slice(0, -4));
          if (ours === null) {
            handed++;
            return;
          }
          taken++;
          const theirs = await nodeParse(port, bytes, seen);
          expect(theirs).not.toBeNull();
          expect({ method: ours.method, url: ours.url, headers: ours.headers }).toEqual(theirs);
        },
      ),
      { numRuns: 300 },
    );
    expect(taken).toBeGreaterThan(50);
    expect(handed).toBeGreaterThan(50);
  });

  it('refuses what it must hand on', () => {
    const ok = 'GET / HTTP/1.1\r\nHost: a';
    expect(parseRequestHead(ok)).not.toBeNull();
    for (const bad of [
      'GET / HTTP/1.0\r\nHost: a',
      'POST / HTTP/1.1\r\nHost: a',
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5',
      'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked',
      'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket',
      'GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b',
      'GET / HTTP/1.1\r\nHost: a\nX: b',
      'GET / HTTP/1.1\r\nHost: a\r\n X: b',
      'GET / HTTP/1.1\r\nX: b',
      'GET http://a/ HTTP/1.1\r\nHost: a',
      'GET /a b HTTP/1.1\r\nHost: a',
      'GET / HTTP/1.1\r\nHo st: a',
      'GET / HTTP/1.1\r\nHost: a\r\nX: \x00',
    ])
      expect(parseRequestHead(bad), JSON.stringify(bad)).toBeNull();
  });
});

/** Reads responses off one socket until `n` have been seen (framed by Content-Length or chunked). */
function client(port: number): { socket: Socket; text: () => string; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let out = '';
  socket.on('data', (d) => (out += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, text: () => out, closed };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('gateway front end: connections', () => {
  it('serves pipelined GETs in order, then hands the connection on at a POST with a body', async () => {
    const bodies: string[] = [];
    const u = await up((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        bodies.push(`${req.method} ${req.url} ${b}`);
        res.end(`${req.method}${req.url}`);
      });
    });
    const gw = await gateway(config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }]));
    const c = client(gw.address.port);
    c.socket.write(
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /4 HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    await until(() => c.text().includes('GET/4'));
    const order = [...c.text().matchAll(/(GET|POST)\/\d/g)].map((m) => m[0]);
    expect(order).toEqual(['GET/1', 'GET/2', 'POST/3', 'GET/4']);
    expect(bodies).toContain('POST /3 abc');
    c.socket.destroy();
  });

  it('frames HEAD, 204, chunked and close-delimited responses; Connection: close closes', async () => {
    const u = await up((req, res) => {
      if (req.url === '/204') {
        res.writeHead(204);
        res.end();
      } else if (req.url === '/chunked') {
        res.write('ab');
        setTimeout(() => res.end('cd'), 5);
      } else {
        res.writeHead(200, { 'content-length': 5 });
        res.end(req.method === 'HEAD' ? undefined : 'hello');
      }
    });
    const gw = await gateway(config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }]));
    const port = gw.address.port;
    const head = await rawRequest(port, 'HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(head).toMatch(/content-length: 5\r\n/i);
    expect(head).toMatch(/connection: close\r\n/i);
    expect(head.endsWith('\r\n\r\n')).toBe(true); // no body
    const none = await rawRequest(port, 'GET /204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(none).toMatch(/^HTTP\/1.1 204 No Content\r\n/);
    expect(none).not.toMatch(/transfer-encoding|content-length/i);
    expect(none.endsWith('\r\n\r\n')).toBe(true);
    const chunked = await rawRequest(port, 'GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(chunked).toMatch(/transfer-encoding: chunked\r\n/i);
    expect(chunked.slice(chunked.indexOf('\r\n\r\n') + 4)).toBe('2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
    const keep = await rawRequest(port, 'GET /k HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    expect(keep).toMatch(/connection: keep-alive\r\n/i);
  });

  it('a head that stops arriving is cut after headersTimeoutMs (slowloris), also once handed on', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const gw = await gateway(
      config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }], {
        limits: { headersTimeoutMs: 300 },
      }),
    );
    // Partial from the first byte (handed to node:http at once), and after a served request.
    const fresh = client(gw.address.port);
    fresh.socket.write('GET / HTTP/1.1\r\nHo');
    const after = client(gw.address.port);
    after.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => after.text().endsWith('ok'));
    after.socket.write('GET / HTTP/1.1\r\nHo');
    await Promise.all([fresh.closed, after.closed]);
    expect(fresh.text()).toMatch(/^HTTP\/1.1 408 /);
  });

  it('hands partial, malformed and smuggling heads to node:http, which answers 400', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const gw = await gateway(config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }]));
    const port = gw.address.port;
    // A head in two writes: node:http takes the connection and serves it.
    const c = client(port);
    c.socket.write('GET /p HTTP/1.1\r\nHo');
    await new Promise((r) => setTimeout(r, 20));
    c.socket.write('st: a\r\nConnection: close\r\n\r\n');
    await c.closed;
    expect(c.text()).toMatch(/^HTTP\/1.1 200 OK[\s\S]*ok$/);
    for (const bad of [
      'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n X: b\r\n\r\n',
    ])
      expect(await rawRequest(port, bad)).toMatch(/^HTTP\/1.1 400 /);
  });

  it('a client leaving mid-response and a graceful close leave no connection behind', async () => {
    let held: (() => void) | null = null;
    const u = await up((req, res) => {
      if (req.url === '/slow') held = () => res.end('late');
      else res.end('ok');
    });
    const gw = await gateway(config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }]));
    const port = gw.address.port;
    const a = client(port);
    a.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => held !== null);
    a.socket.destroy();
    held!();
    held = null;
    // A request in flight when the gateway closes ends normally, with Connection: close.
    const b = client(port);
    b.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => held !== null);
    const closing = gw.close(2000);
    await new Promise((r) => setTimeout(r, 20));
    held!();
    await b.closed;
    await closing;
    expect(b.text()).toMatch(/connection: close\r\n[\s\S]*late$/i);
  });
});

describe('gateway front end: request sequences (property)', () => {
  it('any mix of GET/HEAD/POST/malformed requests, split anywhere, is answered in order, a prefix until a malformed one, which closes the connection (60 runs)', async () => {
    const u = await up((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-seen': `${req.method} ${req.url} ${n}` });
        res.end(req.method === 'HEAD' ? undefined : `ok ${req.url}`);
      });
    });
    const gw = await gateway(config({ u: [u.url] }, [{ match: { path: '/' }, upstream: 'u' }]));
    const port = gw.address.port;
    type Kind = 'get' | 'head' | 'post' | 'bad';
    const bytesOf = (k: Kind, i: number): string =>
      k === 'get'
        ? `GET /r${i} HTTP/1.1\r\nHost: a\r\nX-N: ${i}\r\n\r\n`
        : k === 'head'
          ? `HEAD /r${i} HTTP/1.1\r\nHost: a\r\n\r\n`
          : k === 'post'
            ? `POST /r${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc`
            : `GET /r${i} HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n`;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Kind>('get', 'get', 'head', 'post', 'bad'), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (kinds, cuts) => {
          const wire = kinds.map((k, i) => bytesOf(k, i)).join('');
          const at = [...new Set(cuts.map((c) => c % wire.length))].sort((a, b) => a - b);
          const c = client(port);
          let from = 0;
          for (const p of [...at, wire.length]) {
            if (p <= from) continue;
            c.socket.write(wire.slice(from, p));
            from = p;
            await new Promise((r) => setTimeout(r, 2));
          }
          const firstBad = kinds.indexOf('bad');
          const served = firstBad < 0 ? kinds.length : firstBad;
          const expected = kinds
            .slice(0, served)
            .map((k, i) => `${k === 'post' ? 'POST' : k.toUpperCase()} ${i}`);
          const statusesOf = () => [...c.text().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
          if (firstBad < 0) {
            // Every request answered, in order.
            await until(() => statusesOf().length >= served, 5000).catch((e: Error) => {
              throw new Error(`${e.message}: ${JSON.stringify(c.text())}`);
            });
          } else {
            // The connection is closed, never left hanging (node:http cuts it at the malformed
            // request, and with it the answers to requests pipelined in the same read).
            await Promise.race([
              c.closed,
              new Promise((_, reject) =>
                setTimeout(() => reject(new Error(`not closed: ${JSON.stringify(c.text())}`)), 5000),
              ),
            ]);
          }
          const statuses = statusesOf();
          const seen = [...c.text().matchAll(/x-seen: (\S+) \/r(\d+)/gi)].map((m) => `${m[1]} ${m[2]}`);
          // What was answered is a prefix of what was asked, in order; a 400 only last.
          expect(seen).toEqual(expected.slice(0, seen.length));
          const ok = statuses.filter((x) => x === 200).length;
          expect(ok).toBe(seen.length);
          if (firstBad < 0) expect(seen.length).toBe(served);
          else if (statuses.length > ok) expect(statuses.slice(ok)).toEqual([400]);
          c.socket.destroy();
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
