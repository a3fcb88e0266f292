import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { handle } from '../core/handle.js';
import { createFakeClock, fixedRandom, seededRandom } from '../testing/index.js';
import { adaptiveThrottle, ThrottledError } from './throttle.js';

const overloaded = () => Promise.reject(Object.assign(new Error('unavailable'), { status: 503 }));

describe('adaptiveThrottle', () => {
  it('defaults: k 2, a 2-minute window', async () => {
    const clock = createFakeClock();
    const t = adaptiveThrottle({ clock, random: fixedRandom(0.999_999) });
    for (let i = 0; i < 10; i++) await expect(t.execute(overloaded)).rejects.toThrow('unavailable');
    expect(t.stats).toMatchObject({ requests: 10, accepts: 0 });
    expect(t.probability).toBeCloseTo(10 / 11, 10);
    await clock.tick(119_000);
    expect(t.stats.requests).toBe(10);
    await clock.tick(1_000);
    expect(t.stats.requests).toBe(0); // forgotten after 120 s, not 120 min
  });

  it('rejects with probability max(0, (requests − k·accepts)/(requests + 1)) (reference model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.boolean(), { maxLength: 60 }),
        fc.double({ min: 1, max: 3, noNaN: true }),
        fc.integer({ min: 1, max: 1000 }),
        async (outcomes, k, seed) => {
          const random = seededRandom(seed);
          const draws = seededRandom(seed);
          const t = adaptiveThrottle({ k, random, clock: createFakeClock() });
          let requests = 0;
          let accepts = 0;
          for (const ok of outcomes) {
            // p from the requests and accepts counted so far (local rejections included)
            const p = Math.max(0, (requests - k * accepts) / (requests + 1));
            const expectRejected = p > 0 && draws() < p;
            const r = await t
              .execute(() => (ok ? 1 : overloaded()))
              .then(
                () => 'ok',
                (e: unknown) => (e instanceof ThrottledError ? 'throttled' : 'failed'),
              );
            if (expectRejected !== (r === 'throttled')) return false;
            requests++;
            if (r === 'ok') accepts++;
          }
          const st = t.stats;
          return st.requests === requests && st.accepts === accepts;
        },
      ),
      { numRuns: 100 },
    );
  });

  it('counts anything but transient failures as accepts by default; handle overrides it', async () => {
    const t = adaptiveThrottle({ random: fixedRandom(0.5) });
    await expect(t.execute(() => Promise.reject(new Error('bad input')))).rejects.toThrow();
    await t.execute(() => ({ status: 429, headers: {} }));
    expect(t.stats).toMatchObject({ requests: 2, accepts: 1 });
    const u = adaptiveThrottle({ handle: handle.all(), random: fixedRandom(0.99) });
    await expect(u.execute(() => Promise.reject(new Error('bad input')))).rejects.toThrow();
    expect(u.stats.accepts).toBe(0);
  });

  it('honours minRequests and maxRejectionProbability, and emits reject events', async () => {
    const t = adaptiveThrottle({ minSamples: 5, maxRejectionRatio: 0.5, random: fixedRandom(0.49) });
    const events: unknown[] = [];
    t.onEvent((e) => events.push(e));
    for (let i = 0; i < 4; i++) await expect(t.execute(overloaded)).rejects.toThrow('unavailable');
    expect(t.probability).toBe(0); // 4 requests < minRequests
    await expect(t.execute(overloaded)).rejects.toThrow('unavailable'); // sent: p was 0
    // 5 requests reach minRequests: p = 5/6, capped at 0.5; the draw 0.49 < 0.5 rejects the next
    expect(t.probability).toBe(0.5);
    await expect(t.execute(() => 1)).rejects.toBeInstanceOf(ThrottledError);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'adaptiveThrottle', event: 'reject', probability: 0.5 });
    expect(t.stats.rejected).toBe(1);
  });

  it('does not throttle a burst of healthy concurrent calls (in-flight calls are not counted)', async () => {
    const t = adaptiveThrottle({ random: fixedRandom(0) });
    const all = await Promise.allSettled(
      Array.from({ length: 100 }, () => t.execute(() => Promise.resolve(1))),
    );
    expect(all.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(t.stats).toMatchObject({ requests: 100, accepts: 100, probability: 0 });
  });

  it('counts a caller-aborted call as neither a request nor an accept', async () => {
    const t = adaptiveThrottle();
    const ac = new AbortController();
    const p = t.execute(
      () => new Promise((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason))),
      { signal: ac.signal },
    );
    ac.abort();
    await expect(p).rejects.toThrow();
    expect(t.stats.requests).toBe(0);
  });

  it('validates options', () => {
    expect(() => adaptiveThrottle({ k: 0 })).toThrow(/adaptiveThrottle.k/);
    expect(() => adaptiveThrottle({ windowMs: -1 })).toThrow(ConfigError);
    expect(() => adaptiveThrottle({ handle: (() => true) as never })).toThrow(/adaptiveThrottle.handle/);
  });
});
