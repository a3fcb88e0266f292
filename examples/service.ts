/**
 * A small HTTP service with health checks, Kubernetes probes, Prometheus metrics and structured
 * logs of every component of one registry, degradation fed to a load shedder, and graceful shutdown.
 *
 *   npx tsx examples/service.ts            # self-test: starts, calls its endpoints, SIGTERMs itself, exits 0
 *   npx tsx examples/service.ts --serve    # serves on PORT (default 3000) until SIGTERM / Ctrl-C
 *
 * Endpoints: GET /quote (business work), /health, /health/db, /livez, /readyz, /startupz, /metrics.
 */

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Component,
  circuitBreaker,
  createRegistry,
  isComponent,
  LoadShedError,
  loadShedder,
  pipeline,
  timeout,
} from 'bulwark';
import {
  breakerCheck,
  createHealthMonitor,
  customCheck,
  eventLoopCheck,
  gracefulShutdown,
  healthHandler,
} from 'bulwark/health';
import { createAlerts, createLogs, createMetrics, prometheusExporter } from 'bulwark/metrics';

const serve = process.argv.includes('--serve');

// A pretend database: in a real service, postgresCheck({ client: pool }) and redisCheck({ client }).
const db = {
  up: true,
  async query(_sql: string): Promise<number> {
    await new Promise((r) => setTimeout(r, 2));
    if (!this.up) throw new Error('connection refused');
    return 42;
  },
};

// The work, guarded: a timeout inside a breaker; a priority load shedder in front.
const breaker = circuitBreaker({ name: 'db', breaker: { kind: 'consecutive', threshold: 5 } });
const shedder = loadShedder({ name: 'quotes', capacity: 100 });
const policy = pipeline(shedder, breaker, timeout(500));

// One registry: metrics, logs and alerts read every component in it (and nothing else).
const registry = createRegistry();
for (const c of [policy, breaker, shedder]) if (isComponent(c)) registry.register(c as Component);

const monitor = createHealthMonitor({
  registry,
  serviceId: 'quote-service',
  description: 'Quotes, with Bulwark health checks',
  version: '1',
  releaseId: '1.0.0',
  groups: { db: ['db'] },
  degradation: { recoverAfterMs: serve ? 30_000 : 0 },
  checks: [
    customCheck({
      name: 'db',
      componentType: 'datastore',
      intervalMs: 5_000,
      timeoutMs: 1_000,
      run: async () => {
        await db.query('SELECT 1');
      },
    }),
    breakerCheck(breaker),
    eventLoopCheck(),
  ],
});
// Degraded (a critical dependency failing → critical-only), the shedder refuses all but critical work.
monitor.degradation?.attach(shedder);

const metrics = createMetrics({ registry });
createAlerts({ metrics, registry }).start(); // the default rules; firing alerts show in the logs
const logs = createLogs({
  registry,
  logger: {
    info: (_o, m) => console.log(`  log: ${m}`),
    warn: (_o, m) => console.log(`  log (warn): ${m}`),
    error: (_o, m) => console.log(`  log (error): ${m}`),
  },
});

const token = process.env.HEALTH_TOKEN ?? 'ops-secret';
const health = healthHandler(monitor, {
  // Details (observed values, outputs, version) only for callers with the operator token.
  details: (req) => req.headers.authorization === `Bearer ${token}`,
  metrics: prometheusExporter({ metrics }),
});

const server = createServer((req, res) => {
  if (health(req, res)) return;
  if (req.url === '/quote') {
    const priority = req.headers['x-priority'] === 'critical' ? 'critical' : 'normal';
    policy
      .execute(() => db.query('SELECT price FROM quotes'), { priority })
      .then(
        (price) => res.end(JSON.stringify({ price })),
        (error: unknown) => {
          res.statusCode = error instanceof LoadShedError ? 503 : 502;
          res.end(JSON.stringify({ error: (error as Error).message }));
        },
      );
    return;
  }
  res.statusCode = 404;
  res.end();
});

gracefulShutdown({
  servers: [server],
  monitor,
  // Serving behind a load balancer: keep serving 5 s after readiness fails. The self-test has none.
  drainDelayMs: serve ? 5_000 : 0,
  hooks: [
    { name: 'health monitor', run: () => monitor.close(), timeoutMs: 1_000 },
    { name: 'logs', run: () => logs.close(), timeoutMs: 1_000 },
    {
      name: 'database pool',
      run: async () => console.log('  (closing the database pool)'),
      timeoutMs: 2_000,
    },
  ],
  logger: {
    info: (m) => console.log(`  ${m}`),
    warn: (m) => console.log(`  ! ${m}`),
    error: (m) => console.error(`  !! ${m}`),
  },
});

await monitor.runNow();
server.listen(serve ? Number(process.env.PORT ?? 3000) : 0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`listening on ${base}`);

if (!serve) {
  const show = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { headers });
    const body = await res.text();
    console.log(`GET ${path} → ${res.status} ${body.length > 160 ? `${body.slice(0, 160)}…` : body}`);
    return res.status;
  };
  await show('/quote');
  await show('/readyz');
  await show('/health');
  await show('/health', { authorization: `Bearer ${token}` });
  // The database goes down: readiness fails, the service degrades to critical-only.
  db.up = false;
  await monitor.runNow();
  await monitor.runNow(); // two failures in a row (failureThreshold 2)
  await show('/readyz');
  console.log(`level: ${monitor.report().level}, shedder level: ${shedder.level}`);
  await show('/quote');
  await show('/quote', { 'x-priority': 'critical' });
  db.up = true;
  await monitor.runNow();
  await show('/readyz');
  const metricsBody = await (await fetch(`${base}/metrics`)).text();
  console.log(
    metricsBody
      .split('\n')
      .filter((l) => l.startsWith('bulwark_component_state') && l.endsWith(' 1'))
      .join('\n'),
  );
  console.log('sending SIGTERM to myself');
  process.kill(process.pid, 'SIGTERM'); // the graceful shutdown exits with code 0
}
