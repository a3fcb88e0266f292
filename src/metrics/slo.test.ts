import { ConfigError, pipeline, retry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAlerts, createMetrics, RollingWindow, sliStatus, sloAlertRules, sloTracker } from './index.js';

describe('RollingWindow (properties)', () => {
  // An event: at time t (ms), good?, fast?
  const events = fc.array(
    fc.record({ dt: fc.integer({ min: 0, max: 5_000 }), good: fc.boolean(), fast: fc.boolean() }),
    { maxLength: 300 },
  );

  it('sums exactly the events of the whole buckets in the window (naive model), events in time order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 2_000 }),
        fc.integer({ min: 1, max: 40 }),
        events,
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        (bucketMs, buckets, evs, windowMs, after) => {
          const w = new RollingWindow(bucketMs, buckets);
          let t = 0;
          const model: { t: number; good: boolean; fast: boolean }[] = [];
          for (const e of evs) {
            t += e.dt;
            w.add(t, e.good, e.fast);
            model.push({ t, good: e.good, fast: e.fast });
          }
          const now = t + after;
          const cur = Math.floor(now / bucketMs);
          const k = Math.min(buckets, Math.max(1, Math.ceil(windowMs / bucketMs)));
          const inWindow = model.filter((m) => {
            const idx = Math.floor(m.t / bucketMs);
            return idx > cur - k && idx <= cur;
          });
          expect(w.sum(windowMs, now)).toEqual({
            total: inWindow.length,
            good: inWindow.filter((m) => m.good).length,
            fast: inWindow.filter((m) => m.fast).length,
          });
        },
      ),
    );
  });

  it('never counts an event twice, and a window never exceeds the ring, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 200 }),
        (buckets, times) => {
          const w = new RollingWindow(1_000, buckets);
          for (const t of times) w.add(t, true, false);
          const now = Math.max(0, ...times);
          const all = w.sum(Number.POSITIVE_INFINITY, now);
          const cur = Math.floor(now / 1_000);
          const inRing = times.filter((t) => Math.floor(t / 1_000) > cur - buckets).length;
          expect(all.total).toBeLessThanOrEqual(times.length);
          // Out-of-order events inside the ring are never lost once the ring has moved past them.
          expect(all.total).toBeLessThanOrEqual(inRing);
          expect(all.good).toBe(all.total);
          expect(all.fast).toBe(0);
          // Windows are monotone in their length.
          let prev = 0;
          for (let k = 1; k <= buckets; k++) {
            const s = w.sum(k * 1_000, now).total;
            expect(s).toBeGreaterThanOrEqual(prev);
            prev = s;
          }
        },
      ),
    );
  });

  it('burn rate is the bad ratio over the allowed bad ratio, and the budget is spent at burn 1 over the window', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 0.9999, noNaN: true }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (objective, total, badRaw) => {
          const bad = badRaw % (total + 1);
          const w = { good: total - bad, total };
          const s = sliStatus(objective, w, { '5m': w, '30m': w, '1h': w, '6h': w });
          const burn = bad / total / (1 - objective);
          expect(s.burnRates['1h']).toBeCloseTo(burn, 6);
          expect(s.errorBudgetRemaining).toBeCloseTo(1 - burn, 6);
          expect(s.page).toBe(burn > 14.4);
          expect(s.ticket).toBe(burn > 6);
        },
      ),
    );
  });
});

describe('sloTracker', () => {
  it('tracks success and latency objectives per priority, with multi-window burn-rate alerts', async () => {
    const clock = createFakeClock();
    const metrics = createMetrics({ clock, sampleEvery: 16 });
    const api = metrics.track(pipeline(retry({ maxAttempts: 1 })), 'checkout');
    const slo = sloTracker({
      metrics,
      name: 'checkout',
      priority: 'critical',
      objective: 0.99,
      latency: { thresholdMs: 300, objective: 0.9 },
    });
    const all = sloTracker({ metrics, name: 'checkout', objective: 0.99 });
    const call = async (ok: boolean, ms: number, priority = 'critical') => {
      const p = api.execute(
        () => new Promise((res, rej) => clock.setTimeout(() => (ok ? res(1) : rej(new Error('x'))), ms)),
        { priority },
      );
      await clock.tick(ms);
      await p.catch(() => {});
    };
    // 2 hours of healthy traffic: 100 calls a minute, all fast.
    for (let m = 0; m < 120; m++) {
      for (let i = 0; i < 100; i++) await call(true, 1);
      await clock.tick(60_000 - 100);
    }
    let s = slo.status();
    expect(s.success.ratio).toBe(1);
    expect(s.success.errorBudgetRemaining).toBe(1);
    expect(s.latency?.ratio).toBe(1);
    expect(s.success.page).toBe(false);
    // 20 minutes of an outage: half the calls fail, the rest are slow. Low-priority calls don't count.
    for (let m = 0; m < 20; m++) {
      for (let i = 0; i < 100; i++) await call(i % 2 === 0, 400);
      for (let i = 0; i < 10; i++) await call(false, 1, 'low');
      await clock.tick(60_000 - 100 * 400 - 10);
    }
    s = slo.status();
    expect(s.success.burnRates['5m']).toBeCloseTo(50, 5); // 50 % bad ÷ 1 % allowed
    expect(s.success.burnRates['1h']).toBeGreaterThan(14.4); // ≈ 1000 bad of ≈ 6000 calls ÷ 1 %
    expect(s.success.page).toBe(true);
    expect(s.success.burnRates['6h']).toBeCloseTo((1_000 / 14_000) * 100, 5); // all 2 h 20 min of traffic
    expect(s.success.burnRates['30m']).toBeGreaterThan(6);
    expect(s.success.ticket).toBe(true);
    expect(s.latency?.burnRates['5m']).toBeCloseTo(10, 5); // all successes slow: 100 % ÷ 10 %
    expect(s.success.errorBudgetRemaining).toBeLessThan(1);
    expect(s.success.events).toBe(120 * 100 + 20 * 100);
    expect(all.status().success.events).toBe(120 * 100 + 20 * 110);
    // Exported as gauges.
    const fams = await metrics.collect();
    const burn = fams.find((f) => f.name === 'bulwark_slo_burn_rate')!;
    if (burn.type === 'histogram') throw new Error('type');
    expect(
      burn.samples.find(
        (x) => x.labels.priority === 'critical' && x.labels.sli === 'success' && x.labels.window === '5m',
      )?.value,
    ).toBeCloseTo(50, 5);
    slo.stop();
    all.stop();
    expect((await metrics.collect()).find((f) => f.name === 'bulwark_slo_burn_rate')!.samples).toEqual([]);
  });

  it('validates its options with the field named', () => {
    const metrics = createMetrics();
    expect(() => sloTracker({ metrics, name: 'x', objective: 1 })).toThrow(ConfigError);
    expect(() =>
      sloTracker({ metrics, name: 'x', objective: 0.9, latency: { thresholdMs: -1, objective: 0.9 } }),
    ).toThrow(/sloTracker\.latency\.thresholdMs/);
  });
});

describe('sloAlertRules', () => {
  it('pages through the alert manager when the burn rate is high over both windows', async () => {
    const clock = createFakeClock();
    const metrics = createMetrics({ clock });
    const api = metrics.track(pipeline(retry({ maxAttempts: 1 })), 'pay');
    const slo = sloTracker({ metrics, name: 'pay', objective: 0.99 });
    const alerts = createAlerts({ metrics, clock, rules: sloAlertRules(slo) });
    for (let i = 0; i < 100; i++) await api.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    const t = await alerts.evaluate();
    expect(t.map((x) => `${x.alert.rule}:${x.to}:${x.alert.labels.sli}`).sort()).toEqual([
      'SloBurnRatePage:pay:firing:success',
      'SloBurnRateTicket:pay:firing:success',
    ]);
    expect(t[0]!.alert.annotations.summary).toContain('100×');
  });
});

describe('sloTracker (review regressions)', () => {
  it('reads the sink’s clock whatever clock it is given (burn rates are not 0)', async () => {
    const sinkClock = createFakeClock();
    const otherClock = createFakeClock();
    await otherClock.tick(2 * 86_400_000);
    const metrics = createMetrics({ clock: sinkClock });
    const api = metrics.track(pipeline(retry({ maxAttempts: 1 })), 'api');
    const warnings: string[] = [];
    const on = (w: Error) => warnings.push(w.message);
    process.on('warning', on);
    const slo = sloTracker({ metrics, name: 'api', objective: 0.99, clock: otherClock });
    await new Promise((r) => setImmediate(r));
    process.off('warning', on);
    for (let i = 0; i < 10; i++) await api.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    const s = slo.status().success;
    expect(s.burnRates['5m']).toBeGreaterThan(50);
    expect(s.page).toBe(true);
    expect(warnings.some((w) => w.includes('clock option is ignored'))).toBe(true);
  });

  it('defaults policy to the kind tracked under the name', async () => {
    const metrics = createMetrics();
    metrics.track(retry({ name: 'r' }), 'svc');
    const slo = sloTracker({ metrics, name: 'svc', objective: 0.99 });
    expect(slo.policy).toBe('retry');
    const calls = (await metrics.samples()).filter((s) => s.name === 'bulwark_calls_total');
    expect(new Set(calls.map((s) => s.labels.policy))).toEqual(new Set(['retry']));
    const m2 = createMetrics();
    expect(sloTracker({ metrics: m2, name: 'later', objective: 0.99 }).policy).toBe('pipeline');
  });
});
