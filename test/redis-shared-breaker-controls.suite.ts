/**
 * bulwark/redis shared circuit breaker against the real Redis: several half-open probes with a
 * success threshold, fleet-wide operator controls (isolate, forceOpen, disable, reset), save and
 * restore, snapshots and the registry. Run by test/redis.test.ts.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { BrokenCircuitError, createRegistry } from '../src/index.js';
import {
  type SharedCircuitBreakerOptions,
  type SharedCircuitBreakerPolicy,
  sharedCircuitBreaker,
} from '../src/redis/shared-breaker.js';
import { cleanup, connectRedis, describeRedis, testPrefix, waitFor as until } from './support/redis.js';

const fail = () => Promise.reject(new Error('boom'));
const ok = () => Promise.resolve('ok');

describeRedis('sharedCircuitBreaker controls (real Redis)', () => {
  let admin: Redis;
  let prefix: string;
  const clients: Redis[] = [];
  const breakers: SharedCircuitBreakerPolicy[] = [];

  beforeAll(async () => {
    admin = await connectRedis();
  });
  afterEach(async () => {
    for (const b of breakers.splice(0)) await b.close();
    for (const c of clients.splice(0)) c.disconnect();
    await cleanup(admin, prefix);
  });
  afterAll(() => admin?.disconnect());

  async function fleet(
    n: number,
    opts: Partial<Omit<SharedCircuitBreakerOptions, 'client' | 'name'>> = {},
  ): Promise<SharedCircuitBreakerPolicy[]> {
    const out: SharedCircuitBreakerPolicy[] = [];
    for (let i = 0; i < n; i++) {
      const client = await connectRedis();
      clients.push(client);
      const b = sharedCircuitBreaker({
        client,
        name: 'dep',
        prefix,
        breaker: { kind: 'consecutive', threshold: 2 },
        halfOpenAfterMs: 60_000,
        timeoutMs: 500,
        ...opts,
      });
      breakers.push(b);
      out.push(b);
    }
    await Promise.all(out.map((b) => b.ready));
    return out;
  }

  async function open(b: SharedCircuitBreakerPolicy): Promise<void> {
    await expect(b.execute(fail)).rejects.toThrow('boom');
    await expect(b.execute(fail)).rejects.toThrow('boom');
    expect(b.state).toBe('open');
  }

  it('half-open: at most `probes` probes run fleet-wide, and `successThreshold` successes close every instance', async () => {
    prefix = testPrefix();
    const all = await fleet(3, { halfOpenAfterMs: 100, halfOpen: { probes: 2, successThreshold: 3 } });
    await open(all[0]!);
    await until(() => all.every((b) => b.state === 'half-open'));
    let running = 0;
    let most = 0;
    let gate!: () => void;
    let opened = new Promise<void>((r) => (gate = r));
    const probe = async () => {
      running++;
      most = Math.max(most, running);
      await opened;
      running--;
      return 'ok';
    };
    // Round 1: everyone tries at once; two probes run, the rest are refused as half-open.
    const round = () => Promise.allSettled(all.flatMap((b) => [b.execute(probe), b.execute(probe)]));
    const first = round();
    await until(() => running === 2);
    await new Promise((r) => setTimeout(r, 50)); // a third probe would (wrongly) start now
    expect(most).toBe(2);
    gate();
    const r1 = await first;
    expect(r1.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    for (const r of r1) {
      if (r.status === 'rejected') expect((r.reason as BrokenCircuitError).state).toBe('half-open');
    }
    // Two successes of three: still half-open everywhere.
    await new Promise((r) => setTimeout(r, 50));
    expect(all.every((b) => b.state === 'half-open')).toBe(true);
    opened = Promise.resolve();
    await until(() => {
      void all[1]!.execute(probe).catch(() => {});
      return all.every((b) => b.state === 'closed');
    });
    expect(await admin.exists(`${prefix}{dep}`, `${prefix}{dep}:probes`, `${prefix}{dep}:ok`)).toBe(0);
  });

  it('isolate() holds every instance isolated until the last handle anywhere is released', async () => {
    prefix = testPrefix();
    const [a, b, c] = await fleet(3);
    const ha = a!.isolate();
    await until(() => b!.state === 'isolated' && c!.state === 'isolated');
    const err = await c!.execute(ok).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenCircuitError);
    expect((err as BrokenCircuitError).retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    const hb = b!.isolate();
    await new Promise((r) => setTimeout(r, 50));
    ha.release();
    await new Promise((r) => setTimeout(r, 100));
    expect([a!.state, b!.state, c!.state]).toEqual(['isolated', 'isolated', 'isolated']); // b holds it
    hb.release();
    await until(() => [a, b, c].every((x) => x!.state === 'closed'));
    expect(await c!.execute(ok)).toBe('ok');
  });

  it('a late starter reads an isolation, a forced opening and a disabling from Redis', async () => {
    prefix = testPrefix();
    const [a] = await fleet(1);
    const h = a!.isolate();
    await new Promise((r) => setTimeout(r, 50));
    expect((await fleet(1))[0]!.state).toBe('isolated');
    h.release();
    await a!.forceOpen();
    expect((await fleet(1))[0]!.state).toBe('forced-open');
    await a!.disable();
    const [late] = await fleet(1);
    expect(late!.state).toBe('disabled');
    await a!.reset();
    await until(() => late!.state === 'closed');
  });

  it('forceOpen() and disable() act on every instance until reset()', async () => {
    prefix = testPrefix();
    const [a, b] = await fleet(2);
    await a!.forceOpen();
    await until(() => b!.state === 'forced-open');
    await expect(b!.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    await b!.disable();
    await until(() => a!.state === 'disabled');
    // Disabled: failures count for nothing.
    for (let i = 0; i < 5; i++) await expect(a!.execute(fail)).rejects.toThrow('boom');
    expect(a!.state).toBe('disabled');
    await a!.reset();
    await until(() => b!.state === 'closed');
    expect(await admin.exists(`${prefix}{dep}:mode`)).toBe(0);
  });

  it('save and restore: toJSON() of an open breaker seeds a new instance, which tells the fleet', async () => {
    prefix = testPrefix();
    const [a] = await fleet(1);
    await open(a!);
    const saved = JSON.parse(JSON.stringify(a!));
    expect(saved).toMatchObject({ v: 1, state: 'open', openCount: 1 });
    await a!.reset();
    await a!.close();
    expect(await admin.exists(`${prefix}{dep}`)).toBe(0);
    const [restored] = await fleet(1, { initialState: saved });
    expect(restored!.state).toBe('open');
    await until(() => restored!.retryAfterMs > 50_000);
    // The restored break was written to Redis: a newcomer opens from it.
    await new Promise((r) => setTimeout(r, 50));
    const [late] = await fleet(1);
    expect(late!.state).toBe('open');
  });

  it('snapshot() and the registry option: kind, state, gauges, counters', async () => {
    prefix = testPrefix();
    const registry = createRegistry();
    const [a, b] = await fleet(2);
    const c = sharedCircuitBreaker({
      client: clients[0]!,
      name: 'dep2',
      prefix,
      registry,
    });
    breakers.push(c);
    await c.ready;
    expect(registry.get('sharedCircuitBreaker', 'dep2')).toBe(c);
    await open(a!);
    await until(() => b!.state === 'open');
    const snap = b!.snapshot();
    expect(snap).toMatchObject({ kind: 'sharedCircuitBreaker', name: 'dep', state: 'open' });
    expect(snap.gauges).toMatchObject({ fallback: 0, probes: 0 });
    expect(snap.gauges.retryAfterMs).toBeGreaterThan(50_000);
    expect(snap.counters).toMatchObject({ remoteChanges: 1, opens: 1, redisErrors: 0 });
    expect(a!.snapshot().counters).toMatchObject({ failures: 2, opens: 1, remoteChanges: 0 });
    expect(Object.keys(snap.gauges).sort()).toEqual(Object.keys(b!.descriptor.gauges).sort());
    expect(Object.keys(snap.counters).sort()).toEqual(Object.keys(b!.descriptor.counters).sort());
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });
});
