import { describe, expect, it } from 'vitest';
import { retry } from '../core/retry.js';
import { openQueue } from './queue.js';
import { sqliteStore } from './sqlite-store.js';
import { storeAndForward } from './store-and-forward.js';

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe('storeAndForward', () => {
  it('delivers now when the policy succeeds, queues when it gives up; a worker delivers later', async () => {
    const q = await openQueue<{ n: number }>({ name: 'saf', store: sqliteStore({ path: ':memory:' }) });
    let up = true;
    const delivered: number[] = [];
    const deliver = async (p: { n: number }) => {
      if (!up) throw new Error('ECONNREFUSED');
      delivered.push(p.n);
      return `ok ${p.n}`;
    };
    const send = storeAndForward(q, retry({ maxAttempts: 1 }), deliver);
    expect(await send({ n: 1 })).toEqual({ delivered: 'ok 1' });
    up = false;
    const out = await send({ n: 2 }, { key: 'n-2' });
    expect('queued' in out).toBe(true);
    if ('queued' in out) {
      expect(out.duplicate).toBe(false);
      expect((out.error as Error).message).toBe('ECONNREFUSED');
    }
    up = true;
    const w = q.work((job) => deliver(job.payload));
    await until(() => w.stats.completed === 1);
    expect(delivered).toEqual([1, 2]);
    await w.stop();
    await q.close();
  });
});
