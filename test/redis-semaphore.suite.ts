/**
 * bulwark/redis semaphore and bulkhead against the real Redis at 127.0.0.1:6379 (see
 * test/support/redis.ts: skipped without Redis outside CI, failing on CI).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { BulkheadRejectedError, pipeline, retry } from '../src/index.js';
import { redisBulkhead, redisSemaphore } from '../src/redis/semaphore.js';
import { cleanup, connectRedis, describeRedis, testPrefix, until } from './support/redis.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'semaphore-holder.ts');

function killGroup(c: ChildProcess): void {
  try {
    process.kill(-c.pid!, 'SIGKILL');
  } catch {
    c.kill('SIGKILL');
  }
}

describeRedis('redisSemaphore (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const children: ChildProcess[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    redis = await connectRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) killGroup(c);
    await cleanup(redis, prefix);
    expect(unhandled).toEqual([]);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    redis?.disconnect();
  });

  it('never hands out more than limit permits to concurrent acquirers; release frees one', async () => {
    prefix = testPrefix();
    const sems = Array.from({ length: 4 }, () =>
      redisSemaphore({ client: redis, prefix, name: 'n', limit: 3 }),
    );
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => sems[i % 4]!.acquire()));
    const held = got.filter((p) => p !== null);
    expect(held).toHaveLength(3);
    expect(await sems[0]!.count()).toBe(3);
    expect(await sems[1]!.acquire()).toBeNull();
    expect(await held[0]!.release()).toBe(true);
    expect(await held[0]!.release()).toBe(false);
    const again = await sems[2]!.acquire();
    expect(again).not.toBeNull();
    expect(await sems[3]!.acquire()).toBeNull();
  });

  it('a lease ends unless extended; extend keeps it; a lost lease cannot be extended', async () => {
    prefix = testPrefix();
    const sem = redisSemaphore({ client: redis, prefix, name: 'n', limit: 1, leaseMs: 300 });
    const p = (await sem.acquire())!;
    expect(p).not.toBeNull();
    // Extended every 50 ms for 700 ms (well past two leases): still held, nobody else gets in.
    const end = Date.now() + 700;
    while (Date.now() < end) {
      expect(await p.extend()).toBe(true);
      expect(await sem.acquire()).toBeNull();
      await new Promise((r) => setTimeout(r, 50));
    }
    // Left alone, it ends.
    expect(await until(async () => (await sem.count()) === 0, 2_000)).toBe(true);
    expect(await p.extend()).toBe(false);
    expect(await sem.acquire()).not.toBeNull();
  });

  it('a holder killed with SIGKILL gives its permit back after its lease, not before', async () => {
    prefix = testPrefix();
    const leaseMs = 600;
    const sem = redisSemaphore({ client: redis, prefix, name: 'k', limit: 1, leaseMs });
    // ONE process running the fixture (`node --import tsx`, not the tsx binary, which would run it
    // in a child that a SIGKILL of the wrapper leaves running), in its own process group.
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, prefix, 'k', '1', String(leaseMs)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    children.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
    });
    expect(line).toMatch(/^HELD /);
    // The lease's end, in the server's time (the score of the holder's id).
    const expiry = Number(await redis.zscore(sem.key, line.slice(5)));
    const serverNow = async () => {
      const [sec, usec] = await redis.time();
      return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    };
    const exited = new Promise((r) => child.on('exit', r));
    killGroup(child);
    await exited;
    // Every attempt is bracketed by server times [t0, t1]: a refusal must come before the lease's
    // end (t0 < expiry), a success after it (t1 >= expiry).
    let refused = 0;
    let refusedBeforeEnd = 0;
    let backAt = 0;
    const deadline = Date.now() + 5_000;
    for (;;) {
      const t0 = await serverNow();
      const p = await sem.acquire();
      const t1 = await serverNow();
      if (p === null) {
        expect(t0).toBeLessThan(expiry);
        refused++;
        if (t1 < expiry) refusedBeforeEnd++;
      } else {
        expect(t1).toBeGreaterThanOrEqual(expiry);
        backAt = t1;
        break;
      }
      if (Date.now() > deadline) throw new Error('the permit never came back');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Dead, but its lease ran: the permit was unavailable for a while after the kill.
    expect(refusedBeforeEnd).toBeGreaterThan(0);
    // The holder is gone, and no process of its group survives (tsx's esbuild service, a child,
    // dies with it; the kernel may take a moment to reap it).
    const groupGone = async () => {
      for (const end = Date.now() + 3_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
        try {
          process.kill(-child.pid!, 0);
        } catch {
          return true;
        }
      }
      return false;
    };
    expect(await groupGone()).toBe(true); // (checked after the timing part: reaping may lag)
    expect(backAt - expiry).toBeLessThan(500);
    console.log(
      `SIGKILLed holder: ${refused} refusals while its lease ran, permit back ${backAt - expiry} ms after the lease ended (lease ${leaseMs} ms)`,
    );
  }, 15_000);

  it('redisBulkhead: rejects when full, renews while running, releases after; limit never exceeded', async () => {
    prefix = testPrefix();
    const sem = redisSemaphore({ client: redis, prefix, name: 'b', limit: 2, leaseMs: 300 });
    const bh = redisBulkhead({ semaphore: sem, renewEveryMs: 50 });
    const events: string[] = [];
    bh.onEvent((e) => events.push(`${e.event}:${e.inFlight}`));
    let running = 0;
    let peak = 0;
    const work = async () => {
      running++;
      peak = Math.max(peak, running);
      // Three leases long: without renewal the permit would expire and others get in.
      await new Promise((r) => setTimeout(r, 900));
      running--;
      return 'ok';
    };
    const first = [bh.execute(work), bh.execute(work)];
    await until(async () => running === 2, 2_000);
    // Poll while they run: a third call is rejected every time, also after the lease would have ended.
    let rejections = 0;
    while (running === 2) {
      const r = await bh.execute(work).then(
        () => 'ran',
        (e: unknown) => e,
      );
      if (r === 'ran') throw new Error('a third call ran while two held the permits');
      expect(r).toBeInstanceOf(BulkheadRejectedError);
      expect((r as BulkheadRejectedError).code).toBe('BULKHEAD_FULL');
      rejections++;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(await Promise.all(first)).toEqual(['ok', 'ok']);
    expect(rejections).toBeGreaterThan(5);
    expect(peak).toBe(2);
    expect(bh.stats).toEqual({ active: 0, rejected: rejections, leasesLost: 0 });
    expect(events[0]).toBe('reject:2');
    // Released at the end (in the background).
    expect(await until(async () => (await sem.count()) === 0, 1_000)).toBe(true);
    // A failing call releases too, and works inside a pipeline.
    const p = pipeline(retry({ maxAttempts: 1 }), bh);
    await expect(
      p.execute(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await until(async () => (await sem.count()) === 0, 1_000)).toBe(true);
    expect(await p.execute(() => 7)).toBe(7);
  });

  it('many concurrent bulkhead calls from several instances never exceed the limit', async () => {
    prefix = testPrefix();
    const limit = 3;
    const bhs = Array.from({ length: 4 }, () =>
      redisBulkhead({
        semaphore: redisSemaphore({ client: redis, prefix, name: 'c', limit, leaseMs: 1_000 }),
      }),
    );
    let running = 0;
    let peak = 0;
    let ran = 0;
    const work = async () => {
      running++;
      ran++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    };
    for (let round = 0; round < 10; round++) {
      await Promise.allSettled(Array.from({ length: 20 }, (_, i) => bhs[i % 4]!.execute(work)));
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(ran).toBeGreaterThanOrEqual(10);
  });

  it('recovers from NOSCRIPT by sending the script with EVAL', async () => {
    prefix = testPrefix();
    // A client that answers NOSCRIPT to every EVALSHA, as a Redis that lost its script cache
    // would (not SCRIPT FLUSH: that would disturb other tests using the same Redis).
    let evals = 0;
    const client = {
      evalsha: () => Promise.reject(new Error('NOSCRIPT No matching script. Please use EVAL.')),
      eval: (...args: unknown[]) => {
        evals++;
        return (redis.eval as (...a: unknown[]) => Promise<unknown>)(...args);
      },
      zrem: (...args: unknown[]) => (redis.zrem as (...a: unknown[]) => Promise<number>)(...args),
    };
    const sem = redisSemaphore({ client: client as never, prefix, name: 'f', limit: 1 });
    const p = await sem.acquire();
    expect(p).not.toBeNull();
    expect(await sem.acquire()).toBeNull();
    expect(await p!.extend()).toBe(true);
    expect(await p!.release()).toBe(true);
    expect(evals).toBe(3);
  });

  it('validates its options', () => {
    prefix = testPrefix();
    expect(() => redisSemaphore({ client: redis, name: 'x' } as never)).toThrow(/limit/);
    expect(() => redisSemaphore({ client: redis, name: '', limit: 1 })).toThrow(/name/);
    expect(() => redisSemaphore({ client: {} as never, name: 'x', limit: 1 })).toThrow(/client/);
    expect(() => redisSemaphore({ client: redis, name: 'x', limit: 1.5 })).toThrow(/limit/);
    const semaphore = redisSemaphore({ client: redis, name: 'x', limit: 1, leaseMs: 100 });
    expect(() => redisBulkhead({ semaphore, renewEveryMs: 100 })).toThrow(/renewEveryMs/);
    expect(() => redisBulkhead({ semaphore: {} as never })).toThrow(/semaphore/);
  });
});
