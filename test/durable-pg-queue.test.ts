/**
 * The durable queue (`openQueue`) on the PostgreSQL store: the transactional outbox through
 * `enqueue(payload, { tx })`, several "nodes" (stores with their own pools) sharing one queue,
 * LISTEN/NOTIFY waking an idle worker of another node, and fencing — a worker paused past its
 * lease loses it (LEASE_LOST) while another node completes the item.
 */

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DurableWorkerEvent } from '../src/durable/events.js';
import { type PostgresQueueStore, postgresStore } from '../src/durable/postgres-store.js';
import { openQueue, type Queue } from '../src/durable/queue.js';
import { deferred } from '../src/testing/deferred.js';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName, until } from './support/postgres.js';

describePg('durable queue on PostgreSQL', () => {
  const schema = uniqueName('bw_pgq');
  const stores: PostgresQueueStore[] = [];
  const queues: Queue<unknown>[] = [];
  const node = (poolSize = 4) => {
    const s = postgresStore({ connectionString: pgConnectionString(), schema, poolSize });
    stores.push(s);
    return s;
  };
  async function open<T>(name: string, store: PostgresQueueStore): Promise<Queue<T>> {
    const q = await openQueue<T>({ name, store });
    queues.push(q as Queue<unknown>);
    return q;
  }

  beforeAll(async () => {
    const s = postgresStore({ connectionString: pgConnectionString(), schema });
    await s.init();
    await s.close();
  });
  afterAll(async () => {
    for (const q of queues) await q.close({ graceMs: 0 }).catch(() => {});
    for (const s of stores) await s.close().catch(() => {});
    await dropSchema(schema);
  });

  it('transactional outbox: enqueue(payload, { tx }) rolls back and commits with the caller', async () => {
    const name = uniqueName('outbox');
    const q = await open<{ order: number }>(name, node());
    const pool = pgPool({ max: 1 });
    const client = await pool.connect();
    try {
      await client.query('CREATE TEMP TABLE orders (id int PRIMARY KEY)');
      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES (1)');
      const rolled = await q.enqueue({ order: 1 }, { tx: client });
      await client.query('ROLLBACK');
      expect(await q.get(rolled.id)).toBeUndefined();

      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES (2)');
      const kept = await q.enqueue({ order: 2 }, { tx: client });
      expect(await q.get(kept.id)).toBeUndefined(); // not visible before COMMIT
      await client.query('COMMIT');
      expect((await q.get(kept.id))?.payload).toEqual({ order: 2 });

      // The committed job runs; the rolled-back one never existed.
      const seen: number[] = [];
      const w = q.work((job) => {
        seen.push(job.payload.order);
      });
      expect(await until(() => seen.length === 1, 10_000)).toBe(true);
      await w.stop();
      expect(seen).toEqual([2]);
      expect((await q.stats()).completed).toBe(1);
    } finally {
      client.release();
      await pool.end();
    }
  });

  it('three nodes share one queue: every item completed exactly once', async () => {
    const name = uniqueName('multi');
    const producer = await open<number>(name, node());
    const N = 1500;
    for (let i = 0; i < N; i += 250) {
      await producer.enqueueMany(Array.from({ length: 250 }, (_, j) => ({ payload: i + j })));
    }
    const counts = new Map<number, number>();
    const workers = [];
    for (let n = 0; n < 3; n++) {
      const q = await open<number>(name, node());
      workers.push(
        q.work(
          (job) => {
            counts.set(job.payload, (counts.get(job.payload) ?? 0) + 1);
          },
          { concurrency: 20, pollMs: 50 },
        ),
      );
    }
    expect(await until(async () => (await producer.stats()).completed === N, 30_000)).toBe(true);
    await Promise.all(workers.map((w) => w.stop()));
    expect(counts.size).toBe(N);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // Each node did part of the work.
    for (const w of workers) expect(w.stats.completed).toBeGreaterThan(0);
  });

  it('LISTEN/NOTIFY: an idle worker (poll every 60 s) on one node picks up another node’s enqueue at once', async () => {
    const name = uniqueName('wake');
    const consumer = await open<string>(name, node());
    const producer = await open<string>(name, node());
    const got: string[] = [];
    const w = consumer.work(
      (job) => {
        got.push(job.payload);
      },
      { pollMs: 60_000 },
    );
    // Let the worker's first (empty) claim and its LISTEN happen.
    await new Promise((r) => setTimeout(r, 300));
    await producer.enqueue('hello');
    expect(await until(() => got.length === 1, 10_000)).toBe(true);
    await producer.enqueue('again');
    expect(await until(() => got.length === 2, 10_000)).toBe(true);
    await w.stop();
  });

  it('fencing: a worker paused past its lease gets LEASE_LOST; another node completes the item', async () => {
    const name = uniqueName('fence');
    const a = await open<string>(name, node());
    const b = await open<string>(name, node());
    const eventsA: DurableWorkerEvent[] = [];
    await a.enqueue('slow');
    const pausedStarted = deferred<void>();
    const resume = deferred<void>();
    let aborted = false;
    // Node A: no heartbeats, a short lease, and a handler that stalls (a GC pause, a stuck call).
    const wa = a.work(
      async (_job, { signal }) => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
        pausedStarted.resolve();
        await resume.promise;
      },
      { leaseMs: 300, heartbeatMs: 0, pollMs: 60_000 },
    );
    wa.onEvent((e) => eventsA.push(e));

    await pausedStarted.promise;
    // Node B takes the item over once A's lease has expired, and completes it.
    const ranOnB: number[] = [];
    const wb = b.work(
      (job) => {
        ranOnB.push(job.attempt);
      },
      { pollMs: 50 },
    );
    expect(await until(() => ranOnB.length === 1, 10_000)).toBe(true);
    expect(ranOnB).toEqual([2]);
    expect(await until(() => aborted, 5_000)).toBe(true); // A's signal told it the lease was lost
    // A wakes up and acks: refused.
    resume.resolve();
    expect(await until(() => wa.stats.leaseLost >= 1, 5_000)).toBe(true);
    expect(wa.stats.completed).toBe(0);
    expect(eventsA.some((e) => e.event === 'leaseLost')).toBe(true);
    await wa.stop();
    await wb.stop();
    const s = await a.stats();
    expect(s.completed).toBe(1);
    expect(s.active).toBe(0);
  });
});
