/**
 * The control plane's admin API over real sockets: every endpoint with every role, problem+json
 * errors naming the field, fuzzed inputs from the OpenAPI document never producing a 5xx, every
 * mutating call audited, the event stream with Last-Event-ID resume, and the three mounts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ControlPlane,
  createControlPlane,
  expressControlPlane,
  fastifyControlPlane,
  type MemoryAudit,
  memoryAudit,
} from 'bulwark/server';
import express from 'express';
import fc from 'fast-check';
import fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, TOKENS } from './support/control-plane-fixture.js';

type Role = keyof typeof TOKENS;

let server: Server;
let base: string;
let cp: ControlPlane;
let audit: MemoryAudit;
let fx: ReturnType<typeof fixture>;

async function call(
  path: string,
  init: {
    role?: Role | 'bad';
    method?: string;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.role !== undefined)
    headers.authorization = `Bearer ${init.role === 'bad' ? 'wrong-token-000000000000' : TOKENS[init.role]}`;
  if (init.body !== undefined || init.raw !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? (init.body !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
    headers,
    ...(init.raw !== undefined
      ? { body: init.raw }
      : init.body !== undefined
        ? { body: JSON.stringify(init.body) }
        : {}),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}

const action = (kind: string, name: string, op: string) => `/api/components/${kind}/${name}/actions/${op}`;

beforeAll(async () => {
  fx = fixture();
  audit = memoryAudit({ capacity: 100_000 });
  cp = createControlPlane({
    registry: fx.registry,
    audit,
    tokens: [
      { name: 'vic', role: 'viewer', token: TOKENS.viewer },
      { name: 'olga', role: 'operator', token: TOKENS.operator },
      { name: 'ada', role: 'admin', token: TOKENS.admin },
    ],
    authLimit: { failures: 1000 },
    stream: { figuresMs: 100, heartbeatMs: 200 },
  });
  server = createServer(cp.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  cp.close();
  await new Promise((r) => server.close(r));
});

describe('control plane: authentication and roles', () => {
  it('no token → 401 problem+json with WWW-Authenticate; a wrong token → 401', async () => {
    const none = await call('/api/components');
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(none.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(none.body).toMatchObject({ status: 401, title: 'Unauthorized' });
    expect((await call('/api/components', { role: 'bad' })).status).toBe(401);
  });

  it('every role reads; the token name is the actor', async () => {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const list = await call('/api/components', { role });
      expect(list.status).toBe(200);
      expect((list.body.components as unknown[]).length).toBeGreaterThanOrEqual(3);
    }
    expect((await call('/api/me', { role: 'operator' })).body).toEqual({ name: 'olga', role: 'operator' });
  });

  it('a viewer sees no actions and mutating is 403, recorded as denied', async () => {
    const c = await call('/api/components/circuitBreaker/payments', { role: 'viewer' });
    expect((c.body.operations as { type: string }[]).every((o) => o.type === 'view')).toBe(true);
    const denied = await call(action('circuitBreaker', 'payments', 'forceOpen'), {
      role: 'viewer',
      body: { reason: 'test' },
    });
    expect(denied.status).toBe(403);
    expect(audit.entries().at(-1)).toMatchObject({
      actor: 'vic',
      action: 'circuitBreaker.forceOpen',
      outcome: 'denied',
    });
    expect(fx.breaker.state).toBe('closed');
  });

  it('an operator acts (audited with before/after and the reason); an admin-only action needs admin', async () => {
    const ok = await call(action('circuitBreaker', 'payments', 'forceOpen'), {
      role: 'operator',
      body: { reason: 'incident 42' },
    });
    expect(ok.status).toBe(200);
    expect(fx.breaker.state).toBe('forced-open');
    const entry = audit.entries().at(-1)!;
    expect(entry).toMatchObject({
      actor: 'olga',
      action: 'circuitBreaker.forceOpen',
      resource: 'circuitBreaker/payments',
      outcome: 'success',
    });
    expect(entry.payload).toMatchObject({
      reason: 'incident 42',
      before: { state: 'closed' },
      after: { state: 'forced-open' },
    });
    await call(action('circuitBreaker', 'payments', 'reset'), {
      role: 'operator',
      body: { reason: 'resolved' },
    });
    expect(
      (
        await call(action('rateLimit', 'api', 'setLimit'), {
          role: 'operator',
          body: { reason: 'more', input: { limit: 20 } },
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await call(action('rateLimit', 'api', 'setLimit'), {
          role: 'admin',
          body: { reason: 'more', input: { limit: 20 } },
        })
      ).status,
    ).toBe(200);
    expect(fx.limiter.limit).toBe(20);
  });
});

describe('control plane: bad input', () => {
  it('names the field: missing reason, bad input, unknown key with a suggestion', async () => {
    const noReason = await call(action('circuitBreaker', 'payments', 'reset'), { role: 'admin', body: {} });
    expect(noReason).toMatchObject({ status: 400, body: { field: 'body.reason' } });
    const bad = await call(action('rateLimit', 'api', 'setLimit'), {
      role: 'admin',
      body: { reason: 'x y z', input: { limit: 0 } },
    });
    expect(bad).toMatchObject({
      status: 400,
      body: { field: 'body.input.limit', rule: 'an integer >= 1 and <= 1000000' },
    });
    const typo = await call(action('rateLimit', 'api', 'setLimit'), {
      role: 'admin',
      body: { reason: 'x y z', input: { limt: 3 } },
    });
    expect(typo).toMatchObject({ status: 400, body: { field: 'body.input.limt', suggestion: 'limit' } });
    const view = await call('/api/components/durableQueue/orders/views/items?limit=0', { role: 'viewer' });
    expect(view).toMatchObject({ status: 400, body: { field: 'query.limit' } });
  });

  it('invalid JSON → 400, another content type → 415, a large body → 413, unknown things → 404, wrong method → 405', async () => {
    const path = action('circuitBreaker', 'payments', 'reset');
    expect((await call(path, { role: 'admin', raw: '{"reason":' })).body).toMatchObject({
      status: 400,
      field: 'body',
    });
    expect(
      (await call(path, { role: 'admin', raw: 'reason=x', headers: { 'content-type': 'text/plain' } }))
        .status,
    ).toBe(415);
    expect(
      (await call(path, { role: 'admin', raw: JSON.stringify({ reason: 'x'.repeat(70_000) }) })).status,
    ).toBe(413);
    expect((await call('/api/components/circuitBreaker/nope', { role: 'admin' })).status).toBe(404);
    expect(
      (
        await call(action('circuitBreaker', 'payments', 'explode'), {
          role: 'admin',
          body: { reason: 'abc' },
        })
      ).status,
    ).toBe(404);
    expect(
      (await call('/api/components/circuitBreaker/payments/actions/reset', { role: 'admin' })).status,
    ).toBe(405);
    expect((await call('/api/nothing', { role: 'admin' })).status).toBe(404);
  });

  it('a destructive action runs dry without changing anything; a dry run elsewhere is refused', async () => {
    const before = fx.queue.count('dead');
    const dry = await call(action('durableQueue', 'orders', 'purge'), {
      role: 'admin',
      body: { reason: 'cleanup', dryRun: true, input: { state: 'dead' } },
    });
    expect(dry.body).toMatchObject({ dryRun: true, result: { deleted: before, dryRun: true } });
    expect(fx.queue.count('dead')).toBe(before);
    const refused = await call(action('circuitBreaker', 'payments', 'reset'), {
      role: 'admin',
      body: { reason: 'abc', dryRun: true },
    });
    expect(refused).toMatchObject({ status: 400, body: { field: 'body.dryRun' } });
  });

  it('failed authentications from one address are rate-limited (429 with Retry-After)', async () => {
    const limited = createControlPlane({
      registry: fx.registry,
      tokens: [{ role: 'viewer', token: TOKENS.viewer }],
      authLimit: { failures: 3 },
    });
    const srv = createServer(limited.handle);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api/me`;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await fetch(url, { headers: { authorization: 'Bearer nope-nope-nope-nope' } })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const blocked = await fetch(url, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    limited.close();
    await new Promise((r) => srv.close(r));
  });

  it('CORS is off by default', async () => {
    const res = await call('/api/me', { role: 'viewer', headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('control plane: OpenAPI and fuzzing', () => {
  it('publishes an OpenAPI 3.1 document with a path per operation and its input schema', async () => {
    const doc = (await call('/openapi.json')).body as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/api/components/rateLimit/api/actions/setLimit']?.post).toMatchObject({
      'x-role': 'admin',
    });
    expect(doc.paths['/api/components/durableQueue/orders/views/items']?.get).toBeDefined();
  });

  it('inputs fuzzed from the OpenAPI schemas never produce a 5xx, and every mutating call is audited', async () => {
    const doc = (await call('/openapi.json')).body as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    const actions = Object.keys(doc.paths).filter((p) => p.includes('/actions/'));
    const views = Object.keys(doc.paths).filter((p) => p.includes('/views/'));
    const json = fc.jsonValue({ maxDepth: 3 });
    const anyInput = fc.oneof(
      json,
      fc.dictionary(fc.constantFrom('limit', 'ids', 'state', 'rate', 'limt', 'x'), json),
    );
    let mutating = 0;
    const before = audit.entries().length;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actions),
        fc.constantFrom<Role>('viewer', 'operator', 'admin'),
        fc.record(
          { input: anyInput, reason: fc.oneof(fc.string(), json), dryRun: fc.oneof(fc.boolean(), json) },
          { requiredKeys: [] },
        ),
        async (path, role, body) => {
          const res = await call(path, { role, body });
          mutating++;
          expect(res.status, JSON.stringify({ path, role, body, res: res.body })).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...views),
        fc.dictionary(fc.constantFrom('limit', 'state', 'x'), fc.string()),
        async (path, q) => {
          const res = await call(`${path}?${new URLSearchParams(q)}`, { role: 'viewer' });
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 60 },
    );
    // Every POST that got past authentication left one entry (denied, success or failure); those
    // refused as bad input (400) are not actions and leave none.
    const recorded = audit.entries().length - before;
    expect(recorded).toBeGreaterThan(0);
    expect(recorded).toBeLessThanOrEqual(mutating);
    for (const e of audit.entries().slice(before))
      expect(['success', 'failure', 'denied']).toContain(e.outcome);
  });
});

describe('control plane: live stream', () => {
  it('sends figures every interval and events with ids; Last-Event-ID resumes the missed ones', async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/api/stream`, {
      headers: { authorization: `Bearer ${TOKENS.viewer}` },
      signal: ac.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    fx.breaker.set('open', 'failures');
    let text = '';
    while (!/event: event\ndata: .*"to":"open"/.test(text) || !text.includes('event: figures'))
      text += (await reader.read()).value ?? '';
    ac.abort();
    const lastId = Number(/id: (\d+)\nevent: event\ndata: [^\n]*"to":"open"/.exec(text)![1]);
    fx.breaker.set('closed', 'probe ok');
    fx.breaker.set('open', 'again');
    const ac2 = new AbortController();
    const resumed = await fetch(`${base}/api/stream`, {
      headers: { authorization: `Bearer ${TOKENS.viewer}`, 'last-event-id': String(lastId) },
      signal: ac2.signal,
    });
    const r2 = resumed.body!.pipeThrough(new TextDecoderStream()).getReader();
    let t2 = '';
    while (!t2.includes('"reason":"again"')) t2 += (await r2.read()).value ?? '';
    ac2.abort();
    expect(t2).toContain(`id: ${lastId + 1}`);
    expect(t2).not.toContain(`id: ${lastId}\n`);
  });
});

describe('control plane: mounts', () => {
  it('serves under Fastify and Express with a path prefix', async () => {
    const tokens = [{ role: 'viewer' as const, token: TOKENS.viewer }];
    const app = fastify();
    const fcp = createControlPlane({ registry: fx.registry, tokens, basePath: '/admin' });
    await app.register(fastifyControlPlane(fcp), { prefix: '/admin' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const fport = (app.server.address() as AddressInfo).port;
    const f = await fetch(`http://127.0.0.1:${fport}/admin/api/me`, {
      headers: { authorization: `Bearer ${TOKENS.viewer}` },
    });
    expect(await f.json()).toMatchObject({ role: 'viewer' });
    fcp.close();
    await app.close();

    const ex = express();
    const ecp = createControlPlane({ registry: fx.registry, tokens });
    ex.use('/ops', expressControlPlane(ecp));
    const srv = ex.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const e = await fetch(
      `http://127.0.0.1:${(srv.address() as AddressInfo).port}/ops/api/components/circuitBreaker/payments`,
      {
        headers: { authorization: `Bearer ${TOKENS.viewer}` },
      },
    );
    expect(await e.json()).toMatchObject({ kind: 'circuitBreaker', name: 'payments' });
    ecp.close();
    await new Promise((r) => srv.close(r));
  });
});
