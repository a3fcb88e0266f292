import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/index.js';
import { AimdLimit, Gradient2Limit, VegasLimit, WindowedLimit } from './adaptive-limits.js';

const aimd = () =>
  new AimdLimit({ initialLimit: 20, minLimit: 20, maxLimit: 200, backoffRatio: 0.9, timeoutMs: 5_000 });
const g2 = (initialLimit = 20) =>
  new Gradient2Limit({
    initialLimit,
    minLimit: 20,
    maxLimit: 200,
    smoothing: 0.2,
    rttTolerance: 1.5,
    queueSize: 4,
    longWindow: 600,
  });

/** Windows of exactly 1 s that need 3 samples (RTTs under 0.1 ms are ignored). */
const oneSecondWindows = { minWindowMs: 1_000, maxWindowMs: 1_000, minSamples: 3, minRttThresholdMs: 0.1 };
describe('AIMD', () => {
  it('adds 1 when at least half the limit is in use, else keeps it', () => {
    const a = aimd();
    expect(a.update(10, 10, false)).toBe(21);
    expect(a.update(10, 5, false)).toBe(21);
  });
  it('multiplies by the ratio on a drop or an RTT above the timeout, floored, clamped to [min, max]', () => {
    const a = new AimdLimit({
      initialLimit: 100,
      minLimit: 20,
      maxLimit: 200,
      backoffRatio: 0.9,
      timeoutMs: 5_000,
    });
    expect(a.update(10, 100, true)).toBe(90);
    expect(a.update(5_001, 90, false)).toBe(81);
    for (let i = 0; i < 50; i++) a.update(10, 0, true);
    expect(a.limit).toBe(20);
  });
  it('stays in [min, max] for any samples', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(10_000), fc.nat(300), fc.boolean())), (samples) => {
        const a = aimd();
        for (const [rtt, inflight, drop] of samples) {
          const l = a.update(rtt, inflight, drop);
          if (l < 20 || l > 200 || !Number.isInteger(l)) return false;
        }
        return true;
      }),
    );
  });
});

describe('Gradient2', () => {
  it('grows by smoothing × queueSize when latency is flat', () => {
    const g = g2(50);
    // first sample: longRtt = 10, gradient = min(1, 1.5) = 1 → new = 50 + 4 → 50·0.8 + 54·0.2 = 50.8
    expect(g.update(10, 50)).toBe(50);
    expect(g.update(10, 50)).toBe(51); // 51.6
  });
  it('does not change when app-limited (inflight < limit / 2)', () => {
    const g = g2(50);
    expect(g.update(10, 24)).toBe(50);
  });
  it('shrinks when the short RTT exceeds the long one by more than the tolerance', () => {
    const g = g2(100);
    for (let i = 0; i < 10; i++) g.update(10, 100); // longRtt 10 (plain mean)
    const before = g.limit;
    g.update(100, 100); // long ≈ 10.3, gradient = max(0.5, 1.5·10.3/100) = 0.5
    expect(g.limit).toBeLessThan(before);
    // new = L·0.5 + 4; L' = 0.8·L + 0.2·new = 0.9·L + 0.8 (L grew by 0.8 per flat sample first)
    expect(g.limit).toBe(Math.floor(0.9 * (100 + 0.8 * 10) + 0.8));
  });
  it('decays the long RTT when it is more than twice the short one', () => {
    const g = g2();
    for (let i = 0; i < 10; i++) g.update(100, 100);
    g.update(10, 100);
    // long = mean 100 then EMA with 10: 100·(1 − 2/601) + 10·2/601 ≈ 99.70, then ×0.95
    expect(g.longRttMs).toBeCloseTo((100 * (1 - 2 / 601) + (10 * 2) / 601) * 0.95, 6);
  });
});

describe('Vegas', () => {
  const vegas = (initialLimit = 20) =>
    new VegasLimit({ initialLimit, maxLimit: 1000, smoothing: 1, probeMultiplier: 30 }, seededRandom(1));
  it('takes the first sample as the no-load RTT, then adds beta while the queue is small', () => {
    const v = vegas();
    expect(v.update(10, 20, false)).toBe(20);
    expect(v.rttNoLoadMs).toBe(10);
    // queue = ceil(20·(1 − 10/10)) = 0 <= lg(20) = 1 → +6
    expect(v.update(10, 20, false)).toBe(26);
  });
  it('follows the alpha/beta bands with lg = max(1, floor(log10 limit))', () => {
    const v = vegas(100); // lg 2, alpha 6, beta 12
    v.update(10, 100, false);
    // queue = ceil(100·(1 − 10/10.3)) = 3 → < alpha → +2
    expect(v.update(10.3, 100, false)).toBe(102);
    // queue = ceil(102·(1 − 10/11)) = 10 → between alpha and beta → no change
    expect(v.update(11, 100, false)).toBe(102);
    // queue = ceil(102·(1 − 10/20)) = 51 > beta → −2
    expect(v.update(20, 100, false)).toBe(100);
    // a drop: −lg
    expect(v.update(20, 100, true)).toBe(98);
    // app-limited: no change
    expect(v.update(20, 10, false)).toBe(98);
  });
  it('re-probes the no-load RTT after U[0.5,1)·30·limit samples', () => {
    const v = vegas(1);
    v.update(10, 1, false);
    let probed = false;
    for (let i = 0; i < 60 && !probed; i++) {
      v.update(50, 0, false); // app-limited: the limit stays 1
      if (v.rttNoLoadMs === 50) probed = true;
    }
    expect(probed).toBe(true);
  });
});

describe('WindowedLimit', () => {
  it('feeds the average RTT and the largest inflight once per window of >= minSamples samples', () => {
    const seen: [number, number, boolean][] = [];
    const inner = {
      limit: 7,
      bounds: { minLimit: 1, maxLimit: 7 },
      setBounds() {},
      update(rtt: number, inflight: number, drop: boolean) {
        seen.push([rtt, inflight, drop]);
        return 7;
      },
    };
    const w = new WindowedLimit(inner, oneSecondWindows);
    w.update(10, 1, false, 0);
    w.update(20, 5, true, 500);
    w.update(30, 2, false, 999);
    expect(seen).toHaveLength(0);
    w.update(0.01, 9, false, 1_000); // below the threshold: ignored
    w.update(40, 3, false, 1_000);
    expect(seen).toEqual([[25, 5, true]]);
  });
});

describe('WindowedLimit: low traffic', () => {
  it('discards a window that ends with too few samples (as Netflix does), instead of stretching it', () => {
    const seen: number[] = [];
    const inner = {
      limit: 7,
      bounds: { minLimit: 1, maxLimit: 7 },
      setBounds() {},
      update(rtt: number) {
        seen.push(rtt);
        return 7;
      },
    };
    const w = new WindowedLimit(inner, oneSecondWindows);
    w.update(100, 1, false, 0);
    w.update(100, 1, false, 60_000); // the window ended with 2 samples: discarded
    expect(seen).toEqual([]);
    w.update(10, 1, false, 60_100);
    w.update(10, 1, false, 60_200);
    w.update(10, 1, false, 61_100); // a fresh window of 3 samples
    expect(seen).toEqual([10]);
  });
});
