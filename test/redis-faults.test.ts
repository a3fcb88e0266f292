/**
 * Redis faults, on a private redis-server (not the shared one at 6379): the server killed and
 * restarted mid-run, and paused with SIGSTOP/SIGCONT. Callers keep getting decisions (from the
 * insurance limiter) within the configured timeout, nothing rejects unhandled, and Redis is used
 * again as soon as it answers. Fails under CI=true when redis-server cannot be started.
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisRateLimiterEvent, redisRateLimiter, sharedCircuitBreaker } from '../src/redis/index.js';
import { PrivateRedis } from './support/redis-server.js';

const hasServer = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasServer && process.env.CI !== 'true')
  console.warn('Redis fault tests SKIPPED: no redis-server binary');
const describeFaults = hasServer || process.env.CI === 'true' ? describe : describe.skip;

const immediate = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describeFaults('redisRateLimiter under Redis faults (private redis-server)', () => {
  let server: PrivateRedis;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeAll(async () => {
    server = await PrivateRedis.start();
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.kill();
  });

  it('restarted and paused mid-run: decisions within the timeout from the insurance, Redis used again after it returns', async () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port, retryStrategy: () => 25 });
    client.on('error', () => {});
    const TIMEOUT = 100;
    const limiter = redisRateLimiter({
      client,
      prefix: 'faults:',
      limits: [{ algorithm: 'fixed-window', limit: 1_000_000, windowMs: 60_000 }],
      timeoutMs: TIMEOUT,
      probeIntervalMs: 50,
      insurance: { share: 0.25 },
    });
    const events: RedisRateLimiterEvent['event'][] = [];
    limiter.onEvent((e) => events.push(e.event));

    let phase = 'up';
    let stop = false;
    const worst = new Map<string, number>();
    const calls = new Map<string, number>();
    const loops = Array.from({ length: 8 }, async (_, i) => {
      while (!stop) {
        const t0 = performance.now();
        const d = await limiter.consume(`k${i}`);
        const ms = performance.now() - t0;
        expect(d.allowed).toBe(true);
        worst.set(phase, Math.max(worst.get(phase) ?? 0, ms));
        calls.set(phase, (calls.get(phase) ?? 0) + 1);
        await immediate(); // decisions made at once must not starve the timers
      }
    });
    const snap = () => ({ ...limiter.stats });

    await sleep(300);
    const s0 = snap();
    expect(s0.redis).toBeGreaterThan(0);
    expect(s0.fallback).toBe(0);

    // 1. The server dies (SIGKILL) and stays down for a while.
    await server.kill();
    phase = 'down';
    await sleep(600);
    const s1 = snap();
    expect(s1.failing).toBe(true);
    expect(s1.fallback - s0.fallback).toBeGreaterThan(20);

    // 2. It comes back (empty: the script cache is gone too, NOSCRIPT is recovered).
    await server.start();
    phase = 'restarted';
    await until('Redis used again after the restart', () => !limiter.stats.failing);
    const s2 = snap();
    await sleep(300);
    expect(snap().redis - s2.redis).toBeGreaterThan(20);

    // 3. The server is paused (SIGSTOP): connections stay open, nothing answers.
    server.pause();
    phase = 'paused';
    await sleep(600);
    const s3 = snap();
    expect(s3.failing).toBe(true);
    expect(s3.fallback - s2.fallback).toBeGreaterThan(20);

    // 4. Resumed (SIGCONT).
    server.resume();
    phase = 'resumed';
    await until('Redis used again after SIGCONT', () => !limiter.stats.failing);
    const s4 = snap();
    await sleep(300);
    expect(snap().redis - s4.redis).toBeGreaterThan(20);

    stop = true;
    await Promise.all(loops);
    client.disconnect();

    expect(events).toEqual(['fallback', 'recovered', 'fallback', 'recovered']);
    // Every decision came within the timeout (plus event-loop slack on a busy machine): the
    // insurance decides at once while Redis fails, and a call waits at most `timeoutMs`.
    console.log(
      'worst decision latency by phase (ms):',
      Object.fromEntries(worst),
      'calls:',
      Object.fromEntries(calls),
    );
    // The slack covers event-loop stalls of a loaded machine (CI runs many test files at once).
    for (const [p, ms] of worst) expect(ms, `worst latency while ${p}`).toBeLessThan(TIMEOUT + 1_500);
    expect(unhandled).toEqual([]);
  }, 60_000);

  it('a shared circuit breaker keeps working on its local state while Redis is paused, and shares again after', async () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port, retryStrategy: () => 25 });
    const sub = new Redis({ host: '127.0.0.1', port: server.port, retryStrategy: () => 25 });
    client.on('error', () => {});
    sub.on('error', () => {});
    const breaker = sharedCircuitBreaker({
      name: 'faults',
      client,
      subscriber: sub,
      prefix: 'faults:cb:',
      timeoutMs: 100,
      breaker: { kind: 'consecutive', threshold: 2 },
      halfOpenAfterMs: 60_000,
    });
    expect(await breaker.execute(() => 'ok')).toBe('ok');
    server.pause();
    const t0 = performance.now();
    // Still serves (local breaker), and opens locally after two failures.
    expect(await breaker.execute(() => 'ok')).toBe('ok');
    const fail = () => Promise.reject(new Error('down'));
    await expect(breaker.execute(fail)).rejects.toThrow('down');
    await expect(breaker.execute(fail)).rejects.toThrow('down');
    await expect(breaker.execute(() => 'ok')).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(5_000);
    server.resume();
    await breaker.close();
    client.disconnect();
    sub.disconnect();
    expect(unhandled).toEqual([]);
  }, 30_000);
});
