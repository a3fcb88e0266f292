import { describe, expect, it } from 'vitest';
import { configError } from '../../../test/support/breaker-harness.js';
import { windowSchema } from './options.js';
import { createWindow as build } from './windows.js';

/** Validates like `circuitBreaker({ breaker })` and makes the window. */
const createWindow = (raw: unknown) =>
  build(windowSchema.parse(raw ?? { kind: 'consecutive' }, 'circuitBreaker.breaker'));

/** Records outcomes given as a string: `F` failure, `S` success, `f`/`s` the slow variants. */
function feed(w: ReturnType<typeof createWindow>, outcomes: string, now = 0): (string | null)[] {
  return [...outcomes].map((c) => w.record(c === 'F' || c === 'f', c === 'f' || c === 's', now));
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
  it('makes no decision before minSamples, then decides on every call', () => {
    const w = createWindow({ kind: 'count', size: 10, minSamples: 4, failureRatio: 0.5 });
    expect(feed(w, 'FFF')).toEqual([null, null, null]);
    // The fourth call is a success, but 3 of 4 failed.
    expect(w.record(false, false, 0)).toBe('failure rate 75% >= 50% over 4 calls');
  });

  it('minSamples defaults to size and failureRatio to 0.5 (inclusive)', () => {
    const w = createWindow({ kind: 'count', size: 4 });
    expect(feed(w, 'FFS')).toEqual([null, null, null]);
    expect(w.record(false, false, 0)).toBe('failure rate 50% >= 50% over 4 calls');
  });

  it('keeps only the last `size` calls (the ring wraps around)', () => {
    const w = createWindow({ kind: 'count', size: 3, failureRatio: 0.6 });
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

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('counts slow calls (successes and failures) against slowCallRatio', () => {
    const w = createWindow({
      kind: 'count',
      size: 4,
      minSamples: 2,
      failureRatio: 1,
      slowCallMs: 100,
      slowCallRatio: 0.5,
    });
    expect(w.slowMs).toBe(100);
    expect(w.record(false, true, 0)).toBeNull(); // below minSamples
    expect(w.record(false, false, 0)).toBe('slow-call rate 50% >= 50% over 2 calls');
    expect(w.figures(0)).toEqual({ calls: 2, failures: 0, slow: 1 });
  });

  it('slowCallRatio defaults to 1', () => {
    const w = createWindow({ kind: 'count', size: 2, failureRatio: 1, slowCallMs: 5 });
    expect(feed(w, 'ss')).toEqual([null, 'slow-call rate 100% >= 100% over 2 calls']);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('a failure that is also slow counts in both rates; the failure reason wins', () => {
    const w = createWindow({
      kind: 'count',
      size: 2,
      failureRatio: 0.5,
      slowCallMs: 5,
      slowCallRatio: 0.5,
    });
    expect(feed(w, 'Sf')).toEqual([null, 'failure rate 50% >= 50% over 2 calls']);
    expect(w.figures(0)).toEqual({ calls: 2, failures: 1, slow: 1 });
  });

  it('saves oldest first and restores, keeping only the last `size` calls', () => {
    const w = createWindow({ kind: 'count', size: 4, slowCallMs: 1, slowCallRatio: 1 });
    feed(w, 'FSsSf'); // ring has wrapped: s S f... oldest first is S s S f
    const saved = JSON.parse(JSON.stringify(w.save(0))) as { calls: number[] };
    expect(saved.calls).toEqual([0, 2, 0, 3]);
    const same = createWindow({ kind: 'count', size: 4, slowCallMs: 1, slowCallRatio: 1 });
    same.restore(saved, 0);
    expect(same.figures(0)).toEqual({ calls: 4, failures: 1, slow: 2 });
    const smaller = createWindow({ kind: 'count', size: 2, slowCallMs: 1, slowCallRatio: 1 });
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
  const opts = { kind: 'time', windowMs: 1000, buckets: 4, minSamples: 3, failureRatio: 0.5 };

  it('makes no decision below minSamples', () => {
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
    // The two failures have left the window: one success is below minSamples.
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

  it('counts slow calls against slowCallRatio', () => {
    const w = createWindow({
      ...opts,
      failureRatio: 1,
      slowCallMs: 50,
      slowCallRatio: 0.6,
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
  const B = 'circuitBreaker.breaker';
  it.each([
    [{ kind: 'consecutive', threshold: 0 }, `${B}.threshold`, 'INVALID_OPTION'],
    [{ kind: 'consecutive', threshold: 1.5 }, `${B}.threshold`, 'INVALID_OPTION'],
    [{ kind: 'consecutive', slowCallMs: 10 }, `${B}.slowCallMs`, 'UNKNOWN_OPTION'],
    [{ kind: 'count', size: 0 }, `${B}.size`, 'INVALID_OPTION'],
    [{ kind: 'count', size: 5, minSamples: 6 }, `${B}.minSamples`, 'INVALID_OPTION'],
    [{ kind: 'count', minSamples: 0 }, `${B}.minSamples`, 'INVALID_OPTION'],
    [{ kind: 'count', failureRatio: 0 }, `${B}.failureRatio`, 'INVALID_OPTION'],
    [{ kind: 'count', failureRatio: 1.5 }, `${B}.failureRatio`, 'INVALID_OPTION'],
    [{ kind: 'count', slowCallRatio: 0.5 }, `${B}.slowCallRatio`, 'INVALID_OPTION'],
    [{ kind: 'count', slowCallMs: -1 }, `${B}.slowCallMs`, 'INVALID_OPTION'],
    [{ kind: 'count', slowCallMs: 10, slowCallRatio: 2 }, `${B}.slowCallRatio`, 'INVALID_OPTION'],
    [{ kind: 'count', slowCall: { durationMs: 10 } }, `${B}.slowCall`, 'UNKNOWN_OPTION'],
    [{ kind: 'count', windowMs: 100 }, `${B}.windowMs`, 'UNKNOWN_OPTION'],
    [{ kind: 'count', minimumCalls: 100 }, `${B}.minimumCalls`, 'UNKNOWN_OPTION'],
    [{ kind: 'time', windowMs: 0 }, `${B}.windowMs`, 'INVALID_OPTION'],
    [{ kind: 'time', windowMs: Number.POSITIVE_INFINITY }, `${B}.windowMs`, 'INVALID_OPTION'],
    [{ kind: 'time', buckets: 0 }, `${B}.buckets`, 'INVALID_OPTION'],
    [{ kind: 'time', minSamples: 0 }, `${B}.minSamples`, 'INVALID_OPTION'],
    [{ kind: 'time', failureRatio: '0.5' }, `${B}.failureRatio`, 'INVALID_OPTION'],
    [{ kind: 'time', size: 10 }, `${B}.size`, 'UNKNOWN_OPTION'],
    [{ kind: 'time', minimumThroughput: 10 }, `${B}.minimumThroughput`, 'UNKNOWN_OPTION'],
    [{ kind: 'time', slowCallMs: 10, slowCallRatio: 0 }, `${B}.slowCallRatio`, 'INVALID_OPTION'],
    [{ kind: 'sliding' }, `${B}.kind`, 'INVALID_OPTION'],
    [{}, `${B}.kind`, 'INVALID_OPTION'],
    ['consecutive', B, 'INVALID_OPTION'],
  ])('rejects %j', (raw, option, code) => {
    const error = configError(() => createWindow(raw));
    expect(error.option).toBe(option);
    expect(error.code).toBe(code);
  });

  it('suggests the new name of a renamed key', () => {
    const error = configError(() => createWindow({ kind: 'time', minSample: 5 }));
    expect(error.suggestion).toBe('minSamples');
    expect(error.message).toContain('did you mean circuitBreaker.breaker.minSamples?');
  });

  it('says what the rule is', () => {
    expect(configError(() => createWindow({ kind: 'count', size: 2, minSamples: 3 })).message).toBe(
      'circuitBreaker.breaker.minSamples must be at most size (2) (got 3)',
    );
  });
});
