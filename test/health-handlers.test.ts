/**
 * The health endpoints on real frameworks: node:http (real HTTP), Express 5 (real HTTP) and
 * Fastify 5 (inject). Every body is validated against the health+json draft's fields.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHealthMonitor,
  customCheck,
  expressHealth,
  fastifyHealth,
  HEALTH_JSON,
  type HealthMonitor,
  healthHandler,
} from '../src/health/index.js';
import { validateHealthJson } from './support/health-json.js';

let up = true;
function makeMonitor(): HealthMonitor {
  return createHealthMonitor({
    serviceId: 'svc',
    version: '7',
    groups: { db: ['db'] },
    checks: [
      customCheck({
        name: 'db',
        componentType: 'datastore',
        failureThreshold: 1,
        intervalMs: 60_000,
        run: () => up,
      }),
      customCheck({ name: 'loop', liveness: true, critical: false, intervalMs: 60_000, run: () => true }),
    ],
  });
}

const metrics = () => ({ contentType: 'text/plain; version=0.0.4', body: 'bulwark_up 1\n' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  up = true;
  for (const c of cleanups.splice(0)) await c();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The endpoints' contract, for any base URL. */
async function contract(base: string, monitor: HealthMonitor): Promise<void> {
  await monitor.runNow();
  let res = await fetch(`${base}/health`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain(HEALTH_JSON);
  expect(res.headers.get('cache-control')).toBe('no-store');
  let body = await res.json();
  validateHealthJson(body);
  expect(body.status).toBe('pass');
  expect(body.version).toBeUndefined(); // details hidden by default
  expect(body.checks['db:responseTime'][0].observedValue).toBeUndefined();
  for (const p of ['/livez', '/readyz', '/startupz', '/health/db']) {
    res = await fetch(`${base}${p}`);
    expect(res.status, p).toBe(200);
    validateHealthJson(await res.json());
  }
  res = await fetch(`${base}/health/nope`);
  expect(res.status).toBe(404);
  // Trailing slash and query: the same answer on every framework.
  expect((await fetch(`${base}/readyz/`)).status).toBe(200);
  expect((await fetch(`${base}/health/db/`)).status).toBe(200);
  expect((await fetch(`${base}/readyz?probe=1`)).status).toBe(200);
  // Malformed percent-encoding in the group: 400, and the server lives on (it used to throw URIError).
  res = await fetch(`${base}/health/%E0%A4%A`);
  expect(res.status).toBe(400);
  await res.text();
  expect((await fetch(`${base}/livez`)).status).toBe(200);
  // A passing check has no output in its entry, even with details (the draft: SHOULD be omitted).
  res = await fetch(`${base}/health`, { headers: { authorization: 'Bearer ops' } });
  body = await res.json();
  expect(body.checks['db:responseTime'][0].status).toBe('pass');
  expect(body.checks['db:responseTime'][0]).not.toHaveProperty('output');
  res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  expect(await res.text()).toBe('bulwark_up 1\n');
  res = await fetch(`${base}/readyz`, { method: 'HEAD' });
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('');

  up = false;
  await monitor.runNow();
  res = await fetch(`${base}/readyz`);
  expect(res.status).toBe(503);
  validateHealthJson(await res.json());
  res = await fetch(`${base}/health`);
  expect(res.status).toBe(503);
  body = await res.json();
  validateHealthJson(body);
  expect(body.status).toBe('fail');
  expect((await fetch(`${base}/livez`)).status).toBe(200); // liveness ignores dependencies
  expect((await fetch(`${base}/startupz`)).status).toBe(200); // started once, stays started
  // Details for a caller the predicate allows.
  res = await fetch(`${base}/health`, { headers: { authorization: 'Bearer ops' } });
  body = await res.json();
  validateHealthJson(body);
  expect(body.version).toBe('7');
  expect(body.checks['db:responseTime'][0]).toMatchObject({ status: 'fail', output: 'check returned false' });
  monitor.setShuttingDown();
  expect((await fetch(`${base}/readyz`)).status).toBe(503);
}

const details = (req: { headers: Record<string, unknown> }) => req.headers.authorization === 'Bearer ops';

describe('health endpoints', () => {
  it('node:http: healthHandler answers its paths and leaves the rest to the app', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    const health = healthHandler(monitor, { details, metrics });
    const base = await listen(
      createServer((req, res) => {
        if (health(req, res)) return;
        res.end('app');
      }),
    );
    expect(await (await fetch(`${base}/other`)).text()).toBe('app');
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('app');
    await contract(base, monitor);
  });

  it('Express 5: expressHealth middleware, at the root and under a prefix', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    const app = express();
    app.use(expressHealth(monitor, { details, metrics }));
    app.use('/ops', expressHealth(monitor, { details, metrics }));
    app.get('/hello', (_req, res) => {
      res.send('hello');
    });
    const base = await listen(createServer(app));
    expect(await (await fetch(`${base}/hello`)).text()).toBe('hello');
    await contract(base, monitor);
    expect((await fetch(`${base}/ops/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/ops/livez`)).status).toBe(200);
  });

  it('Fastify 5: fastifyHealth plugin registers at the root (skip-override)', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    const app = Fastify();
    await app.register(
      async (child) => {
        await child.register(fastifyHealth, { monitor, details, metrics });
      },
      { prefix: '/api' },
    );
    app.get('/hello', async () => 'hello');
    cleanups.push(() => app.close());
    await app.ready();
    // Registered inside a prefixed plugin, skip-override shares that plugin's scope (prefix /api).
    const r = await app.inject({ method: 'GET', url: '/api/readyz' });
    expect(r.statusCode).toBe(200);
    const top = Fastify();
    await top.register(fastifyHealth, { monitor, details, metrics });
    cleanups.push(() => top.close());
    await top.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(top.server.address() as AddressInfo).port}`;
    await contract(base, monitor);
    const injected = await top.inject({ method: 'GET', url: '/livez' });
    expect(injected.statusCode).toBe(200);
    expect(injected.headers['content-type']).toContain(HEALTH_JSON);
    validateHealthJson(injected.json());
  });

  it('metrics failures answer 500; no metrics option, no /metrics', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    const a = healthHandler(monitor, {
      metrics: () => {
        throw new Error('registry broken');
      },
    });
    const b = healthHandler(monitor);
    const base = await listen(createServer((req, res) => void (a(req, res) || res.end('app'))));
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    cleanups.push(() => process.off('warning', onWarning));
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(500);
    // Details hidden (the default): a generic body; the error itself goes to a process warning.
    const text = await res.text();
    expect(text).not.toContain('registry broken');
    expect(text).toContain('metrics failed');
    await new Promise((r) => setImmediate(r));
    expect(warnings.some((w) => w.message.includes('registry broken'))).toBe(true);
    const c = healthHandler(monitor, {
      details: 'always',
      metrics: () => {
        throw new Error('registry broken');
      },
    });
    const base3 = await listen(createServer((req, res) => void (c(req, res) || res.end('app'))));
    expect(await (await fetch(`${base3}/metrics`)).text()).toContain('registry broken');
    const base2 = await listen(createServer((req, res) => void (b(req, res) || res.end('app'))));
    expect(await (await fetch(`${base2}/metrics`)).text()).toBe('app');
    expect(() => healthHandler(monitor, { paths: { live: 'nope' } })).toThrow(/healthHandler\.paths\.live/);
  });

  it('a malformed group answers 400 health+json on node:http and Express', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    const health = healthHandler(monitor);
    const app = express();
    app.use('/ops', expressHealth(monitor));
    for (const [base, prefix] of [
      [await listen(createServer((req, res) => void (health(req, res) || res.end('app')))), ''],
      [await listen(createServer(app)), '/ops'],
    ] as const) {
      const res = await fetch(`${base}${prefix}/health/%E0%A4%A`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain(HEALTH_JSON);
      const body = await res.json();
      validateHealthJson(body);
      expect(body.status).toBe('fail');
    }
  });

  it('Fastify: trailing slashes answer, also with ignoreTrailingSlash', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    await monitor.runNow();
    for (const app of [Fastify(), Fastify({ routerOptions: { ignoreTrailingSlash: true } })]) {
      cleanups.push(() => app.close());
      await app.register(fastifyHealth, { monitor });
      await app.ready();
      for (const url of ['/readyz', '/readyz/', '/health', '/health/', '/health/db/']) {
        expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
      }
    }
  });

  it('a write that throws (bad header value) ends the response with 500, no unhandled rejection', async () => {
    const monitor = makeMonitor();
    cleanups.push(() => monitor.close());
    // setHeader throws ERR_INVALID_CHAR on this value, inside write().
    const health = healthHandler(monitor, { cacheControl: 'no-store\nx' });
    const base = await listen(createServer((req, res) => void (health(req, res) || res.end('app'))));
    const res = await fetch(`${base}/livez`);
    expect(res.status).toBe(500);
    const errors: unknown[] = [];
    const app = express();
    app.use(expressHealth(monitor, { cacheControl: 'no-store\nx' }));
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error);
      res.status(500).end('handled');
    });
    const base2 = await listen(createServer(app));
    expect(await (await fetch(`${base2}/livez`)).text()).toBe('handled');
    expect(errors).toHaveLength(1);
  });
});
