import { ConfigError, createRegistry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FAKE_PIPELINE, FakeComponent } from '../../test/metrics-fakes.js';
import {
  createAlerts,
  createMetrics,
  defaultAlertRules,
  RollingWindow,
  sliStatus,
  sloTracker,
} from './index.js';

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

const BOUNDS = [0.1, 0.3, 1];

/** A pipeline-like source whose counters and histogram the test drives. */
function source() {
  const p = new FakeComponent(FAKE_PIPELINE, 'checkout');
  const counts = [0, 0, 0, 0];
  let sum = 0;
  const call = (ok: boolean, seconds: number) => {
    if (ok) p.counters.successes!++;
    else p.counters.failures!++;
    let i = 0;
    while (i < BOUNDS.length && seconds > BOUNDS[i]!) i++;
    counts[i]!++;
    sum += seconds;
    p.histograms = {
      durationSeconds: { bounds: BOUNDS, counts: [...counts], sum, count: counts.reduce((a, b) => a + b, 0) },
    };
  };
  return { p, call };
}

describe('sloTracker', () => {
  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it("tracks success and latency objectives from a component's counters and histogram, with burn-rate states", async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const { p, call } = source();
    const slo = sloTracker({
      source: p,
      objective: 0.99,
      latency: { thresholdMs: 300, objective: 0.9 },
      registry,
      clock,
      intervalMs: 60_000,
    });
    const states: string[] = [];
    slo.onEvent((e) => states.push(`${e.from}->${e.to}`));
    // 2 hours of healthy traffic: 100 calls a minute, all fast (read once a minute by the timer).
    for (let m = 0; m < 120; m++) {
      for (let i = 0; i < 100; i++) call(true, 0.001);
      await clock.tick(60_000);
    }
    let s = slo.status();
    expect(s.success.ratio).toBe(1);
    expect(s.success.errorBudgetRemaining).toBe(1);
    expect(s.latency?.ratio).toBe(1);
    expect(s.success.page).toBe(false);
    // 20 minutes of an outage: half the calls fail, every call is slow.
    for (let m = 0; m < 20; m++) {
      for (let i = 0; i < 100; i++) call(i % 2 === 0, 0.4);
      await clock.tick(60_000);
    }
    s = slo.status();
    expect(s.success.burnRates['5m']).toBeCloseTo(50, 5); // 50 % bad ÷ 1 % allowed
    expect(s.success.burnRates['1h']).toBeGreaterThan(14.4);
    expect(s.success.page).toBe(true);
    expect(s.success.burnRates['6h']).toBeCloseTo((1_000 / 14_000) * 100, 5);
    expect(s.success.ticket).toBe(true);
    expect(s.latency?.burnRates['5m']).toBeCloseTo(10, 5); // every call slow: 100 % ÷ 10 %
    expect(s.success.events).toBe(120 * 100 + 20 * 100);
    expect(states).toEqual(['ok->ticket', 'ticket->page']); // the latency SLI burns steadily first
    // A component like any other: exported from its snapshot, paged on by the default rules.
    const metrics = createMetrics({ registry, clock });
    const samples = metrics.samples();
    expect(samples.find((x) => x.name === 'bulwark_slo_success_burn_rate5m')?.value).toBeCloseTo(50, 5);
    expect(
      samples.find((x) => x.name === 'bulwark_component_state' && x.labels.state === 'page')?.value,
    ).toBe(1);
    const alerts = createAlerts({ metrics, rules: defaultAlertRules() });
    const t = await alerts.evaluate();
    expect(t.map((x) => `${x.alert.rule}:${x.to}:${x.alert.labels.name}`)).toEqual([
      'BulwarkSloBurnRatePage:firing:checkout',
    ]);
    slo.stop();
    expect(clock.pending).toBe(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rounds the latency threshold down to a bucket bound', () => {
    const clock = createFakeClock();
    const { p, call } = source();
    const slo = sloTracker({
      source: p,
      objective: 0.9,
      latency: { thresholdMs: 500, objective: 0.5 },
      clock,
    });
    call(true, 0.2); // under 0.3 s
    call(true, 0.4); // in (0.3, 1]: 500 ms is not a bound, so it counts as slow
    expect(slo.status().latency?.ratio).toBe(0.5);
    slo.stop();
  });

  it('validates its options with the field named', () => {
    const { p } = source();
    expect(() => sloTracker({ source: p, objective: 1 })).toThrow(ConfigError);
    expect(() => sloTracker({ source: {} as never, objective: 0.9 })).toThrow(/sloTracker\.source/);
    expect(() =>
      sloTracker({ source: p, objective: 0.9, latency: { thresholdMs: -1, objective: 0.9 } }),
    ).toThrow(/sloTracker\.latency\.thresholdMs/);
  });
});

describe('SLO views for the control plane', () => {
  it('status gives the budget left; burns one row per SLI and window with the alert threshold', async () => {
    const clock = createFakeClock();
    const { p, call } = source();
    const slo = sloTracker({
      source: p,
      objective: 0.9,
      latency: { thresholdMs: 300, objective: 0.5 },
      clock,
    });
    for (let i = 0; i < 8; i++) call(true, 0.001);
    call(false, 0.001);
    call(false, 0.001);
    const [status, burns] = slo.operations();
    expect([status!.name, burns!.name]).toEqual(['status', 'burns']);
    const st = (await status!.run({}, { actor: 'v', reason: '', dryRun: false })) as {
      success: { errorBudgetRemaining: number };
    };
    expect(st.success.errorBudgetRemaining).toBeCloseTo(-1); // 20 % bad of 10 % allowed: twice spent
    const rows = (await burns!.run({}, { actor: 'v', reason: '', dryRun: false })) as {
      sli: string;
      window: string;
      burnRate: number;
      budgetSpent: number;
      alertAt: number;
      events: number;
    }[];
    expect(rows.map((r) => `${r.sli}:${r.window}`)).toEqual([
      'success:5m',
      'success:30m',
      'success:1h',
      'success:6h',
      'latency:5m',
      'latency:30m',
      'latency:1h',
      'latency:6h',
    ]);
    const fiveMin = rows[0]!;
    expect(fiveMin).toMatchObject({ events: 10, alertAt: 14.4 });
    expect(fiveMin.burnRate).toBeCloseTo(2);
    expect(fiveMin.budgetSpent).toBeCloseTo((2 * 300_000) / slo.windowMs);
    expect(rows[1]!.alertAt).toBe(6);
    slo.stop();
  });
});
