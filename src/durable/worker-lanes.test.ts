import { describe, expect, it } from 'vitest';
import { openQueue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';
import type { ClaimedItem } from './store.js';

async function waitFor(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A SQLite store whose claims are recorded: how many items each asked for, how many were in flight. */
function recordingStore() {
  const store = sqliteStore({ path: ':memory:' });
  const claim = store.claim.bind(store);
  const calls: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  store.claim = async (
    queue: string,
    limit: number,
    leaseMs: number,
    now: number,
  ): Promise<ClaimedItem[]> => {
    calls.push(limit);
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      return await claim(queue, limit, leaseMs, now);
    } finally {
      inFlight--;
    }
  };
  return { store, calls, maxInFlight: () => maxInFlight };
}

describe('worker claim lanes', () => {
  it('a worker at concurrency 200 keeps up to 2 claims of at most 100 in flight and never runs more than 200 handlers', async () => {
    const { store, calls, maxInFlight } = recordingStore();
    const q = await openQueue<number>({ name: 'lanes', store, statsIntervalMs: 0 });
    await q.enqueueMany(Array.from({ length: 3000 }, (_, i) => ({ payload: i })));
    let running = 0;
    let maxRunning = 0;
    const seen = new Set<number>();
    const w = q.work(
      async (job) => {
        maxRunning = Math.max(maxRunning, ++running);
        seen.add(job.payload);
        await new Promise((r) => setImmediate(r));
        running--;
      },
      { concurrency: 200, pollMs: 20 },
    );
    await waitFor(() => w.stats.completed === 3000);
    await w.stop();
    expect(seen.size).toBe(3000);
    expect(maxRunning).toBeLessThanOrEqual(200);
    expect(Math.max(...calls)).toBeLessThanOrEqual(100);
    expect(maxInFlight()).toBeLessThanOrEqual(2);
    expect((await q.stats()).completed).toBe(3000);
    await q.close();
  });

  it('a small worker claims for all its free slots in one call at a time', async () => {
    const { store, calls, maxInFlight } = recordingStore();
    const q = await openQueue<number>({ name: 'one-lane', store, statsIntervalMs: 0 });
    await q.enqueueMany(Array.from({ length: 200 }, (_, i) => ({ payload: i })));
    const w = q.work(async () => {}, { concurrency: 8, prefetch: 8, pollMs: 20 });
    await waitFor(() => w.stats.completed === 200);
    await w.stop();
    expect(calls[0]).toBe(16);
    expect(maxInFlight()).toBe(1);
    await q.close();
  });
});
