/**
 * bulwark/redis shared circuit breaker against the real Redis at 127.0.0.1:6379 (skipped without
 * Redis outside CI, failing on CI). Several instances live in one process, each with its own
 * client and subscriber connection.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { BrokenCircuitError, backoff } from '../src/index.js';
import {
  type SharedCircuitBreakerEvent,
  type SharedCircuitBreakerPolicy,
  sharedCircuitBreaker,
} from '../src/redis/shared-breaker.js';
import { cleanup, connectRedis, describeRedis, testPrefix, waitFor as until } from './support/redis.js';

const fail = () => Promise.reject(new Error('boom'));
const ok = () => Promise.resolve('ok');

describeRedis('sharedCircuitBreaker (real Redis)', () => {
  let admin: Redis;
  let prefix: string;
  const clients: Redis[] = [];
  const breakers: SharedCircuitBreakerPolicy[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    admin = await connectRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    for (const b of breakers.splice(0)) await b.close();
    for (const c of clients.splice(0)) c.disconnect();
    await cleanup(admin, prefix);
    expect(unhandled).toEqual([]);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    admin?.disconnect();
  });

  async function fleet(
    n: number,
    opts: {
      halfOpenAfterMs?: number;
      probeLeaseMs?: number;
      threshold?: number;
      aggregate?: {
        windowMs?: number;
        buckets?: number;
        minSamples?: number;
        failureRatio?: number;
        flushMs?: number;
      };
    },
  ) {
    const out: SharedCircuitBreakerPolicy[] = [];
    for (let i = 0; i < n; i++) {
      const client = await connectRedis();
      clients.push(client);
      const b = sharedCircuitBreaker({
        client,
        name: 'dep',
        prefix,
        breaker: { kind: 'consecutive', threshold: opts.threshold ?? 2 },
        halfOpenAfterMs: opts.halfOpenAfterMs ?? 60_000,
        probeLeaseMs: opts.probeLeaseMs ?? 10_000,
        timeoutMs: 500,
        ...(opts.aggregate === undefined ? {} : { aggregate: opts.aggregate }),
      });
      breakers.push(b);
      out.push(b);
    }
    await Promise.all(out.map((b) => b.ready));
    return out;
  }

  it('aggregated counting: failures spread over four instances open the breaker fleet-wide, where no instance alone would', async () => {
    prefix = testPrefix();
    const agg = { windowMs: 10_000, buckets: 10, minSamples: 20, failureRatio: 0.5, flushMs: 20 };
    const four = await fleet(4, { threshold: 100, aggregate: agg });
    const events: SharedCircuitBreakerEvent[] = [];
    four[0]!.onEvent((e) => events.push(e));
    // Each instance: 3 failures, 2 successes (60% failing; 5 calls each: below minSamples alone).
    for (const b of four) {
      for (let i = 0; i < 3; i++) await expect(b.execute(fail)).rejects.toThrow('boom');
      for (let i = 0; i < 2; i++) await b.execute(ok);
    }
    await until(() => four.every((b) => b.state === 'open'));
    await expect(four[3]!.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    // The counts were cleared by the opening.
    expect(await admin.exists(`${prefix}{dep}:counts`)).toBe(0);
  });

  it('aggregated counting: a jittered (fractional) break opens fine, and one slow flush does not end fleet-wide counting', async () => {
    prefix = testPrefix();
    const client = await connectRedis();
    clients.push(client);
    // The first flush's EVALSHA answers after 300 ms (timeoutMs 100): a fallback.
    let delayed = false;
    const evalsha = client.evalsha.bind(client) as (...a: unknown[]) => Promise<unknown>;
    (client as unknown as { evalsha: (...a: unknown[]) => Promise<unknown> }).evalsha = (...a) => {
      if (!delayed && String(a[0]) !== '' && a.length > 5) {
        delayed = true;
        return new Promise((r) => setTimeout(r, 300)).then(() => evalsha(...a));
      }
      return evalsha(...a);
    };
    const b = sharedCircuitBreaker({
      client,
      name: 'dep',
      prefix,
      breaker: { kind: 'consecutive', threshold: 1_000 },
      halfOpenAfterMs: backoff.exponential({ initialMs: 1_000, jitter: 'full' }),
      timeoutMs: 100,
      aggregate: { minSamples: 10, failureRatio: 0.5, flushMs: 20 },
    });
    breakers.push(b);
    await b.ready;
    const events: string[] = [];
    b.onEvent((e) => events.push(e.event));
    await expect(b.execute(fail)).rejects.toThrow('boom');
    await until(() => b.isFallback, 2_000);
    for (let i = 0; i < 12 && b.state === 'closed'; i++) {
      await expect(b.execute(fail)).rejects.toThrow('boom');
      await new Promise((r) => setTimeout(r, 25));
    }
    await until(() => b.state === 'open', 3_000);
    expect(events).toContain('fallback');
    expect(events).toContain('recovered');
    expect(await admin.exists(`${prefix}{dep}`)).toBe(1);
  });

  it('aggregated counting: a healthy fleet (failure rate under the threshold) stays closed', async () => {
    prefix = testPrefix();
    const agg = { minSamples: 10, failureRatio: 0.5, flushMs: 20 };
    const three = await fleet(3, { threshold: 100, aggregate: agg });
    for (const b of three) {
      for (let i = 0; i < 4; i++) await b.execute(ok);
      await expect(b.execute(fail)).rejects.toThrow('boom');
      await expect(b.execute(fail)).rejects.toThrow('boom');
    }
    await new Promise((r) => setTimeout(r, 150));
    const counts = await admin.hvals(`${prefix}{dep}:counts`);
    const total = counts.reduce(
      (acc, v) => {
        const [, s, f] = v.split(':').map(Number);
        return { s: acc.s + s!, f: acc.f + f! };
      },
      { s: 0, f: 0 },
    );
    expect(total).toEqual({ s: 12, f: 6 });
    expect(three.every((b) => b.state === 'closed')).toBe(true);
  });

  it('re-reads the shared state after its subscriber reconnects (an opening published meanwhile is not missed)', async () => {
    prefix = testPrefix();
    const [a, b] = await fleet(2, {});
    // Simulate b missing the message: drop its subscriber connection, open through a, reconnect.
    const sub = (b as unknown as { subscriber: Redis }).subscriber;
    sub.disconnect();
    await until(() => sub.status === 'end');
    await expect(a!.execute(fail)).rejects.toThrow('boom');
    await expect(a!.execute(fail)).rejects.toThrow('boom');
    expect(a!.state).toBe('open');
    await new Promise((r) => setTimeout(r, 50));
    expect(b!.state).toBe('closed');
    await sub.connect();
    await until(() => b!.state === 'open');
  });

  it('an opening on one instance opens the others (pub/sub), and a late starter reads the key', async () => {
    prefix = testPrefix();
    const [a, b, c] = await fleet(3, {});
    await expect(a!.execute(fail)).rejects.toThrow('boom');
    await expect(a!.execute(fail)).rejects.toThrow('boom');
    expect(a!.state).toBe('open');
    const t0 = performance.now();
    await until(() => b!.state === 'open' && c!.state === 'open');
    const delivery = performance.now() - t0;
    console.log(`pub/sub open delivery: ${delivery.toFixed(1)} ms`);
    const err = await b!.execute(ok).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenCircuitError);
    expect((err as BrokenCircuitError).state).toBe('open');
    expect((err as BrokenCircuitError).retryAfterMs).toBeGreaterThan(50_000);
    const [late] = await fleet(1, {});
    expect(late!.state).toBe('open');
    await expect(late!.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('exactly one half-open probe runs across instances; its success closes every instance', async () => {
    prefix = testPrefix();
    const n = 6;
    const all = await fleet(n, { halfOpenAfterMs: 100 });
    await expect(all[0]!.execute(fail)).rejects.toThrow();
    await expect(all[0]!.execute(fail)).rejects.toThrow();
    await until(() => all.every((b) => b.state === 'open'));
    await until(() => all.every((b) => b.state === 'half-open'), 3_000);
    let probes = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const probe = async () => {
      probes++;
      await gate;
      return 'ok';
    };
    // Every instance tries several calls at once.
    const calls = all.flatMap((b) => [b.execute(probe), b.execute(probe), b.execute(probe)]);
    const settled = Promise.allSettled(calls);
    await until(() => probes >= 1);
    await new Promise((r) => setTimeout(r, 50)); // give any second probe a chance to (wrongly) start
    expect(probes).toBe(1);
    release();
    const results = await settled;
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as BrokenCircuitError).state).toBe('half-open');
    }
    await until(() => all.every((b) => b.state === 'closed'));
    expect(await all[3]!.execute(ok)).toBe('ok');
    expect(await admin.exists(`${prefix}{dep}`, `${prefix}{dep}:probes`)).toBe(0);
  });

  it('reset() closes every instance', async () => {
    prefix = testPrefix();
    const [a, b] = await fleet(2, {});
    await expect(a!.execute(fail)).rejects.toThrow();
    await expect(a!.execute(fail)).rejects.toThrow();
    await until(() => b!.state === 'open');
    await b!.reset();
    await until(() => a!.state === 'closed');
    expect(await a!.execute(ok)).toBe('ok');
  });

  it('a failed probe re-opens every instance', async () => {
    prefix = testPrefix();
    const [a, b] = await fleet(2, { halfOpenAfterMs: 80 });
    const events: SharedCircuitBreakerEvent[] = [];
    b!.onEvent((e) => events.push(e));
    await expect(a!.execute(fail)).rejects.toThrow();
    await expect(a!.execute(fail)).rejects.toThrow();
    await until(() => b!.state === 'half-open', 3_000);
    await expect(b!.execute(fail)).rejects.toThrow('boom');
    expect(b!.state).toBe('open');
    await until(() => a!.state === 'open');
    expect(events.some((e) => e.event === 'probe' && e.leased)).toBe(true);
  });

  it('a probe holder that never answers: its lease expires and another instance probes', async () => {
    prefix = testPrefix();
    const [a, b] = await fleet(2, { halfOpenAfterMs: 50, probeLeaseMs: 300 });
    await expect(a!.execute(fail)).rejects.toThrow();
    await expect(a!.execute(fail)).rejects.toThrow();
    await until(() => a!.state === 'half-open' && b!.state === 'half-open', 3_000);
    // a's probe hangs forever (a dead holder, as far as the fleet can tell).
    let probing = false;
    a!.onEvent((e) => {
      if (e.event === 'probe') probing = true;
    });
    void a!.execute(() => new Promise(() => {})).catch(() => {});
    await until(() => probing);
    await expect(b!.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    const t0 = Date.now();
    let result: unknown;
    await until(() => {
      if (result === undefined) {
        b!.execute(ok).then(
          (v) => {
            result = v;
          },
          () => {},
        );
      }
      return result === 'ok';
    }, 3_000);
    const waited = Date.now() - t0;
    console.log(`second probe after ${waited} ms (lease 300 ms)`);
    expect(waited).toBeGreaterThanOrEqual(150);
    await until(() => a!.state === 'closed');
  });

  it('falls back to local behaviour when Redis is unreachable, with events', async () => {
    prefix = testPrefix();
    const { Redis: RedisClient } = await import('ioredis');
    const dead = new RedisClient({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    dead.on('error', () => {});
    clients.push(dead);
    const b = sharedCircuitBreaker({
      client: dead,
      name: 'dep',
      prefix,
      breaker: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 30,
      timeoutMs: 100,
    });
    breakers.push(b);
    const events: string[] = [];
    b.onEvent((e) => events.push(e.event));
    await b.ready;
    expect(b.isFallback).toBe(true);
    await expect(b.execute(fail)).rejects.toThrow('boom');
    expect(b.state).toBe('open');
    await expect(b.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    await until(() => b.state === 'half-open');
    expect(await b.execute(ok)).toBe('ok'); // local probe
    expect(b.state).toBe('closed');
    expect(events).toContain('probe');
    expect(events).toContain('fallback');
  });

  it('across processes: an opening in one rejects in the others, and only one probe runs', async () => {
    prefix = testPrefix();
    const n = 3;
    const lines: string[][] = [];
    const exits: Promise<number | null>[] = [];
    const readies: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      // `node --import tsx` runs the fixture in this one process (the tsx binary would fork a child).
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/breaker-worker.ts', prefix], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const mine: string[] = [];
      lines.push(mine);
      let ready!: () => void;
      readies.push(new Promise<void>((r) => (ready = r)));
      createInterface({ input: child.stdout! }).on('line', (l) => {
        mine.push(l);
        if (l === 'READY') ready();
      });
      exits.push(new Promise((r) => child.on('exit', (code) => r(code))));
    }
    await Promise.all(readies);
    const [opener] = await fleet(1, { halfOpenAfterMs: 300 });
    await expect(opener!.execute(fail)).rejects.toThrow();
    await expect(opener!.execute(fail)).rejects.toThrow();
    const codes = await Promise.all(exits);
    expect({ codes, lines }).toMatchObject({ codes: Array(n).fill(0) });
    for (const l of lines) expect(l.slice(0, 3)).toEqual(['READY', 'OPEN', 'REJECTED']);
    expect(lines.flat().filter((l) => l === 'PROBE')).toHaveLength(1);
    await until(() => opener!.state === 'closed');
  }, 45_000);
});
