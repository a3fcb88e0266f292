import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedRandom, seededRandom } from './index.js';

describe('seededRandom', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const sa = Array.from({ length: 20 }, () => a());
    const sb = Array.from({ length: 20 }, () => b());
    const sc = Array.from({ length: 20 }, () => c());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it('returns numbers in [0, 1) for any seed', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const r = seededRandom(seed);
        for (let i = 0; i < 50; i++) {
          const v = r();
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThan(1);
        }
      }),
    );
  });

  it('is roughly uniform', () => {
    const r = seededRandom(1);
    const buckets = new Array(10).fill(0) as number[];
    for (let i = 0; i < 10_000; i++) {
      const b = Math.floor(r() * 10);
      buckets[b] = (buckets[b] ?? 0) + 1;
    }
    for (const n of buckets) expect(n).toBeGreaterThan(800);
  });
});

describe('fixedRandom', () => {
  it('returns the given numbers in turn, then repeats the last', () => {
    const r = fixedRandom(0.1, 0.5, 0.9);
    expect([r(), r(), r(), r(), r()]).toEqual([0.1, 0.5, 0.9, 0.9, 0.9]);
  });

  it('returns 0 when given nothing', () => {
    const r = fixedRandom();
    expect([r(), r()]).toEqual([0, 0]);
  });
});
