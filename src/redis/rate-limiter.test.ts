import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../testing/index.js';
import { keySlot, type RedisRateLimiterEvent, redisRateLimiter } from './rate-limiter.js';

/** A client whose EVALSHA replies are resolved or rejected by the test. */
function fakeClient() {
  const calls: { args: unknown[]; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  return {
    calls,
    evalsha: (...args: unknown[]) =>
      new Promise((resolve, reject) => {
        calls.push({ args, resolve, reject });
      }),
    eval: () => Promise.reject(new Error('not used')),
  };
}
/** The lone-fixed-window script's reply for `n` allowed calls (code, remaining, reset µs). */
const allowed = (n: number) => Array.from({ length: n }, () => [1, 9, 100_000]).flat();
const tick = () => new Promise<void>((r) => process.nextTick(r));

describe('redisRateLimiter (fake client)', () => {
  it('calls of one tick share one EVALSHA, in arrival order', async () => {
    const client = fakeClient();
    const l = redisRateLimiter({
      client,
      limits: [{ algorithm: 'fixed-window', limit: 10, windowMs: 1_000 }],
    });
    const ds = [l.consume('a'), l.consume('b', 2), l.consume('a')];
    await tick();
    expect(client.calls).toHaveLength(1);
    // sha, numkeys, 3 keys, now ('' = the server's), 3 costs
    expect(client.calls[0]!.args.flat().slice(1)).toEqual([
      3,
      'bulwark:rl:{k:a}:0e',
      'bulwark:rl:{k:b}:0e',
      'bulwark:rl:{k:a}:0e',
      '',
      '1',
      '2',
      '1',
    ]);
    // A lone fixed window's script answers times in integer µs when exact, else in ms strings.
    client.calls[0]!.resolve([1, 9, 100_000, 0, 7, 250_500, 1, 8, '100.0000005']);
    const [a, b, c] = await Promise.all(ds);
    expect(a).toMatchObject({ allowed: true, remaining: 9, resetMs: 100 });
    expect(b).toMatchObject({ allowed: false, remaining: 7, retryAfterMs: 250.5 });
    expect(b!.resetMs).toBe(250.5);
    expect(c).toMatchObject({ allowed: true, remaining: 8, resetMs: 100.0000005 });
    expect(l.stats).toEqual({ redis: 3, fallback: 0, failing: false });
  });

  it('splits a tick into maxBatch-sized scripts', async () => {
    const client = fakeClient();
    const l = redisRateLimiter({
      client,
      maxBatch: 2,
      limits: [{ algorithm: 'fixed-window', limit: 10, windowMs: 1_000 }],
    });
    const ds = Array.from({ length: 5 }, (_, i) => l.consume(`k${i}`));
    await tick();
    expect(client.calls.map((c) => c.args[1])).toEqual([2, 2, 1]);
    client.calls[0]!.resolve(allowed(2));
    client.calls[1]!.resolve(allowed(2));
    client.calls[2]!.resolve(allowed(1));
    expect((await Promise.all(ds)).every((d) => d.allowed)).toBe(true);
  });

  it('a timeout decides the batch by the insurance at exactly timeoutMs; then calls are decided at once and one probe per interval tries Redis', async () => {
    const clock = createFakeClock();
    const client = fakeClient();
    const events: RedisRateLimiterEvent['event'][] = [];
    const l = redisRateLimiter({
      client,
      clock,
      timeoutMs: 50,
      probeIntervalMs: 200,
      limits: [{ algorithm: 'fixed-window', limit: 2, windowMs: 60_000 }],
      insurance: { share: 0.5 },
    });
    l.onEvent((e) => events.push(e.event));
    let settled = false;
    const first = l.consume('u').then((d) => {
      settled = true;
      return d;
    });
    await tick();
    await clock.tick(49);
    expect(settled).toBe(false);
    await clock.tick(1);
    expect((await first).allowed).toBe(true); // insurance: 1 per minute for this instance
    expect(events).toEqual(['fallback']);
    // While failing: decided at once, no Redis call.
    expect((await l.consume('u')).allowed).toBe(false);
    expect(client.calls).toHaveLength(1);
    // The late reply of the timed-out batch changes nothing.
    client.calls[0]!.resolve(allowed(1));
    await tick();
    expect(l.stats.failing).toBe(true);
    // After the probe interval, one call goes to Redis; the others meanwhile are decided at once.
    await clock.tick(200);
    const probe = l.consume('v');
    expect(await l.consume('w')).toMatchObject({ allowed: true });
    expect(client.calls).toHaveLength(2);
    client.calls[1]!.resolve(allowed(1));
    expect((await probe).allowed).toBe(true);
    expect(events).toEqual(['fallback', 'recovered']);
    expect(l.stats).toEqual({ redis: 1, fallback: 3, failing: false });
    // Back to Redis.
    const next = l.consume('x');
    await tick();
    expect(client.calls).toHaveLength(3);
    client.calls[2]!.resolve(allowed(1));
    await next;
    expect(l.stats.redis).toBe(2);
  });

  it('an error fails the batch over at once; a failed probe waits another interval', async () => {
    const clock = createFakeClock();
    const client = fakeClient();
    const l = redisRateLimiter({
      client,
      clock,
      probeIntervalMs: 100,
      limits: [{ algorithm: 'fixed-window', limit: 5, windowMs: 60_000 }],
      onRedisError: 'deny',
    });
    const d = l.consume('a');
    await tick();
    client.calls[0]!.reject(new Error('ECONNREFUSED'));
    expect((await d).allowed).toBe(false);
    await clock.tick(100);
    const probe = l.consume('a');
    client.calls[1]!.reject(new Error('ECONNREFUSED'));
    expect((await probe).allowed).toBe(false);
    await clock.tick(99);
    await l.consume('a');
    expect(client.calls).toHaveLength(2);
    await clock.tick(1);
    void l.consume('a');
    expect(client.calls).toHaveLength(3);
  });

  it('a NOSCRIPT answer after the batch timed out does not send the script (nothing charged twice)', async () => {
    const clock = createFakeClock();
    const client = fakeClient();
    let evals = 0;
    client.eval = () => {
      evals++;
      return Promise.reject(new Error('not used'));
    };
    const l = redisRateLimiter({
      client,
      clock,
      timeoutMs: 20,
      limits: [{ algorithm: 'gcra', rate: 1, periodMs: 1_000 }],
    });
    const d = l.consume('a');
    await tick();
    await clock.tick(20);
    await d;
    client.calls[0]!.reject(new Error('NOSCRIPT No matching script'));
    await tick();
    await tick();
    expect(evals).toBe(0);
  });

  it('a malformed reply is a failure, never a rejection', async () => {
    const client = fakeClient();
    const l = redisRateLimiter({ client, limits: [{ algorithm: 'gcra', rate: 1, periodMs: 1_000 }] });
    const d = l.consume('a');
    await tick();
    client.calls[0]!.resolve(['nonsense']);
    expect((await d).allowed).toBe(true);
    expect(l.stats.fallback).toBe(1);
  });
});

describe('keySlot (Redis Cluster hash slots)', () => {
  it('matches the CRC16 of the Redis Cluster spec and honours hash tags', () => {
    expect(keySlot('123456789')).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).toBe(keySlot('foo{}{bar}'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });
});
