/**
 * Crash tests of the SQLite store with real processes: producers and workers SIGKILLed at random
 * (>= 50 kills in all). Every acknowledged enqueue survives; every item ends completed or dead
 * exactly once; duplicate handler runs (the price of at-least-once) are counted and printed.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { producerCrashes, workerCrashes } from './support/durable-crash.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const spec = `sqlite:${join(dir, 'crash.db')}`;

describe('SQLite store under SIGKILL', () => {
  it('producers killed at random: every id reported after enqueue resolved is stored exactly once', async () => {
    const tally = await producerCrashes({ spec, queue: 'producers', kills: 20, parallel: 5, seed: 7 });
    console.log('producer crashes:', JSON.stringify(tally));
    expect(tally.kills).toBe(20);
    expect(tally.reported).toBeGreaterThan(0);
    expect(tally.missing).toBe(0);
    expect(tally.duplicatePayloads).toBe(0);
    expect(tally.stored).toBeGreaterThanOrEqual(tally.reported);
  }, 120_000);

  it('workers killed mid-handler: every item ends completed or dead exactly once, none lost', async () => {
    const tally = await workerCrashes({
      spec,
      queue: 'workers',
      kills: 30,
      parallel: 6,
      seed: 11,
      items: 1200,
      sideLog: join(dir, 'runs.log'),
      leaseMs: 800,
      prefetch: 4,
    });
    console.log('worker crashes:', JSON.stringify(tally));
    expect(tally.kills).toBe(30);
    expect(tally.lost).toBe(0);
    expect(tally.unfinished).toBe(0);
    expect(tally.doubleCompleted).toBe(0);
    expect(tally.completed + tally.dead).toBe(tally.items);
    expect(tally.dead).toBe(Math.ceil(1200 / 17));
    expect(tally.deadReasons).toEqual({ 'non-retryable': Math.ceil(1200 / 17) });
  }, 180_000);
});
