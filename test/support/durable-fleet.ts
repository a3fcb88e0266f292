/**
 * Fleet tests and benches with real worker processes (test/fixtures/durable/fleet-worker.ts, started
 * by the crash harness): start and stop them, read their logs, run a round of fleet-wide limits.
 * Used by test/durable-fleet.test.ts and bench/durable-limits.bench.ts.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openQueue, storeFromSpec } from '../../src/durable/index.js';
import { type Child, killGroup, startFixture } from './durable-crash.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startWorkers(n: number, args: (i: number) => string[]): Promise<Child[]> {
  const children = await Promise.all(
    Array.from({ length: n }, (_, i) => startFixture('fleet-worker.ts', args(i))),
  );
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) {
    if (c.proc.exitCode !== null) throw new Error(`fleet worker exited early: ${c.stderr.slice(0, 2000)}`);
  }
  return children;
}

export async function stopWorkers(children: readonly Child[]): Promise<void> {
  for (const c of children)
    if (c.proc.exitCode === null && c.proc.signalCode === null) killGroup(c.proc, 'SIGTERM');
  await Promise.all(children.map((c) => c.exited));
}

export function lines(path: string): string[][] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' '));
}

/**
 * One round of fleet-wide limits on PostgreSQL: 4 worker processes of `concurrency` slots each, then
 * `items` items enqueued; returns items/s (from the first enqueue to the last completion), the most
 * handlers running at once (from their recorded starts and ends) and how many handler runs started.
 */
export async function limitRound(o: {
  spec: string;
  dir: string;
  limit: number | null;
  items: number;
  concurrency: number;
  workMs: number;
  tag: string;
}): Promise<{ perSec: number; max: number; starts: number }> {
  const { spec, dir, limit, items, tag } = o;
  const queue = `qfeat_lim_${tag}`;
  const log = join(dir, `${queue}.log`);
  const admin = await openQueue({ name: queue, store: storeFromSpec(spec), statsIntervalMs: 0 });
  if (limit !== null) await admin.limits.set({ concurrency: limit });
  const workers = await startWorkers(4, () => [
    'limits',
    spec,
    queue,
    log,
    String(o.concurrency),
    String(o.workMs),
  ]);
  const started = performance.now();
  for (let i = 0; i < items; i += 500) {
    await admin.enqueueMany(Array.from({ length: Math.min(500, items - i) }, (_, j) => ({ payload: i + j })));
  }
  const deadline = Date.now() + 240_000;
  while (Date.now() < deadline) {
    if ((await admin.stats()).completed === items) break;
    await sleep(20);
  }
  const seconds = (performance.now() - started) / 1000;
  await stopWorkers(workers);
  await admin.close();
  const events = lines(log)
    .map((l) => ({ at: Number(l[1]), delta: l[0] === 'S' ? 1 : -1 }))
    .sort((a, b) => a.at - b.at || a.delta - b.delta);
  let running = 0;
  let max = 0;
  for (const e of events) {
    running += e.delta;
    max = Math.max(max, running);
  }
  return { perSec: items / seconds, max, starts: events.filter((e) => e.delta === 1).length };
}
