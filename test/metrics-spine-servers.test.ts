/**
 * The telemetry spine's acceptance for the component kinds that need a server, a file or a
 * socket: Redis limiters, semaphores, bulkheads and shared breakers, durable queues and workers,
 * the audit log, the key rotation, PostgreSQL pools and migrators, sync clocks, servers and
 * clients, backups, fault proxies and the gateway's routes, upstreams and endpoints. The same
 * generic check as test/metrics-spine.test.ts (test/support/spine-check.ts): each kind's state
 * and figures in Prometheus, OpenTelemetry and the logs, with no component-specific code in
 * src/metrics, and `promtool check metrics` on the whole exposition.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from 'bulwark';
import { openAuditLog } from 'bulwark/audit';
import { createBackups } from 'bulwark/backup';
import { faultProxy } from 'bulwark/chaos';
import { openQueue, sqliteStore } from 'bulwark/durable';
import { parseGatewayYaml, startGateway } from 'bulwark/gateway';
import { keyring, scheduleRotation } from 'bulwark/keyring';
import { createMigrator, createPool } from 'bulwark/postgres';
import { redisBulkhead, redisRateLimiter, redisSemaphore, sharedCircuitBreaker } from 'bulwark/redis';
import { hybridClock, localTransport, memorySyncStore, openSyncClient, syncServer } from 'bulwark/sync';
import { createFakeClock } from 'bulwark/testing';
import type { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import { upstream } from './support/gateway.js';
import { dropSchema, pgConnectionString, uniqueName } from './support/postgres.js';
import { cleanup, connectRedis, testPrefix } from './support/redis.js';
import { type KindCase, verifySpine } from './support/spine-check.js';

/** Kinds whose state this test does not drive through a change (their own tests do). */
const SINGLE_STATE_IN_TEST = new Set([
  'redisRateLimiter',
  'redisSemaphore',
  'redisBulkhead',
  'durableWorker',
  'auditLog',
  'keyRotation',
  'postgresPool',
  'migrator',
  'hybridClock',
  'backups',
  'gatewayRoute',
  'gatewayUpstream',
  'gatewayEndpoint',
  'circuitBreaker',
]);

const dir = mkdtempSync(join(tmpdir(), 'bulwark-spine-'));
const prefix = testPrefix();
const schema = uniqueName('bw_spine');
const clients: Redis[] = [];
const redis = async () => {
  const c = await connectRedis();
  clients.push(c);
  return c;
};

afterAll(async () => {
  if (clients[0] !== undefined) await cleanup(clients[0], prefix);
  for (const c of clients) c.disconnect();
  await dropSchema(schema).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const KINDS: KindCase[] = [
  {
    kind: 'redisRateLimiter',
    make: async (registry) => {
      const c = redisRateLimiter({
        client: await redis(),
        prefix: `${prefix}rl:`,
        limits: [{ algorithm: 'fixed-window', limit: 2, windowMs: 60_000 }],
        name: 'spine-redis-limiter',
        registry,
      });
      return {
        component: c,
        drive: async () => {
          for (let i = 0; i < 3; i++) await c.consume('k');
        },
      };
    },
  },
  {
    kind: 'redisSemaphore',
    make: async (registry) => {
      const c = redisSemaphore({
        client: await redis(),
        prefix: `${prefix}sem:`,
        name: 'spine-semaphore',
        limit: 2,
        registry,
      });
      return {
        component: c,
        drive: async () => {
          const lease = await c.acquire();
          await lease?.release();
        },
      };
    },
  },
  {
    kind: 'redisBulkhead',
    make: async (registry) => {
      const semaphore = redisSemaphore({
        client: await redis(),
        prefix: `${prefix}bh:`,
        name: 'spine-bulkhead-sem',
        limit: 1,
      });
      const c = redisBulkhead({ semaphore, name: 'spine-redis-bulkhead', registry });
      return { component: c, drive: async () => void (await c.execute(() => 1)) };
    },
  },
  {
    kind: 'sharedCircuitBreaker',
    make: async (registry, clock) => {
      const c = sharedCircuitBreaker({
        name: 'spine-shared',
        clock,
        client: await redis(),
        subscriber: await redis(),
        prefix: `${prefix}cb:`,
        breaker: { kind: 'consecutive', threshold: 2 },
        halfOpenAfterMs: 60_000,
        registry,
      });
      return {
        component: c,
        drive: async () => {
          for (let i = 0; i < 3; i++)
            await c.execute(() => Promise.reject(new Error('down'))).catch(() => {});
        },
        close: () => c.close(),
      };
    },
  },
  {
    kind: 'durableQueue',
    make: async (registry) => {
      const q = await openQueue({ name: 'spine-queue', store: sqliteStore({ path: ':memory:' }), registry });
      const w = q.work(async () => {}, { name: 'spine-worker', concurrency: 2 });
      const made = {
        component: q,
        drive: async () => {
          await q.enqueue({ n: 1 });
          await q.stats();
          await q.pause();
        },
        close: async () => {
          await w.stop();
          await q.close();
        },
      };
      return made;
    },
  },
  {
    // Made by the queue above (`q.work`).
    kind: 'durableWorker',
    make: (registry) => ({ component: registry.list('durableWorker')[0]!, drive: () => undefined }),
  },
  {
    kind: 'auditLog',
    make: (registry) => {
      const log = openAuditLog({ store: `sqlite:${join(dir, 'audit.db')}`, name: 'spine-audit', registry });
      return {
        component: log,
        drive: async () =>
          void (await log.append({ actor: 'spine', action: 'test', resource: 'r', outcome: 'success' })),
        close: () => log.close(),
      };
    },
  },
  {
    kind: 'keyRotation',
    make: (registry, clock) => {
      const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
      const rotation = scheduleRotation({
        keyring: ring,
        everyMs: 30 * 86_400_000,
        save: async () => {},
        name: 'spine-rotation',
        registry,
        clock,
      });
      return { component: rotation, drive: () => undefined, close: () => rotation.stop() };
    },
  },
  {
    kind: 'postgresPool',
    make: async (registry) => {
      const pool = await createPool({ connectionString: pgConnectionString(), name: 'spine-pool', registry });
      return {
        component: pool,
        drive: async () => void (await pool.query('SELECT 1')),
        close: () => pool.end(),
      };
    },
  },
  {
    kind: 'migrator',
    make: (registry) => {
      const migrations = join(dir, 'migrations');
      mkdirSync(migrations, { recursive: true });
      writeFileSync(
        join(migrations, '0001_spine.sql'),
        '-- migrate:up\nCREATE TABLE spine (id int);\n-- migrate:down\nDROP TABLE spine;\n',
      );
      const m = createMigrator({
        db: pgConnectionString(),
        dir: migrations,
        schema,
        name: 'spine-migrator',
        registry,
      });
      return { component: m, drive: async () => void (await m.up()) };
    },
  },
  {
    kind: 'hybridClock',
    make: (registry, clock) => {
      const hlc = hybridClock({ node: 'spine', clock, name: 'spine-hlc', registry });
      return { component: hlc, drive: () => void hlc.now() };
    },
  },
  {
    kind: 'syncServer',
    make: (registry) => {
      const server = syncServer({ store: memorySyncStore(), name: 'spine-sync-server', registry });
      return { component: server, drive: () => server.close() };
    },
  },
  {
    kind: 'syncClient',
    make: async (registry) => {
      const server = syncServer({ store: memorySyncStore() });
      const client = await openSyncClient({
        clientId: 'spine-device',
        transport: localTransport(server, 'spine-device'),
        path: join(dir, 'sync.db'),
        name: 'spine-sync-client',
        registry,
      });
      return { component: client, drive: () => client.close() };
    },
  },
  {
    kind: 'backups',
    make: (registry) => {
      const b = createBackups({ target: join(dir, 'backups'), name: 'spine-backups', registry });
      return { component: b, drive: () => undefined };
    },
  },
  {
    kind: 'faultProxy',
    make: async (registry) => {
      const p = await faultProxy({ name: 'spine-proxy', listen: '127.0.0.1:0', upstream: '127.0.0.1:9' });
      registry.register(p);
      return { component: p, drive: () => p.setEnabled(false), close: () => p.close() };
    },
  },
  {
    kind: 'gatewayRoute',
    make: async (registry) => {
      const up = await upstream((_req, res) => res.end('ok'));
      const config = await parseGatewayYaml(
        `listen: 127.0.0.1:0\nupstreams:\n  spine:\n    endpoints: [{ url: "http://127.0.0.1:${up.port}" }]\nroutes:\n  - match: { path: / }\n    upstream: spine\n`,
      );
      const gw = await startGateway({ config, registry });
      return {
        component: registry.list('gatewayRoute')[0]!,
        drive: async () => void (await fetch(`${gw.url}/`).then((r) => r.text())),
        close: async () => {
          await gw.close();
          await up.close();
        },
      };
    },
  },
  {
    // Made by the gateway above.
    kind: 'gatewayUpstream',
    make: (registry) => ({ component: registry.list('gatewayUpstream')[0]!, drive: () => undefined }),
  },
  {
    kind: 'gatewayEndpoint',
    make: (registry) => ({ component: registry.list('gatewayEndpoint')[0]!, drive: () => undefined }),
  },
  {
    // The endpoint's breaker, registered by the gateway (operable from the control plane).
    kind: 'circuitBreaker',
    make: (registry) => ({ component: registry.list('circuitBreaker')[0]!, drive: () => undefined }),
  },
];

describe('telemetry spine: the component kinds that need servers, files or sockets', () => {
  it('exports the state and figures of each, logs their state changes, and promtool accepts it all', async () => {
    await verifySpine(KINDS, createRegistry(), createFakeClock(), SINGLE_STATE_IN_TEST);
  }, 60_000);
});
