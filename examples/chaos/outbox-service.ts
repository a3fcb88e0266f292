/**
 * An order service with a durable outbox, for examples/chaos/postgres-cut.yaml: POST
 * /orders?id=N writes the order to PostgreSQL (reached at PG_ADDR, where the experiment puts a
 * fault proxy) through `storeAndForward`; when PostgreSQL cannot be reached the order is kept in a
 * local SQLite queue and answered 202 all the same, and a worker writes it once PostgreSQL is
 * back. GET /stats says how many orders were accepted, how many are still waiting, and how many
 * rows PostgreSQL has for this run (schema chaosexp_outbox).
 *
 *   PG_ADDR=127.0.0.1:5432 npx tsx examples/chaos/outbox-service.ts
 */

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoff, pipeline, retry, timeout } from 'bulwark';
import { openQueue, sqliteStore, storeAndForward } from 'bulwark/durable';
import pg from 'pg';

const [host, port] = (process.env.PG_ADDR ?? '127.0.0.1:5432').split(':');
const db = new pg.Pool({
  host,
  port: Number(port),
  user: 'postgres',
  database: process.env.PG_DATABASE ?? 'test',
  max: 8,
  connectionTimeoutMillis: 500,
  query_timeout: 1_000,
});
db.on('error', () => {}); // a cut connection is expected here; the pool replaces it
const run = randomUUID();
await db.query('CREATE SCHEMA IF NOT EXISTS chaosexp_outbox');
await db.query(
  'CREATE TABLE IF NOT EXISTS chaosexp_outbox.orders (run uuid, id text, PRIMARY KEY (run, id))',
);

interface Order {
  readonly id: string;
}
const write = async (o: Order): Promise<void> => {
  await db.query('INSERT INTO chaosexp_outbox.orders (run, id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    run,
    o.id,
  ]);
};

const dir = mkdtempSync(join(tmpdir(), 'bulwark-chaosexp-outbox-'));
const outbox = await openQueue<Order>({
  name: 'orders',
  store: sqliteStore({ path: join(dir, 'outbox.db') }),
  maxAttempts: 1_000,
  backoff: backoff.exponential({ initialMs: 50, maxMs: 500 }),
});
const send = storeAndForward(
  outbox,
  pipeline(timeout({ timeoutMs: 800 }), retry({ maxAttempts: 2, backoff: backoff.constant(10) })),
  write,
);
const worker = outbox.work((job) => write(job.payload), { concurrency: 4, pollMs: 50 });

let accepted = 0;
let queued = 0;
const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/stats') {
    const s = await outbox.stats();
    const rows = await db
      .query('SELECT count(*)::int AS n FROM chaosexp_outbox.orders WHERE run = $1', [run])
      .then(
        (r) => (r.rows[0] as { n: number }).n,
        () => null,
      );
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ accepted, queued, waiting: s.pending + s.active, dead: s.dead, inPostgres: rows }),
    );
    return;
  }
  const id = url.searchParams.get('id');
  if (req.method !== 'POST' || url.pathname !== '/orders' || id === null) {
    res.writeHead(404).end();
    return;
  }
  try {
    const out = await send({ id }, { key: `order-${id}` });
    accepted++;
    if ('queued' in out) queued++;
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify('queued' in out ? { queued: out.queued } : { delivered: true }));
  } catch (error) {
    res.writeHead(503).end(String(error)); // not even kept: this would be a lost order
  }
});
server.listen(0, '127.0.0.1', () => {
  const { port: p } = server.address() as { port: number };
  console.log(`outbox-service listening on http://127.0.0.1:${p}`);
});
const stop = async (): Promise<void> => {
  server.close();
  await worker.stop({ graceMs: 500 });
  await outbox.close();
  await db.query('DELETE FROM chaosexp_outbox.orders WHERE run = $1', [run]).catch(() => {});
  await db.end().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
