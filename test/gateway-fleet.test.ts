/**
 * Three gateway processes (`bulwark gateway -c file`, each in its own process group) sharing the
 * real Redis and PostgreSQL through the `redis` and `postgres` settings of one file:
 *
 * - one client limit held fleet-wide: requests spread across the three → exactly `limit` allowed;
 * - an endpoint breaker opened by one instance rejects on the others without calling the upstream;
 * - writes queued while the upstream is down (202 from any instance, status URL answered by any
 *   other, 422 for another payload from another instance) delivered exactly once after it returns,
 *   with one of the three SIGKILLed while the writes were queued.
 *
 * And `bulwark demo --headless --redis --postgres` runs its script on the real servers.
 *
 * Keys live under a `gwfleet:<run>:` prefix and tables in a `gwfleet_<run>` schema, removed after.
 * With CI=true the test fails (never skips) when Redis or PostgreSQL is unreachable.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { type TestUpstream, upstream } from './support/gateway.js';
import { type GatewayProcess, startGatewayProcess } from './support/gateway-process.js';
import { describePg, dropSchema, pgConnectionString, until } from './support/postgres.js';
import { cleanup, connectRedis, redisUp } from './support/redis.js';

const run = `${process.pid}_${Date.now().toString(36)}`;
const schema = `gwfleet_${run}`;
const prefix = `gwfleet:${run}:`;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freePort(): Promise<number> {
  const u = await upstream(() => {});
  await u.close();
  return u.port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const describeFleet = redisUp || process.env.CI === 'true' ? describePg : describePg.skip;

describeFleet('gateway fleet: three processes sharing Redis and PostgreSQL', () => {
  it('hold one client limit fleet-wide, share breakers, and deliver each queued write once (one SIGKILLed)', {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-gwfleet-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const redis = await connectRedis();
    cleanups.push(async () => {
      await cleanup(redis, prefix);
      redis.disconnect();
    });
    cleanups.push(() => dropSchema(schema));

    // Upstreams: an API counting its requests, one always failing (breakers), and a payments API
    // that is down now (its port is free) and records each Idempotency-Key it commits.
    let apiHits = 0;
    const api = await upstream((_req, res) => {
      apiHits++;
      res.end('ok');
    });
    cleanups.push(() => api.close());
    let flakyHits = 0;
    const flaky = await upstream((_req, res) => {
      flakyHits++;
      res.writeHead(500).end('broken');
    });
    cleanups.push(() => flaky.close());
    const payPort = await freePort();

    const limit = 30;
    const pg = new URL(pgConnectionString());
    pg.searchParams.set('schema', schema);
    const file = join(dir, 'bulwark.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:0
accessLog: false
dataDir: ${join(dir, 'data')}
# Generous Redis timeout: the machine is loaded, and a timed-out decision falls back to memory.
redis: { url: "redis://127.0.0.1:6379/0", prefix: "${prefix}", timeoutMs: 2000, insuranceShare: 0.34 }
postgres: "${pg.toString()}"
upstreams:
  api: { endpoints: [{ url: "${api.url}" }] }
  flaky:
    endpoints: [{ url: "${flaky.url}" }]
    breaker: { threshold: 3, halfOpenAfterMs: 60000 }
  pay: { endpoints: [{ url: "http://127.0.0.1:${payPort}" }] }
routes:
  - match: { path: /api }
    upstream: api
    # A day-long window: the burst below never straddles two windows.
    limits: [{ name: per-client, key: "header:x-client", limit: ${limit}, windowMs: 86400000 }]
  - match: { path: /flaky }
    upstream: flaky
    retry: false
  - match: { path: /pay }
    upstream: pay
    storeAndForward: true
`,
    );
    const gws: GatewayProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await startGatewayProcess(file);
      cleanups.push(() => g.kill());
      gws.push(g);
    }

    // 1. One client limit, fleet-wide: 3 × limit requests of one client spread across the three.
    const statuses = await Promise.all(
      Array.from({ length: 3 * limit }, (_, i) =>
        fetch(`${gws[i % 3]!.url}/api/x`, { headers: { 'x-client': 'alice' } }).then(async (r) => {
          await r.arrayBuffer();
          return { status: r.status, policy: r.headers.get('ratelimit-policy') };
        }),
      ),
    );
    expect(statuses.filter((s) => s.status === 200).length).toBe(limit);
    expect(statuses.filter((s) => s.status === 429).length).toBe(2 * limit);
    expect(statuses.find((s) => s.status === 429)?.policy).toBe(`"per-client";q=${limit};w=86400`);
    expect(apiHits).toBe(limit);
    // Another client has its own limit.
    expect((await fetch(`${gws[1]!.url}/api/x`, { headers: { 'x-client': 'bob' } })).status).toBe(200);

    // 2. A breaker opened by one instance is open on the others.
    for (let i = 0; i < 3; i++) expect((await fetch(`${gws[0]!.url}/flaky`)).status).toBe(500);
    expect(flakyHits).toBe(3);
    // The opener writes the break to Redis and publishes it; the others hear it by pub/sub.
    expect(await until(async () => (await redis.keys(`${prefix}cb:*`)).length > 0, 10_000)).toBe(true);
    await sleep(500);
    for (const g of gws.slice(1)) expect((await fetch(`${g.url}/flaky`)).status).toBe(503);
    expect(flakyHits).toBe(3);

    // 3. Writes while the payments API is down: 202 from every instance.
    const n = 30;
    const post = (g: GatewayProcess, key: string, body: string) =>
      fetch(`${g.url}/pay`, {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'application/json' },
        body,
      });
    const accepted = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await post(gws[i % 3]!, `order-${i}`, `{"i":${i}}`);
        return { status: r.status, location: r.headers.get('location') ?? '' };
      }),
    );
    expect(accepted.map((a) => a.status)).toEqual(Array(n).fill(202));
    // Any instance answers any status URL, replays a repeat, and refuses another payload.
    const other = await fetch(`${gws[1]!.url}${accepted[0]!.location}`);
    expect(await other.json()).toMatchObject({ state: 'pending' });
    const repeat = await post(gws[2]!, 'order-0', '{"i":0}');
    expect(repeat.status).toBe(202);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect((await post(gws[1]!, 'order-0', '{"i":"other"}')).status).toBe(422);

    // 4. SIGKILL one instance with the writes queued, then bring the payments API back.
    gws[0]!.kill('SIGKILL');
    await gws[0]!.exited;
    const seen = new Map<string, number>();
    const pay: TestUpstream = await upstream((req, res) => {
      req.resume();
      req.on('end', () => {
        const key = String(req.headers['idempotency-key']);
        seen.set(key, (seen.get(key) ?? 0) + 1);
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ key }));
      });
    }, payPort);
    cleanups.push(() => pay.close());
    expect(await until(() => seen.size === n, 60_000)).toBe(true);
    await sleep(1_500); // a second delivery, if any, would show up here
    expect(seen.size).toBe(n);
    expect([...seen.entries()].filter(([, c]) => c !== 1)).toEqual([]);
    // Every status URL, asked of a surviving instance, says delivered with the upstream's status.
    for (const a of accepted) {
      const s = (await (await fetch(`${gws[2]!.url}${a.location}`)).json()) as {
        state: string;
        status: number;
      };
      expect(s).toMatchObject({ state: 'delivered', status: 201 });
    }
  });
});

describe('gateway fleet: Redis unreachable', () => {
  it('Redis unreachable: client limits are decided in memory within timeoutMs, requests are served', async () => {
    const up = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const gw = await startGateway({
      config: parseGatewayConfig({
        listen: '127.0.0.1:0',
        accessLog: false,
        redis: { url: 'redis://127.0.0.1:1/0', timeoutMs: 100 }, // nothing listens on port 1
        upstreams: {
          api: { endpoints: [{ url: `http://127.0.0.1:${(up.address() as AddressInfo).port}` }] },
        },
        routes: [
          { match: { path: '/' }, upstream: 'api', limits: [{ key: 'ip', limit: 3, windowMs: 60_000 }] },
        ],
      }),
    });
    const events: string[] = [];
    gw.onEvent((e) => events.push(`${e.kind}:${e.event}`));
    try {
      expect(gw.fleet?.describe().limits).toBe('redis');
      // The shared limiter and breaker are components of the gateway's registry.
      expect(gw.registry.snapshot('redisRateLimiter').map((s) => s.name)).toEqual(['route-0/route-0-0']);
      expect(gw.registry.snapshot('sharedCircuitBreaker')).toHaveLength(1);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${gw.url}/`)).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]); // the insurance limiter (share 1)
      expect(events).toContain('redisRateLimiter:fallback'); // on the admin event stream
      const r = await gw
        .reload(parseGatewayConfig({ ...gw.config, postgres: 'postgres://h/db' }))
        .catch((e: Error) => e);
      expect((r as Error).message).toMatch(/restart/);
    } finally {
      await gw.close(100);
      up.close();
    }
  });
});

describeFleet('gateway fleet: shared breakers across a reload', () => {
  it('an instance whose upstream was replaced by a reload still hears openings from the others', {
    timeout: 60_000,
  }, async () => {
    let hits = 0;
    const flaky = await upstream((_req, res) => {
      hits++;
      res.writeHead(500).end();
    });
    cleanups.push(() => flaky.close());
    const value = (connections: number) => ({
      listen: '127.0.0.1:0',
      accessLog: false,
      redis: { url: 'redis://127.0.0.1:6379/0', prefix: `${prefix}reload:`, timeoutMs: 2000 },
      upstreams: {
        flaky: {
          connections,
          endpoints: [{ url: flaky.url }],
          breaker: { threshold: 2, halfOpenAfterMs: 60_000 },
        },
      },
      routes: [{ match: { path: '/' }, upstream: 'flaky', retry: false }],
    });
    const a = await startGateway({ config: parseGatewayConfig(value(8)) });
    cleanups.push(() => a.close(100));
    const b = await startGateway({ config: parseGatewayConfig(value(8)) });
    cleanups.push(() => b.close(100));
    // A replaces its upstream group (another pool size): a new breaker for the same endpoint.
    const r = await a.reload(parseGatewayConfig(value(16)));
    expect(r.replaced.upstreams).toBe(1);
    await sleep(300); // the old breaker closes after the swap
    for (let i = 0; i < 2; i++) expect((await fetch(`${b.url}/`)).status).toBe(500);
    expect(hits).toBe(2);
    // A hears B's opening through Redis pub/sub (asynchronous): wait for its breaker to say open
    // before calling A, then A refuses without calling the upstream.
    const aOpen = () => a.registry.list('sharedCircuitBreaker').some((c) => c.snapshot().state === 'open');
    expect(await until(aOpen, 10_000)).toBe(true);
    expect((await fetch(`${a.url}/`)).status).toBe(503);
    expect(hits).toBe(2);
  });
});

describePg('gateway fleet: idempotency records in PostgreSQL', () => {
  it('the same key in flight on another instance → 409; after completion any instance replays it', {
    timeout: 60_000,
  }, async () => {
    const seen = new Map<string, number>();
    const slow = await upstream((req, res) => {
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          const key = String(req.headers['idempotency-key']);
          seen.set(key, (seen.get(key) ?? 0) + 1);
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ key }));
        }, 400),
      );
    });
    cleanups.push(() => slow.close());
    const pg = new URL(pgConnectionString());
    pg.searchParams.set('schema', `${schema}_records`);
    cleanups.push(() => dropSchema(`${schema}_records`));
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-gwfleet-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = parseGatewayConfig({
      listen: '127.0.0.1:0',
      accessLog: false,
      dataDir: dir,
      postgres: pg.toString(),
      upstreams: { pay: { endpoints: [{ url: slow.url }] } },
      routes: [{ match: { path: '/pay' }, upstream: 'pay', storeAndForward: true }],
    });
    const [a, b] = [await startGateway({ config }), await startGateway({ config })];
    cleanups.push(() => a.close(100));
    cleanups.push(() => b.close(100));
    const post = (url: string, body = '{"amount":1}') =>
      fetch(`${url}/pay`, { method: 'POST', headers: { 'idempotency-key': 'k-1' }, body });
    const first = post(a.url);
    await sleep(150);
    const second = await post(b.url);
    expect(second.status).toBe(409);
    expect(second.headers.get('retry-after')).toBe('1');
    expect((await first).status).toBe(201);
    const replay = await post(b.url);
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual({ key: 'k-1' });
    expect((await post(b.url, '{"amount":2}')).status).toBe(422);
    expect(seen.get('k-1')).toBe(1);
  });
});

describeFleet('bulwark demo --redis --postgres', () => {
  it('--headless runs the script with shared state on the real servers, exits 0, and drops its schema', {
    timeout: 120_000,
  }, async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/fixtures/cli-run.ts',
        'demo',
        '--headless',
        '--duration',
        '10',
        '--json',
        '--redis',
        '--postgres',
        pgConnectionString(),
      ],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 90_000 },
    );
    expect(stderr).toContain('client limits in redis, breakers redis, write queue in postgres');
    const s = JSON.parse(stdout) as { requests: number; successRatio: number; duplicateWrites: number };
    expect(s.requests).toBeGreaterThan(50);
    expect(s.successRatio).toBeGreaterThanOrEqual(0.9);
    expect(s.duplicateWrites).toBe(0);
    // Its own schema, dropped at the end.
    const schema = /\(schema (bulwark_demo_[0-9a-f]+)\)/.exec(stderr)?.[1];
    expect(schema).toBeDefined();
    const c = new pg.Client({ connectionString: pgConnectionString() });
    await c.connect();
    const left = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    await c.end();
    expect(left.rowCount).toBe(0);
  });
});
