/**
 * Crash tests of the PostgreSQL store with real processes (the fixtures of
 * test/support/durable-crash.ts): producers and workers SIGKILLed at random (>= 50 kills in all),
 * then a database
 * outage in the middle of a run. The outage goes through a local TCP proxy (the shared PostgreSQL
 * is never restarted): every connection is dropped and new ones are refused for a while (what a
 * restart looks like to clients), then connections are blackholed (half-open) for a while. Workers
 * must survive both, reconnect and finish every item exactly once.
 *
 * Children are started by the shared harness (test/support/durable-crash.ts): one process each,
 * in its own process group, killed as a group.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openQueue, storeFromSpec } from '../src/durable/index.js';
import {
  cleanupQueue,
  killGroup,
  producerCrashes,
  startFixture,
  workerCrashes,
} from './support/durable-crash.js';
import { describePg, dropSchema, pgConnectionString, pgUp, uniqueName, until } from './support/postgres.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-pg-crash-'));
const schema = uniqueName('bw_crash');
const spec = (port?: number) => `${pgConnectionString(port)}?schema=${schema}`;

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (pgUp) await dropSchema(schema);
});

describePg('PostgreSQL store under SIGKILL and outages', () => {
  it('producers killed at random: every id reported after enqueue resolved is stored exactly once', async () => {
    const tally = await producerCrashes({
      spec: spec(),
      queue: 'producers',
      kills: 20,
      parallel: 4,
      seed: 17,
    });
    console.log('pg producer crashes:', JSON.stringify(tally));
    expect(tally.kills).toBe(20);
    expect(tally.reported).toBeGreaterThan(0);
    expect(tally.missing).toBe(0);
    expect(tally.duplicatePayloads).toBe(0);
    expect(tally.stored).toBeGreaterThanOrEqual(tally.reported);
    await cleanupQueue(spec(), 'producers');
  }, 240_000);

  it('workers killed mid-handler: every item ends completed or dead exactly once, none lost', async () => {
    const tally = await workerCrashes({
      spec: spec(),
      queue: 'workers',
      kills: 32,
      parallel: 4,
      seed: 23,
      items: 1500,
      sideLog: join(dir, 'runs.log'),
      leaseMs: 800,
    });
    console.log('pg worker crashes:', JSON.stringify(tally));
    expect(tally.kills).toBe(32);
    expect(tally.lost).toBe(0);
    expect(tally.unfinished).toBe(0);
    expect(tally.doubleCompleted).toBe(0);
    expect(tally.completed + tally.dead).toBe(tally.items);
    expect(tally.dead).toBe(Math.ceil(1500 / 17));
  }, 300_000);

  describePg('a PostgreSQL outage mid-run (through a TCP proxy)', () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy({ port: 5432 });
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it('workers survive a restart-like outage and a half-open period, reconnect and finish every item once', async () => {
      const queue = uniqueName('outage');
      const sideLog = join(dir, 'outage.log');
      const N = 900;
      const q = await openQueue<{ run: number; i: number }>({ name: queue, store: storeFromSpec(spec()) });
      try {
        const ids: string[] = [];
        for (let i = 0; i < N; i += 300) {
          const out = await q.enqueueMany(
            Array.from({ length: 300 }, (_, j) => ({ payload: { run: 0, i: i + j } })),
          );
          for (const r of out) ids.push(r.id);
        }
        const children = await Promise.all(
          Array.from({ length: 3 }, () =>
            startFixture('worker.ts', [spec(proxy.port), queue, sideLog, '8', '2000']),
          ),
        );
        await Promise.all(children.map((c) => c.ready));
        const done = async () => {
          const s = await q.stats();
          return s.completed + s.dead;
        };
        expect(await until(async () => (await done()) >= N / 4, 60_000)).toBe(true);
        // 1. Restart-like outage: every connection dropped, new ones refused for 2.5 s.
        await proxy.outage(2500);
        const afterOutage = await done();
        expect(afterOutage).toBeLessThan(N);
        expect(await until(async () => (await done()) >= afterOutage + N / 6, 60_000)).toBe(true);
        // 2. Half-open: bytes swallowed on every connection for 2 s, then new connections flow.
        proxy.blackhole();
        await new Promise((r) => setTimeout(r, 2000));
        proxy.heal();
        // Everything finishes (the blackholed statements time out after the store's queryTimeoutMs).
        expect(
          await until(async () => {
            const s = await q.stats();
            return s.pending === 0 && s.active === 0;
          }, 120_000),
        ).toBe(true);
        // No worker died during the outage.
        for (const c of children) {
          expect(c.proc.exitCode, c.stderr.slice(0, 2000)).toBeNull();
          expect(c.proc.signalCode).toBeNull();
        }
        for (const c of children) killGroup(c.proc, 'SIGTERM');
        await Promise.all(children.map((c) => c.exited));
        for (const c of children) expect(c.stderr).not.toMatch(/Unhandled|uncaught|ERR_UNHANDLED/i);

        const s = await q.stats();
        expect(s.completed + s.dead).toBe(N);
        expect(s.dead).toBe(Math.ceil(N / 17));
        const completions = new Map<string, number>();
        for (const line of readFileSync(sideLog, 'utf8').split('\n')) {
          const [kind, id] = line.split(' ');
          if (kind === 'C' && id !== undefined) completions.set(id, (completions.get(id) ?? 0) + 1);
        }
        expect([...completions.values()].filter((n) => n > 1).length).toBe(0);
        const items = new Set(ids);
        for (const id of completions.keys()) expect(items.has(id)).toBe(true);
        console.log(
          `pg outage: ${N} items, ${s.completed} completed, ${s.dead} dead, ${proxy.accepted} connections through the proxy`,
        );
      } finally {
        await q.close();
      }
    }, 300_000);
  });
});
