import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { outlierDefaults } from './config.js';
import { type EjectionChange, type Outcome, OutlierDetector, OutlierState } from './outlier.js';

const hosts = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ name: `h${i}`, outlier: new OutlierState() }));

describe('OutlierDetector (Envoy semantics)', () => {
  it('ejects after 5 consecutive 5xx, for 30 s × the ejection count, capped at 300 s', () => {
    const [a, b] = hosts(2);
    const d = new OutlierDetector({ ...outlierDefaults, maxEjectionPercent: 100 }, [a!, b!]);
    const times: number[] = [];
    let now = 0;
    for (let round = 1; round <= 12; round++) {
      for (let i = 0; i < 5; i++) d.record(a!, 'error5xx', now);
      expect(a!.outlier.ejected(now)).toBe(true);
      times.push(a!.outlier.ejectedUntil - now);
      now = a!.outlier.ejectedUntil;
      d.sweep(now);
    }
    expect(times.slice(0, 3)).toEqual([30_000, 60_000, 90_000]);
    expect(Math.max(...times)).toBe(300_000);
  });

  it('a success resets the consecutive counters; gateway errors eject as such', () => {
    const [a, b] = hosts(2);
    const changes: EjectionChange<typeof a>[] = [];
    const d = new OutlierDetector({ ...outlierDefaults, maxEjectionPercent: 100 }, [a!, b!], (c) =>
      changes.push(c),
    );
    for (let i = 0; i < 4; i++) d.record(a!, 'gatewayError', 0);
    d.record(a!, 'success', 0);
    for (let i = 0; i < 4; i++) d.record(a!, 'gatewayError', 0);
    expect(a!.outlier.ejected(1)).toBe(false);
    d.record(a!, 'gatewayError', 0);
    expect(a!.outlier.reason).toBe('consecutiveGatewayErrors');
    expect(changes.map((c) => c.type)).toEqual(['ejected']);
    d.sweep(30_001);
    expect(changes.map((c) => c.type)).toEqual(['ejected', 'returned']);
  });

  it('never ejects more than maxEjectionPercent, but always at least one (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.tuple(fc.nat(19), fc.constantFrom<Outcome>('success', 'error5xx', 'gatewayError')), {
          maxLength: 400,
        }),
        (n, pct, events) => {
          const hs = hosts(n);
          const d = new OutlierDetector({ ...outlierDefaults, maxEjectionPercent: pct }, hs);
          for (const [i, o] of events) {
            d.record(hs[i % n]!, o, 0);
            const ejected = hs.filter((h) => h.outlier.ejected(0)).length;
            expect(ejected <= Math.max(1, Math.floor((pct / 100) * n))).toBe(true);
          }
        },
      ),
    );
  });

  it('ejects success-rate outliers below mean − 1.9 σ with >= 5 hosts of >= 100 requests', () => {
    const hs = hosts(6);
    const d = new OutlierDetector(
      { ...outlierDefaults, consecutive5xx: 0, consecutiveGatewayErrors: 0, maxEjectionPercent: 50 },
      hs,
    );
    hs.forEach((h, i) => {
      for (let r = 0; r < 100; r++) d.record(h, i === 5 && r % 2 === 0 ? 'error5xx' : 'success', 0);
    });
    d.sweep(10_000);
    expect(hs.map((h) => h.outlier.reason)).toEqual([null, null, null, null, null, 'successRate']);
  });
});
