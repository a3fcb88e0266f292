import { describe, expect, it } from 'vitest';
import { createWindow } from './breaker-window.js';
import { ConfigError } from './errors.js';

/** Records outcomes given as a string: `F` failure, `S` success, `f`/`s` the slow variants. */
function feed(w: ReturnType<typeof createWindow>, outcomes: string, now = 0): (string | null)[] {
  return [...outcomes].map((c) => w.record(c === 'F' || c === 'f', c === 'f' || c === 's', now));
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('createWindow: consecutive', () => {
  it('is the default, with a threshold of 5', () => {
    const w = createWindow(undefined);
    expect(w.kind).toBe('consecutive');
    expect(w.slowMs).toBe(Number.POSITIVE_INFINITY);
    expect(feed(w, 'FFFF')).toEqual([null, null, null, null]);
    expect(w.record(true, false, 0)).toBe('5 consecutive failures');
  });

  it('a success resets the streak; figures report the streak', () => {
    const w = createWindow({ kind: 'consecutive', threshold: 3 });
    feed(w, 'FF');
    expect(w.figures(0)).toEqual({ calls: 2, failures: 2, slow: 0 });
    feed(w, 'S');
    expect(w.figures(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
    expect(feed(w, 'FFF')).toEqual([null, null, '3 consecutive failures']);
  });

  it('saves and restores the streak, and reset() forgets it', () => {
    const w = createWindow({ kind: 'consecutive', threshold: 3 });
    feed(w, 'FF');
    const saved = JSON.parse(JSON.stringify(w.save(0)));
    const w2 = createWindow({ kind: 'consecutive', threshold: 3 });
    w2.restore(saved, 0);
    expect(w2.figures(0)).toEqual({ calls: 2, failures: 2, slow: 0 });
    expect(w2.record(true, false, 0)).toBe('3 consecutive failures');
    w2.reset();
    expect(w2.figures(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });

  it('ignores a malformed saved streak', () => {
    const w = createWindow({ kind: 'consecutive', threshold: 3 });
    w.restore({ streak: -1 }, 0);
    w.restore(null, 0);
    w.restore({ streak: 'x' }, 0);
    expect(w.figures(0).failures).toBe(0);
  });
});

describe('createWindow: count', () => {
  it('makes no decision before minimumCalls, then decides on every call', () => {
    const w = createWindow({ kind: 'count', size: 10, minimumCalls: 4, failureRateThreshold: 0.5 });
    expect(feed(w, 'FFF')).toEqual([null, null, null]);
    // The fourth call is a success, but 3 of 4 failed.
    expect(w.record(false, false, 0)).toBe('failure rate 75% >= 50% over 4 calls');
  });

  it('minimumCalls defaults to size and failureRateThreshold to 0.5 (inclusive)', () => {
    const w = createWindow({ kind: 'count', size: 4 });
    expect(feed(w, 'FFS')).toEqual([null, null, null]);
    expect(w.record(false, false, 0)).toBe('failure rate 50% >= 50% over 4 calls');
  });

  it('keeps only the last `size` calls (the ring wraps around)', () => {
    const w = createWindow({ kind: 'count', size: 3, failureRateThreshold: 0.6 });
    expect(feed(w, 'FSS')).toEqual([null, null, null]);
    expect(w.figures(0)).toEqual({ calls: 3, failures: 1, slow: 0 });
    // The failure falls out of the window.
    expect(w.record(false, false, 0)).toBeNull();
    expect(w.figures(0)).toEqual({ calls: 3, failures: 0, slow: 0 });
    expect(w.record(true, false, 0)).toBeNull(); // S S F
    expect(w.record(true, false, 0)).toBe('failure rate 66.7% >= 60% over 3 calls'); // S F F
    // Several full turns of the ring.
    feed(w, 'SSSSSSS');
    expect(w.figures(0)).toEqual({ calls: 3, failures: 0, slow: 0 });
    expect(feed(w, 'FSF')).toEqual([null, null, 'failure rate 66.7% >= 60% over 3 calls']);
  });

  it('counts slow calls (successes and failures) against slowCall.rateThreshold', () => {
    const w = createWindow({
      kind: 'count',
      size: 4,
      minimumCalls: 2,
      failureRateThreshold: 1,
      slowCall: { durationMs: 100, rateThreshold: 0.5 },
    });
    expect(w.slowMs).toBe(100);
    expect(w.record(false, true, 0)).toBeNull(); // below minimumCalls
    expect(w.record(false, false, 0)).toBe('slow-call rate 50% >= 50% over 2 calls');
    expect(w.figures(0)).toEqual({ calls: 2, failures: 0, slow: 1 });
  });

  it('slowCall.rateThreshold defaults to 1', () => {
    const w = createWindow({ kind: 'count', size: 2, failureRateThreshold: 1, slowCall: { durationMs: 5 } });
    expect(feed(w, 'ss')).toEqual([null, 'slow-call rate 100% >= 100% over 2 calls']);
  });

  it('a failure that is also slow counts in both rates; the failure reason wins', () => {
    const w = createWindow({
      kind: 'count',
      size: 2,
      failureRateThreshold: 0.5,
      slowCall: { durationMs: 5, rateThreshold: 0.5 },
    });
    expect(feed(w, 'Sf')).toEqual([null, 'failure rate 50% >= 50% over 2 calls']);
    expect(w.figures(0)).toEqual({ calls: 2, failures: 1, slow: 1 });
  });

  it('saves oldest first and restores, keeping only the last `size` calls', () => {
    const w = createWindow({ kind: 'count', size: 4, slowCall: { durationMs: 1, rateThreshold: 1 } });
    feed(w, 'FSsSf'); // ring has wrapped: s S f... oldest first is S s S f
    const saved = JSON.parse(JSON.stringify(w.save(0))) as { calls: number[] };
    expect(saved.calls).toEqual([0, 2, 0, 3]);
    const same = createWindow({ kind: 'count', size: 4, slowCall: { durationMs: 1, rateThreshold: 1 } });
    same.restore(saved, 0);
    expect(same.figures(0)).toEqual({ calls: 4, failures: 1, slow: 2 });
    const smaller = createWindow({ kind: 'count', size: 2, slowCall: { durationMs: 1, rateThreshold: 1 } });
    smaller.restore(saved, 0);
    expect(smaller.figures(0)).toEqual({ calls: 2, failures: 1, slow: 1 });
    // The restored ring keeps working: the oldest restored call leaves first.
    smaller.record(false, false, 0);
    expect(smaller.figures(0)).toEqual({ calls: 2, failures: 1, slow: 1 });
    smaller.record(false, false, 0);
    expect(smaller.figures(0)).toEqual({ calls: 2, failures: 0, slow: 0 });
  });

  it('ignores a malformed saved window', () => {
    const w = createWindow({ kind: 'count', size: 4 });
    feed(w, 'F');
    w.restore({ calls: 'x' }, 0);
    w.restore(null, 0);
    expect(w.figures(0)).toEqual({ calls: 1, failures: 1, slow: 0 });
  });
});

describe('createWindow: time', () => {
  const opts = { kind: 'time', windowMs: 1000, buckets: 4, minimumThroughput: 3, failureRateThreshold: 0.5 };

  it('makes no decision below minimumThroughput', () => {
    const w = createWindow(opts);
    expect(feed(w, 'FF', 0)).toEqual([null, null]);
    expect(w.record(false, false, 10)).toBe('failure rate 66.7% >= 50% over 3 calls');
  });

  it('drops outcomes once their bucket leaves the window; buckets roll off whole', () => {
    const w = createWindow(opts); // buckets of 250 ms
    w.record(true, false, 0);
    w.record(true, false, 249); // same bucket as t=0
    w.record(false, false, 250); // next bucket
    expect(w.figures(999)).toEqual({ calls: 3, failures: 2, slow: 0 });
    // At 1000 the first bucket (0..249) leaves whole, although t=249 is only 751 ms old.
    expect(w.figures(1000)).toEqual({ calls: 1, failures: 0, slow: 0 });
    expect(w.figures(1249)).toEqual({ calls: 1, failures: 0, slow: 0 });
    expect(w.figures(1250)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });

  it('a jump longer than the window clears every bucket', () => {
    const w = createWindow(opts);
    for (let t = 0; t < 1000; t += 100) w.record(t % 200 === 0, false, t);
    expect(w.figures(999).calls).toBe(10);
    expect(w.figures(123_456)).toEqual({ calls: 0, failures: 0, slow: 0 });
    expect(w.record(true, false, 123_456)).toBeNull();
    expect(w.figures(123_456)).toEqual({ calls: 1, failures: 1, slow: 0 });
  });

  it('decides over the calls still in the window only', () => {
    const w = createWindow(opts);
    feed(w, 'FF', 0);
    // The two failures have left the window: one success is below minimumThroughput.
    expect(w.record(false, false, 1000)).toBeNull();
    expect(feed(w, 'SS', 1001)).toEqual([null, null]);
  });

  it('supports windows that do not divide evenly into buckets', () => {
    const w = createWindow({ ...opts, windowMs: 1000, buckets: 3 }); // 333.33 ms buckets
    w.record(true, false, 333); // bucket 0
    w.record(true, false, 334); // bucket 1
    expect(w.figures(999).calls).toBe(2);
    expect(w.figures(1000).calls).toBe(1); // bucket 3 begins at 1000: bucket 0 leaves
    expect(w.figures(1333).calls).toBe(1);
    expect(w.figures(1334).calls).toBe(0);
  });

  it('counts slow calls against slowCall.rateThreshold', () => {
    const w = createWindow({
      ...opts,
      failureRateThreshold: 1,
      slowCall: { durationMs: 50, rateThreshold: 0.6 },
    });
    expect(w.slowMs).toBe(50);
    expect(feed(w, 'sSs', 0)).toEqual([null, null, 'slow-call rate 66.7% >= 60% over 3 calls']);
    expect(w.figures(0)).toEqual({ calls: 3, failures: 0, slow: 2 });
  });

  it('uses the documented defaults: 60 s, 10 buckets, 20 calls, 50%', () => {
    const w = createWindow({ kind: 'time' });
    for (let i = 0; i < 19; i++) expect(w.record(true, false, i)).toBeNull();
    expect(w.record(false, false, 19)).toBe('failure rate 95% >= 50% over 20 calls');
    expect(w.figures(59_999).calls).toBe(20);
    expect(w.figures(60_000).calls).toBe(0);
  });

  it('saves buckets by age and restores them aged by the time spent saved', () => {
    const w = createWindow(opts);
    w.record(true, false, 0); // bucket 0
    w.record(false, true, 300); // bucket 1
    w.record(true, true, 600); // bucket 2
    const saved = JSON.parse(JSON.stringify(w.save(800))) as { bucketMs: number; buckets: number[][] };
    expect(saved).toEqual({
      bucketMs: 250,
      buckets: [
        [1, 1, 1, 1],
        [2, 1, 0, 1],
        [3, 1, 1, 0],
      ],
    });
    // Restored on a clock with another origin, right away.
    const now = createWindow(opts);
    now.restore({ ...saved, ageMs: 0 }, 50_000);
    expect(now.figures(50_000)).toEqual({ calls: 3, failures: 2, slow: 2 });
    // The oldest saved bucket was 3 buckets old: it leaves with the next bucket boundary.
    expect(now.figures(50_250)).toEqual({ calls: 2, failures: 1, slow: 2 });
    // Restored after 500 ms (two buckets): only the newest saved bucket is still in the window.
    const later = createWindow(opts);
    later.restore({ ...saved, ageMs: 500 }, 0);
    expect(later.figures(0)).toEqual({ calls: 1, failures: 1, slow: 1 });
    // Restored after a whole window: nothing left.
    const stale = createWindow(opts);
    stale.restore({ ...saved, ageMs: 1000 }, 0);
    expect(stale.figures(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });

  it('restored counts decide together with new ones', () => {
    const w = createWindow(opts);
    feed(w, 'FF', 0);
    const w2 = createWindow(opts);
    w2.restore({ ...(w.save(0) as object), ageMs: 0 }, 7);
    expect(w2.record(false, false, 7)).toBe('failure rate 66.7% >= 50% over 3 calls');
  });

  it('ignores a saved window of another bucket size or a malformed one', () => {
    const w = createWindow(opts);
    w.restore({ bucketMs: 100, buckets: [[0, 5, 5, 0]] }, 0);
    w.restore({ bucketMs: 250, buckets: 'x' }, 0);
    w.restore({ bucketMs: 250, buckets: [[0, 1], 'x', [0, 'a', 1, 1]] }, 0);
    expect(w.figures(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });

  it('ignores saved buckets with impossible ages or counts and a non-finite age', () => {
    const w = createWindow(opts);
    w.restore(
      {
        bucketMs: 250,
        buckets: [
          [0.5, 1, 1, 0],
          [-1, 1, 1, 0],
          [0, -3, 0, 0],
          [0, Number.NaN, 0, 0],
        ],
        ageMs: 0,
      },
      0,
    );
    expect(w.figures(0)).toEqual({ calls: 0, failures: 0, slow: 0 });
    w.restore({ bucketMs: 250, buckets: [[0, 2, 1, 0]], ageMs: Number.NaN }, 0);
    expect(w.figures(0)).toEqual({ calls: 2, failures: 1, slow: 0 });
    // Nothing corrupt lingers: the bucket rolls off as usual.
    expect(w.figures(1000)).toEqual({ calls: 0, failures: 0, slow: 0 });
  });
});

describe('createWindow: validation', () => {
  it.each([
    [
      { kind: 'consecutive', threshold: 0 },
      'circuitBreaker.breaker.threshold must be an integer >= 1 (got 0)',
    ],
    [
      { kind: 'consecutive', threshold: 1.5 },
      'circuitBreaker.breaker.threshold must be an integer >= 1 (got 1.5)',
    ],
    [
      { kind: 'consecutive', slowCall: { durationMs: 10 } },
      'circuitBreaker.breaker.slowCall is not an option of circuitBreaker.breaker; the known options are kind, threshold',
    ],
    [{ kind: 'count', size: 0 }, 'circuitBreaker.breaker.size must be an integer >= 1 (got 0)'],
    [
      { kind: 'count', size: 5, minimumCalls: 6 },
      'circuitBreaker.breaker.minimumCalls must be at most size (5) (got 6)',
    ],
    [
      { kind: 'count', minimumCalls: 0 },
      'circuitBreaker.breaker.minimumCalls must be an integer >= 1 (got 0)',
    ],
    [
      { kind: 'count', failureRateThreshold: 0 },
      'circuitBreaker.breaker.failureRateThreshold must be a number in (0, 1] (got 0)',
    ],
    [
      { kind: 'count', failureRateThreshold: 1.5 },
      'circuitBreaker.breaker.failureRateThreshold must be a number in (0, 1] (got 1.5)',
    ],
    [
      { kind: 'count', slowCall: {} },
      'circuitBreaker.breaker.slowCall.durationMs must be a number of ms > 0 (got undefined)',
    ],
    [
      { kind: 'count', slowCall: { durationMs: -1 } },
      'circuitBreaker.breaker.slowCall.durationMs must be a finite number > 0 (got -1)',
    ],
    [
      { kind: 'count', slowCall: { durationMs: 10, rateThreshold: 2 } },
      'circuitBreaker.breaker.slowCall.rateThreshold must be a number in (0, 1] (got 2)',
    ],
    [
      { kind: 'count', slowCall: { durationMs: 10, rate: 0.5 } },
      'circuitBreaker.breaker.slowCall.rate is not an option of circuitBreaker.breaker.slowCall; the known options are durationMs, rateThreshold',
    ],
    [{ kind: 'count', slowCall: 100 }, 'circuitBreaker.breaker.slowCall must be an options object (got 100)'],
    [
      { kind: 'count', windowMs: 100 },
      'circuitBreaker.breaker.windowMs is not an option of circuitBreaker.breaker; the known options are kind, size, minimumCalls, failureRateThreshold, slowCall',
    ],
    [{ kind: 'time', windowMs: 0 }, 'circuitBreaker.breaker.windowMs must be a finite number >= 1 (got 0)'],
    [
      { kind: 'time', windowMs: Number.POSITIVE_INFINITY },
      'circuitBreaker.breaker.windowMs must be a finite number >= 1 (got Infinity)',
    ],
    [{ kind: 'time', buckets: 0 }, 'circuitBreaker.breaker.buckets must be an integer >= 1 (got 0)'],
    [
      { kind: 'time', minimumThroughput: 0 },
      'circuitBreaker.breaker.minimumThroughput must be an integer >= 1 (got 0)',
    ],
    [
      { kind: 'time', failureRateThreshold: '0.5' },
      'circuitBreaker.breaker.failureRateThreshold must be a number in (0, 1] (got "0.5")',
    ],
    [
      { kind: 'time', size: 10 },
      'circuitBreaker.breaker.size is not an option of circuitBreaker.breaker; the known options are kind, windowMs, buckets, minimumThroughput, failureRateThreshold, slowCall',
    ],
    [
      { kind: 'time', slowCall: { durationMs: 10, rateThreshold: 0 } },
      'circuitBreaker.breaker.slowCall.rateThreshold must be a number in (0, 1] (got 0)',
    ],
    [
      { kind: 'sliding' },
      "circuitBreaker.breaker.kind must be one of 'consecutive', 'count', 'time' (got \"sliding\")",
    ],
    [{}, "circuitBreaker.breaker.kind must be one of 'consecutive', 'count', 'time' (got undefined)"],
    ['consecutive', 'circuitBreaker.breaker must be an options object (got "consecutive")'],
  ])('rejects %j', (raw, message) => {
    const error = configError(() => createWindow(raw));
    expect(error.message).toBe(message);
    expect(error.code).toBe('INVALID_OPTION');
  });

  it('names the option in ConfigError.option', () => {
    expect(configError(() => createWindow({ kind: 'time', buckets: -2 })).option).toBe(
      'circuitBreaker.breaker.buckets',
    );
  });
});
