/**
 * Health checks against real dependencies: PostgreSQL and Redis behind a TCP proxy that the tests
 * stop, restart and stall (the shared servers are never touched), and a local HTTP server closed
 * and reopened. Each check flips to fail when its dependency goes and back to pass when it returns;
 * a hung dependency times its check out without holding up the others.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHealthMonitor,
  type HealthMonitor,
  httpCheck,
  postgresCheck,
  redisCheck,
  tcpCheck,
} from '../src/health/index.js';
import { validateHealthJson } from './support/health-json.js';
import { describePg as describePostgres, pgConnectionString } from './support/postgres.js';
import { describeRedis, REDIS_PORT, until } from './support/redis.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

function statusOf(monitor: HealthMonitor, name: string): string {
  const c = monitor.report().checks.find((x) => x.name === name)!;
  return c.pending ? 'pending' : c.status;
}

function outputOf(monitor: HealthMonitor, name: string): string | undefined {
  return monitor.report().checks.find((x) => x.name === name)!.output;
}

/** Runs `name` until it reports `status` (a recovering client may need a few tries). */
async function settlesTo(monitor: HealthMonitor, name: string, status: string, ms = 10_000): Promise<void> {
  const ok = await until(async () => {
    await monitor.runNow([name]);
    return statusOf(monitor, name) === status;
  }, ms);
  expect(ok, `${name} → ${status} (last output: ${outputOf(monitor, name)})`).toBe(true);
}

describePostgres('health checks on PostgreSQL (through a proxy)', () => {
  let proxy: TcpProxy;
  let pool: pg.Pool;
  let monitor: HealthMonitor;
  beforeAll(async () => {
    proxy = await startTcpProxy({ port: 5432 });
    const url = pgConnectionString(proxy.port);
    pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 1_000 });
    pool.on('error', () => {});
    monitor = createHealthMonitor({
      autoStart: false,
      checks: [
        postgresCheck({ client: url, failureThreshold: 1, timeoutMs: 1_500 }),
        postgresCheck({
          name: 'pgpool',
          component: 'postgres',
          client: pool,
          failureThreshold: 1,
          timeoutMs: 1_500,
        }),
        tcpCheck({ name: 'pgtcp', port: proxy.port, failureThreshold: 1, timeoutMs: 1_000 }),
      ],
    });
  });
  afterAll(async () => {
    await monitor?.close();
    await pool?.end().catch(() => {});
    await proxy?.close();
  });

  it('passes, fails when the database goes away, passes when it returns', async () => {
    expect(pgConnectionString(proxy.port)).not.toContain(':5432/'); // the checks go through the proxy
    await monitor.runNow();
    expect(monitor.report()).toMatchObject({ status: 'pass', ready: true, started: true });
    const doc = monitor.healthJson({ details: true })!;
    validateHealthJson(doc);
    // Two nodes of one component share the key: one array entry each.
    expect(doc.checks!['postgres:responseTime']).toHaveLength(2);
    expect(doc.checks!['postgres:responseTime']![0]).toMatchObject({
      componentType: 'datastore',
      observedUnit: 'ms',
    });

    await proxy.stop();
    await monitor.runNow();
    for (const name of ['postgres', 'pgpool', 'pgtcp']) expect(statusOf(monitor, name), name).toBe('fail');
    expect(monitor.report()).toMatchObject({ status: 'fail', ready: false, level: 'offline' });
    const down = monitor.healthJson({ details: true })!;
    validateHealthJson(down);
    expect(down.status).toBe('fail');
    expect(outputOf(monitor, 'pgtcp')).toMatch(/ECONNREFUSED/);

    await proxy.start();
    for (const name of ['postgres', 'pgpool', 'pgtcp']) await settlesTo(monitor, name, 'pass');
    expect(monitor.report()).toMatchObject({ status: 'pass', ready: true });
    validateHealthJson(monitor.healthJson({ details: true }));
  });

  it('a hung database times its check out without holding up the others', async () => {
    const http = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = http.address() as AddressInfo;
    const m = createHealthMonitor({
      autoStart: false,
      checks: [
        postgresCheck({
          client: pgConnectionString(proxy.port),
          failureThreshold: 1,
          timeoutMs: 400,
        }),
        httpCheck({ name: 'api', url: `http://127.0.0.1:${port.port}/`, failureThreshold: 1 }),
      ],
    });
    try {
      proxy.blackhole();
      let pgDone = false;
      const pgRun = m.runNow(['postgres']).then(() => {
        pgDone = true;
      });
      await m.runNow(['api']);
      expect(statusOf(m, 'api')).toBe('pass');
      expect(pgDone).toBe(false); // still hung while the other check ran and ended
      await pgRun;
      expect(statusOf(m, 'postgres')).toBe('fail');
      expect(outputOf(m, 'postgres')).toBe('timed out after 400 ms');
      const lat = m.report().checks[0]!.latencyMs!;
      for (const q of [lat.p50, lat.p90, lat.p99]) expect(Math.abs(q - 400) / 400).toBeLessThan(0.045);
      const doc = m.healthJson({ details: true })!;
      validateHealthJson(doc);
      expect(doc.checks!['postgres:responseTime']![0]).toMatchObject({
        status: 'fail',
        output: 'timed out after 400 ms',
      });
      proxy.heal();
      proxy.dropAll(); // blackholed connections are dead: clients reconnect
      await settlesTo(m, 'postgres', 'pass');
    } finally {
      proxy.heal();
      proxy.dropAll(); // blackholed connections are dead: clients reconnect
      await m.close();
      await new Promise((r) => http.close(r));
    }
  });
});

describeRedis('health checks on Redis (through a proxy)', () => {
  let proxy: TcpProxy;
  let client: Redis;
  let monitor: HealthMonitor;
  beforeAll(async () => {
    proxy = await startTcpProxy({ port: REDIS_PORT });
    client = new Redis({ host: '127.0.0.1', port: proxy.port, retryStrategy: () => 50 });
    client.on('error', () => {});
    monitor = createHealthMonitor({
      autoStart: false,
      checks: [redisCheck({ client, failureThreshold: 1, timeoutMs: 500, critical: false })],
    });
  });
  afterAll(async () => {
    await monitor?.close();
    client?.disconnect();
    await proxy?.close();
  });

  it('passes, fails when Redis goes away (timed out or refused), passes when it returns', async () => {
    await monitor.runNow();
    expect(statusOf(monitor, 'redis')).toBe('pass');
    await proxy.stop();
    await monitor.runNow();
    expect(statusOf(monitor, 'redis')).toBe('fail');
    // Not critical: the service warns but stays ready.
    expect(monitor.report()).toMatchObject({ status: 'warn', ready: true });
    validateHealthJson(monitor.healthJson({ details: true }));
    await proxy.start();
    await settlesTo(monitor, 'redis', 'pass');
  });

  it('a stalled Redis times the check out', async () => {
    await monitor.runNow();
    proxy.blackhole();
    await monitor.runNow();
    expect(outputOf(monitor, 'redis')).toBe('timed out after 500 ms');
    proxy.heal();
    proxy.dropAll(); // blackholed connections are dead: clients reconnect
    await settlesTo(monitor, 'redis', 'pass');
  });
});

describe('health check on a local HTTP server', () => {
  let server: Server;
  let port = 0;
  const open = async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/bad' ? 500 : 200;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  };
  const close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });

  it('fails when the server closes and passes when it reopens; a bad status fails', async () => {
    await open();
    const monitor = createHealthMonitor({
      autoStart: false,
      checks: [
        httpCheck({ name: 'api', url: `http://127.0.0.1:${port}/`, failureThreshold: 1 }),
        httpCheck({ name: 'bad', url: `http://127.0.0.1:${port}/bad`, failureThreshold: 1, critical: false }),
      ],
    });
    try {
      await monitor.runNow();
      expect(statusOf(monitor, 'api')).toBe('pass');
      expect(statusOf(monitor, 'bad')).toBe('fail');
      expect(outputOf(monitor, 'bad')).toBe(`HTTP 500 from http://127.0.0.1:${port}/bad`);
      expect(monitor.report()).toMatchObject({ status: 'warn', ready: true, level: 'limited' });
      await close();
      await monitor.runNow();
      expect(statusOf(monitor, 'api')).toBe('fail');
      // The cause is kept: fetch's bare 'fetch failed' would not say why (a kept-alive socket
      // closed, or ECONNREFUSED).
      expect(outputOf(monitor, 'api')).toMatch(/^fetch failed: (UND_ERR_SOCKET|ECONNREFUSED)/);
      expect(monitor.report().ready).toBe(false);
      await open();
      await settlesTo(monitor, 'api', 'pass');
      expect(monitor.report().ready).toBe(true);
      validateHealthJson(monitor.healthJson({ details: true }));
      validateHealthJson(monitor.healthJson());
    } finally {
      await monitor.close();
      await close();
    }
  });
});
