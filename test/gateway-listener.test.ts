/**
 * The gateway's listener over real sockets: HTTPS with TLS 1.3 as the minimum, HTTP/2 by ALPN
 * with HTTP/1.1 fallback, h2c by prior knowledge beside HTTP/1.1 on one port — and requests over
 * HTTP/2 taking the same routes and policies (path rewrite, retries, cache, chaos reset).
 * The certificate is a self-signed test fixture (test/fixtures/tls, CN localhost, 127.0.0.1).
 */

import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, constants, connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { config, gatewayTestKit, rawRequest } from './support/gateway.js';

const dir = fileURLToPath(new URL('./fixtures/tls/', import.meta.url));
const certFile = `${dir}cert.pem`;
const keyFile = `${dir}key.pem`;
const ca = readFileSync(certFile);

const { up, gateway, later } = gatewayTestKit();

function h2(url: string): ClientHttp2Session {
  const session = h2connect(url, { ca, servername: 'localhost' });
  session.on('error', () => {});
  later(
    () =>
      new Promise<void>((r) => {
        session.close(() => r());
        setTimeout(r, 200);
      }),
  );
  return session;
}

/** One request on an HTTP/2 session: status, headers and body (or the stream's error code). */
function h2get(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string; rstCode?: number }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    let head: Record<string, unknown> = {};
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (body += d));
    stream.on('end', () => resolve({ status, headers: head, body }));
    stream.on('error', (e) =>
      stream.rstCode !== undefined
        ? resolve({ status, headers: head, body, rstCode: stream.rstCode })
        : reject(e),
    );
    stream.on('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR)
        resolve({ status, headers: head, body, rstCode: stream.rstCode });
    });
    stream.end();
  });
}

function httpsGet(
  url: string,
  maxVersion?: 'TLSv1.2',
): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca, servername: 'localhost', ...(maxVersion ? { maxVersion } : {}) },
      (res) => {
        const protocol = (res.socket as { getProtocol?: () => string | null }).getProtocol?.() ?? '';
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) =>
  res.end(
    JSON.stringify({
      xff: req.headers['x-forwarded-for'],
      url: req.url,
      host: req.headers.host,
      proto: req.headers['x-forwarded-proto'],
      fhost: req.headers['x-forwarded-host'],
    }),
  );

describe('gateway listener: TLS and HTTP/2', () => {
  it('HTTPS with TLS 1.3 minimum: a TLS 1.2 client is refused, a TLS 1.3 one is served', async () => {
    const u = await up(echo);
    const gw = await gateway(
      config({ api: [u.url] }, [{ match: { path: '/' }, upstream: 'api' }], {
        tls: { certFile, keyFile, minVersion: 'TLSv1.3' },
      }),
    );
    expect(gw.url.startsWith('https://127.0.0.1:')).toBe(true);
    const ok = await httpsGet(`${gw.url}/hello`);
    expect(ok.status).toBe(200);
    expect(ok.protocol).toBe('TLSv1.3');
    expect(JSON.parse(ok.body)).toMatchObject({ url: '/hello', proto: 'https' });
    await expect(httpsGet(`${gw.url}/hello`, 'TLSv1.2')).rejects.toThrow();
  });

  it('h2 over TLS by ALPN and HTTP/1.1 fallback: same routing, rewrite and retries', async () => {
    let calls = 0;
    const flaky = await up((req, res) => {
      if (req.method === 'POST') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (body += d));
        req.on('end', () => res.end(JSON.stringify({ url: req.url, body })));
        return;
      }
      calls++;
      if (calls === 1) {
        res.writeHead(503);
        res.end();
        return;
      }
      echo(req, res);
    });
    const gw = await gateway(
      config(
        { api: [flaky.url] },
        [
          {
            match: { path: '/v1' },
            upstream: 'api',
            rewrite: '/internal',
            retry: { maxAttempts: 2, initialMs: 1, maxMs: 1 },
          },
        ],
        { tls: { certFile, keyFile }, http2: true },
      ),
    );
    const session = h2(gw.url);
    const alpn = await new Promise<string | false | undefined>((r) =>
      session.once('connect', (s) => r(s.alpnProtocol)),
    );
    expect(alpn).toBe('h2');
    const r = await h2get(session, '/v1/items?x=1');
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { url: string; proto: string; fhost: string; xff: string };
    expect(seen.url).toBe('/internal/items?x=1');
    expect(seen.proto).toBe('https');
    expect(seen.xff).toBe('127.0.0.1');
    expect(seen.fhost).toMatch(/:\d+$/); // :authority became Host
    expect(calls).toBe(2); // the 503 was retried
    expect(r.headers['x-request-id']).toBeDefined();
    // Unknown route: 404 problem+json over h2 too.
    const missing = await h2get(session, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/problem+json');
    // A body over h2 (no content-length: streamed) reaches the upstream whole.
    const posted = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/v1/post', ':method': 'POST' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (body += d));
      stream.on('end', () => resolve(body));
      stream.on('error', reject);
      stream.write('hello ');
      setTimeout(() => stream.end('world'), 20);
    });
    expect(JSON.parse(posted)).toMatchObject({ url: '/internal/post', body: 'hello world' });
    // An HTTP/1.1 client on the same port.
    const h1 = await httpsGet(`${gw.url}/v1/x`);
    expect(h1.status).toBe(200);
    expect(JSON.parse(h1.body).url).toBe('/internal/x');
  });

  it('h2c by prior knowledge and HTTP/1.1 on one cleartext port; chaos reset is an RST_STREAM', async () => {
    const u = await up((req, res) => {
      if (req.url === '/echo') return echo(req, res);
      res.setHeader('cache-control', 'max-age=60');
      res.end('cached body');
    });
    const gw = await gateway(
      config(
        { api: [u.url] },
        [
          { name: 'reset', match: { path: '/reset' }, upstream: 'api', chaos: { reset: true } },
          { name: 'api', match: { path: '/' }, upstream: 'api', cache: true },
        ],
        { http2: true },
      ),
    );
    const session = h2(gw.url);
    const a = await h2get(session, '/c');
    expect(a.body).toBe('cached body');
    const b = await h2get(session, '/c');
    expect(b.headers['cache-status']).toBe('bulwark; hit');
    const reset = await h2get(session, '/reset');
    expect(reset.rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR);
    // The client's address reaches the upstream (X-Forwarded-For) over h2c too.
    const e = JSON.parse((await h2get(session, '/echo')).body) as { xff: string; proto: string };
    expect(e.xff).toBe('127.0.0.1');
    expect(e.proto).toBe('http');
    // The session survives a stream reset.
    expect((await h2get(session, '/c')).status).toBe(200);
    // HTTP/1.1 on the same port.
    const h1 = await fetch(`${gw.url}/c`);
    expect(await h1.text()).toBe('cached body');
    const raw = await rawRequest(gw.address.port, 'GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true);
    // Garbage is refused, not crashed on.
    const bad = await rawRequest(gw.address.port, 'NOT HTTP\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
  });

  it('an idle HTTP/2 session over TLS does not keep the gateway from closing', async () => {
    const u = await up(echo);
    const gw = await startGateway({
      config: parseGatewayConfig(
        config({ api: [u.url] }, [{ match: { path: '/' }, upstream: 'api' }], {
          tls: { certFile, keyFile },
          http2: true,
        }),
      ),
    });
    const s = tlsConnect({
      port: gw.address.port,
      host: '127.0.0.1',
      ca,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
    });
    s.on('error', () => {});
    await new Promise((r) => s.once('secureConnect', r));
    await gw.close(200);
    s.destroy();
  });
});
