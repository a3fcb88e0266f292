import { describe, expect, it } from 'vitest';
import { createRegistry } from '../core/registry.js';
import { openQueue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe('components', () => {
  it('a queue and its workers join the registry, report snapshots without I/O, and leave when closed', async () => {
    const registry = createRegistry();
    const q = await openQueue({ name: 'comp', store: sqliteStore({ path: ':memory:' }), registry });
    await expect(
      openQueue({ name: 'comp', store: sqliteStore({ path: ':memory:' }), registry }),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_COMPONENT',
    });
    await q.enqueue(1);
    await q.enqueue(2, { key: 'k' });
    await q.enqueue(3, { key: 'k' });
    await q.stats();
    const w = q.work(async () => {}, { concurrency: 3, name: 'comp-w' });
    await until(() => w.stats.completed === 2);
    const [qs, ws] = [
      registry.get('durableQueue', 'comp')!.snapshot(),
      registry.get('durableWorker', 'comp-w')!.snapshot(),
    ];
    expect(qs).toMatchObject({
      kind: 'durableQueue',
      state: 'open',
      counters: { enqueued: 2, duplicates: 1 },
    });
    expect(qs.gauges).toMatchObject({ workers: 1, pending: 2 }); // as of the last stats() refresh
    expect(ws).toMatchObject({
      kind: 'durableWorker',
      state: 'running',
      gauges: { concurrency: 3, inFlight: 0 },
    });
    expect(ws.counters.completed).toBe(2);
    expect(JSON.parse(JSON.stringify(ws))).toEqual(ws);
    await w.stop();
    expect(registry.get('durableWorker', 'comp-w')).toBeUndefined();
    await q.close();
    expect(registry.size).toBe(0);
  });
});
