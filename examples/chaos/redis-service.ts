/**
 * A service rate-limited through Redis (`bulwark/redis`), for examples/chaos/redis-slowed.yaml:
 * GET /api asks the limiter (200 allowed, 429 refused); /metrics serves its figures. Redis is
 * reached at REDIS_ADDR (the experiment puts a fault proxy there). When Redis is slow, each
 * decision waits at most timeoutMs and the in-memory insurance limiter decides instead.
 *
 *   REDIS_ADDR=127.0.0.1:6379 npx tsx examples/chaos/redis-service.ts
 */

import { createServer } from 'node:http';
import { createRegistry } from 'bulwark';
import { createMetrics, prometheusExporter } from 'bulwark/metrics';
import { redisRateLimiter } from 'bulwark/redis';
import { Redis } from 'ioredis';

const [host, port] = (process.env.REDIS_ADDR ?? '127.0.0.1:6379').split(':');
const client = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1, lazyConnect: false });
client.on('error', () => {}); // the limiter reports failures; the client just reconnects
const registry = createRegistry();
const limiter = redisRateLimiter({
  client,
  name: 'api',
  prefix: 'bulwark:chaosexp:rl:',
  limits: [{ algorithm: 'fixed-window', limit: 100_000, windowMs: 1_000 }],
  timeoutMs: 50,
  registry,
});
const metrics = prometheusExporter({ metrics: createMetrics({ registry }) });

const server = createServer(async (req, res) => {
  if (req.url === '/metrics') {
    const { contentType, body } = await metrics();
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
    return;
  }
  if (req.url === '/healthz') {
    res.end('ok');
    return;
  }
  const decision = await limiter.consume(`tenant-${req.url?.length ?? 0}`);
  res.writeHead(decision.allowed ? 200 : 429, { 'content-type': 'text/plain' });
  res.end(decision.allowed ? 'ok' : 'slow down');
});
server.listen(0, '127.0.0.1', () => {
  const { port: p } = server.address() as { port: number };
  console.log(`redis-service listening on http://127.0.0.1:${p}`);
});
const stop = (): void => {
  server.close();
  client.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
