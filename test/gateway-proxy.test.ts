/**
 * The gateway's proxy over real sockets: routing and rewriting, header hygiene, failover when an
 * endpoint dies (0 failed idempotent requests), Retry-After, the retry budget, SSE passthrough
 * and visible breaks, malformed and smuggling requests, body limits, JWT-keyed client limits.
 */

import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { type Gateway, parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { config, rawRequest, type TestUpstream, upstream } from './support/gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function up(handler: Parameters<typeof upstream>[0]): Promise<TestUpstream> {
  const u = await upstream(handler);
  cleanups.push(() => u.close());
  return u;
}

async function gateway(value: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway({ config: parseGatewayConfig(value) });
  cleanups.push(() => gw.close(100));
  return gw;
}

describe('gateway: routing and hygiene', () => {
  it('matches host, path prefix, exact and params; strips and rewrites; adds and removes headers', async () => {
    const u = await up((req, res) => res.end(JSON.stringify({ url: req.url, h: req.headers })));
    const gw = await gateway(
      config({ api: [u.url] }, [
        { name: 'exact', match: { exact: '/health' }, upstream: 'api', rewrite: '/status' },
        { name: 'users', match: { pattern: '/users/:id' }, upstream: 'api', rewrite: '/v2/u/:id' },
        {
          name: 'host',
          match: { host: '*.example.com', path: '/' },
          upstream: 'api',
          requestHeaders: { add: { 'x-tenant': 'ex' } },
        },
        {
          name: 'api',
          match: { path: '/api', methods: ['GET'] },
          upstream: 'api',
          stripPrefix: true,
          requestHeaders: { remove: ['x-secret'] },
          responseHeaders: { add: { 'x-gw': '1' } },
        },
      ]),
    );
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${gw.url}${path}`, { headers });
      return {
        status: r.status,
        r,
        body:
          r.status === 200
            ? ((await r.json()) as { url: string; h: Record<string, string> })
            : await r.text(),
      };
    };
    expect(((await get('/health')).body as { url: string }).url).toBe('/status');
    expect(((await get('/users/7/orders?x=1')).body as { url: string }).url).toBe('/v2/u/7/orders?x=1');
    const viaHost = await rawRequest(
      gw.address.port,
      'GET /x HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n',
    );
    expect(viaHost).toContain('"x-tenant":"ex"');
    const named = await rawRequest(
      gw.address.port,
      'GET /api/n HTTP/1.1\r\nHost: x\r\nConnection: close, x-drop\r\nX-Drop: 1\r\nX-Keep: 1\r\n\r\n',
    );
    expect(named).toContain('"x-keep":"1"');
    expect(named).not.toContain('x-drop');
    const a = await get('/api/items?q=1', { 'x-secret': 's', 'x-request-id': 'abc-1' });
    const body = a.body as { url: string; h: Record<string, string> };
    expect(body.url).toBe('/items?q=1');
    expect(body.h['x-secret']).toBeUndefined();
    expect(body.h['x-request-id']).toBe('abc-1');
    expect(body.h['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.h.host).toBe(`127.0.0.1:${u.port}`);
    expect(a.r.headers.get('x-gw')).toBe('1');
    expect(a.r.headers.get('x-request-id')).toBe('abc-1');
    expect((await get('/apix')).status).toBe(404);
    const nf = await fetch(`${gw.url}/nothing`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toBe('application/problem+json');
    expect(((await nf.json()) as { title: string }).title).toBe('No route');
  });

  it('refuses smuggling, malformed requests, oversized headers and bodies, and answers 502 for a cut response', async () => {
    const u = await up((req, res) => {
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (req.url === '/garbage') {
        req.socket.end('HTTP/1.1 2x0 NOPE\r\n\r\n');
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const gw = await gateway(
      config({ api: [u.url] }, [{ match: { path: '/' }, upstream: 'api', retry: false }], {
        limits: { maxBodyBytes: 1000, maxHeaderBytes: 2048 },
      }),
    );
    const port = gw.address.port;
    const smuggle = await rawRequest(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(smuggle).toMatch(/^HTTP\/1\.1 400/);
    const dupLength = await rawRequest(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
    );
    expect(dupLength).toMatch(/^HTTP\/1\.1 400/);
    const junk = await rawRequest(port, 'GARBAGE\r\n\r\n');
    expect(junk).toMatch(/^HTTP\/1\.1 400/);
    const bigHeader = await rawRequest(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`,
    );
    expect(bigHeader).toMatch(/^HTTP\/1\.1 431/);
    const bigBody = await fetch(`${gw.url}/`, { method: 'POST', body: 'x'.repeat(2000) });
    expect(bigBody.status).toBe(413);
    const cut = await fetch(`${gw.url}/cut`).then(
      (r) =>
        r.text().then(
          () => 'clean',
          () => 'broken',
        ),
      () => 'broken',
    );
    expect(cut).toBe('broken');
    const garbage = await fetch(`${gw.url}/garbage`);
    expect(garbage.status).toBe(502);
    expect(((await garbage.json()) as { detail: string }).detail).toContain('api/');
    expect((await fetch(`${gw.url}/fine`)).status).toBe(200);
  });
});

describe('gateway: failover', () => {
  it('an endpoint killed mid-load: 0 failed idempotent requests, the dead endpoint is ejected and explained', async () => {
    const a = await up((_req, res) => res.end('a'));
    const b = await up((_req, res) => res.end('b'));
    const c = await up((_req, res) => res.end('c'));
    const gw = await gateway({
      ...config(
        {
          api: {
            strategy: 'round-robin',
            endpoints: [{ url: a.url }, { url: b.url }, { url: c.url }],
            outlierDetection: { maxEjectionPercent: 34 },
          },
        },
        [{ match: { path: '/' }, upstream: 'api', retry: { maxAttempts: 3 } }],
      ),
      admin: '127.0.0.1:0',
    });
    const events: string[] = [];
    const es = await fetch(`${gw.admin!.url}/admin/events`);
    const reader = es.body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        events.push(Buffer.from(value).toString());
      }
    })().catch(() => {});
    const statuses = new Map<number, number>();
    const bodies = new Map<string, number>();
    let killed = false;
    for (let i = 0; i < 300; i++) {
      if (i === 60) {
        await b.close();
        killed = true;
      }
      const r = await fetch(`${gw.url}/x`);
      const t = await r.text();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (killed && i > 120) bodies.set(t, (bodies.get(t) ?? 0) + 1);
    }
    expect(statuses.get(200)).toBe(300);
    expect(bodies.get('b')).toBeUndefined();
    const ej = (await (await fetch(`${gw.admin!.url}/admin/ejections`)).json()) as {
      endpoint: string;
      reason: string;
      ejection: { reason: string; returnsInMs: number };
    }[];
    expect(ej.length).toBe(1);
    expect(ej[0]!.endpoint).toContain(String(b.port));
    expect(ej[0]!.ejection.reason).toBe('consecutiveGatewayErrors');
    expect(ej[0]!.ejection.returnsInMs).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(events.join('')).toContain('event: ejected');
    await reader.cancel();
  });

  it('honours 503 + Retry-After: the endpoint cools, the retry goes to another; a Retry-After over the cap is passed through', async () => {
    let aHits = 0;
    const a = await up((_req, res) => {
      aHits++;
      res.writeHead(503, { 'retry-after': '1' });
      res.end('busy');
    });
    const b = await up((_req, res) => res.end('b'));
    const gw = await gateway(
      config(
        {
          api: {
            strategy: 'priority',
            endpoints: [
              { url: a.url, priority: 0 },
              { url: b.url, priority: 1 },
            ],
          },
        },
        [{ match: { path: '/' }, upstream: 'api' }],
      ),
    );
    const first = await fetch(`${gw.url}/`);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('b');
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${gw.url}/`)).text()).toBe('b');
    expect(aHits).toBe(1); // cooling for 1 s: no more traffic to a
    const c = await up((_req, res) => {
      res.writeHead(429, { 'retry-after': '120' });
      res.end('later');
    });
    const gw2 = await gateway(
      config({ api: [c.url, c.url.replace(String(c.port), String(c.port))] }, [
        { match: { path: '/' }, upstream: 'api' },
      ]),
    );
    const r = await fetch(`${gw2.url}/`);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('120');
  });

  it('bounded amplification: with every endpoint failing, attempts <= 1.2 × requests; POST without a key is not retried', async () => {
    let attempts = 0;
    const bad = () =>
      up((_req, res) => {
        attempts++;
        res.writeHead(503);
        res.end();
      });
    const [a, b, c] = [await bad(), await bad(), await bad()];
    const gw = await gateway(
      config(
        {
          api: {
            endpoints: [{ url: a.url }, { url: b.url }, { url: c.url }],
            outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 },
            breaker: { enabled: false },
          },
        },
        [{ match: { path: '/' }, upstream: 'api', retry: { maxAttempts: 3 } }],
      ),
    );
    const n = 500;
    for (let i = 0; i < n; i++) expect((await fetch(`${gw.url}/`)).status).toBe(503);
    expect(attempts / n).toBeLessThanOrEqual(1.21);
    attempts = 0;
    for (let i = 0; i < 20; i++) await fetch(`${gw.url}/`, { method: 'POST', body: 'x' });
    expect(attempts).toBe(20);
  });

  it('one endpoint of three failing 50%: >= 99.9% success for GETs, attempts <= 1.3 × requests', async () => {
    let attempts = 0;
    let flip = 0;
    const ok = () =>
      up((_req, res) => {
        attempts++;
        res.end('ok');
      });
    const flaky = await up((_req, res) => {
      attempts++;
      flip++;
      res.writeHead(flip % 2 === 0 ? 503 : 200);
      res.end();
    });
    const [a, b] = [await ok(), await ok()];
    const gw = await gateway(
      config(
        {
          api: { strategy: 'least-request', endpoints: [{ url: a.url }, { url: b.url }, { url: flaky.url }] },
        },
        [{ match: { path: '/' }, upstream: 'api', retry: { maxAttempts: 3 } }],
      ),
    );
    const n = 2000;
    let good = 0;
    for (let i = 0; i < n; i += 20) {
      const rs = await Promise.all(
        Array.from({ length: 20 }, () => fetch(`${gw.url}/`).then((r) => r.status)),
      );
      good += rs.filter((s) => s === 200).length;
    }
    expect(good / n).toBeGreaterThanOrEqual(0.999);
    expect(attempts / n).toBeLessThanOrEqual(1.3);
  });
});

describe('gateway: streaming', () => {
  it('passes SSE token by token; a stream that breaks ends with an SSE error event, never a clean end', async () => {
    const u = await up((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`data: token-${i++}\n\n`);
        if (i === 5) {
          clearInterval(t);
          if (req.url === '/break') setTimeout(() => res.socket?.destroy(), 20);
          else res.end('data: [DONE]\n\n');
        }
      }, 30);
    });
    const gw = await gateway(config({ llm: [u.url] }, [{ match: { path: '/' }, upstream: 'llm' }]));
    const r = await fetch(`${gw.url}/ok`);
    const reader = r.body!.getReader();
    const arrivals: number[] = [];
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arrivals.push(performance.now());
      text += Buffer.from(value).toString();
    }
    expect(text).toContain('data: [DONE]');
    expect(arrivals.length).toBeGreaterThanOrEqual(5); // chunk by chunk, not buffered
    const broken = await rawRequest(gw.address.port, 'GET /break HTTP/1.1\r\nHost: x\r\n\r\n', 3_000);
    expect(broken).toContain('data: token-4');
    expect(broken).toContain('event: error');
    expect(broken).not.toMatch(/\r\n0\r\n\r\n$/); // no terminating chunk: not a clean end
  });
});

describe('gateway: clients', () => {
  it('a JWT-keyed limit: 401 without a valid token, 429 with RateLimit headers per client', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const secret = 'a-shared-secret-of-32-characters!';
    const gw = await gateway(
      config(
        { api: [u.url] },
        [
          {
            match: { path: '/' },
            upstream: 'api',
            limits: [{ name: 'per-user', key: 'jwt:sub', limit: 3, windowMs: 60_000 }],
          },
        ],
        { auth: { secret } },
      ),
    );
    const token = (sub: string) =>
      new SignJWT({ sub })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .sign(new TextEncoder().encode(secret));
    expect((await fetch(`${gw.url}/`)).status).toBe(401);
    expect((await fetch(`${gw.url}/`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const alice = await token('alice');
    const bob = await token('bob');
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${gw.url}/`, { headers: { authorization: `Bearer ${alice}` } });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit')).toMatch(/^"per-user";r=\d+;t=\d+$/);
    }
    const limited = await fetch(`${gw.url}/`, { headers: { authorization: `Bearer ${alice}` } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-policy')).toBe('"per-user";q=3;w=60');
    expect((await fetch(`${gw.url}/`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(200);
  });
});
