import { createRegistry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeComponent } from '../../test/metrics-fakes.js';
import { live, setup } from '../../test/support/alerts-harness.js';
import { createAlerts, createMetrics, defaultAlertRules } from './index.js';

describe('alert state machine (property)', () => {
  it('matches a reference model of Prometheus semantics for any condition sequence', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 }).map((n) => n * 10_000),
        fc.integer({ min: 0, max: 5 }).map((n) => n * 10_000),
        fc.array(fc.record({ dt: fc.integer({ min: 1, max: 4 }).map((n) => n * 5_000), on: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        async (forMs, keepMs, steps) => {
          const clock = createFakeClock();
          const registry = createRegistry();
          const metrics = createMetrics({ registry, clock });
          let on = false;
          live(registry, 'svc', 'main', () => ({ ready: !on ? 1 : 0 }));
          const notes: string[] = [];
          const alerts = createAlerts({
            metrics,
            clock,
            rules: [
              {
                name: 'A',
                expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 },
                forMs,
                keepFiringForMs: keepMs,
              },
            ],
            notifiers: [{ notify: (n) => void notes.push(n.status) }],
          });
          // Reference model.
          let state: 'inactive' | 'pending' | 'firing' | 'resolved' = 'inactive';
          let activeAt = 0;
          // Prometheus' KeepFiringSince: the first evaluation the condition no longer held.
          let keepSince: number | undefined;
          const expected: string[] = [];
          for (const step of steps) {
            await clock.tick(step.dt);
            on = step.on;
            const now = clock.now();
            if (on) {
              if (state === 'inactive' || state === 'resolved') {
                state = 'pending';
                activeAt = now;
              }
              keepSince = undefined;
              if (state === 'pending' && now - activeAt >= forMs) {
                state = 'firing';
                expected.push('firing');
              }
            } else if (state === 'pending' || state === 'resolved') {
              state = 'inactive';
            } else if (state === 'firing') {
              if (keepMs > 0 && keepSince === undefined) keepSince = now;
              if (keepMs === 0 || now - keepSince! >= keepMs) {
                state = 'resolved';
                expected.push('resolved');
              }
            }
            await alerts.evaluate();
            const current = alerts.alerts()[0]?.state ?? 'inactive';
            expect(current).toBe(state);
          }
          expect(notes).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('review regressions', () => {
  it('keepFiringFor counts from the first evaluation the condition no longer held (Prometheus)', async () => {
    let ready = false;
    const { clock, registry, alerts, seen } = setup([
      {
        name: 'NR',
        expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 },
        keepFiringForMs: 30_000,
      },
    ]);
    live(registry, 'svc', 'main', () => ({ ready: ready ? 1 : 0 }));
    const t0 = clock.now();
    await alerts.evaluate();
    ready = true;
    for (let i = 0; i < 4; i++) {
      await clock.tick(15_000);
      await alerts.evaluate();
    }
    // false from t=15 s: KeepFiringSince = 15 s, resolved at 45 s.
    expect(seen.map((t) => `${(t.at - t0) / 1000}:${t.to}`)).toEqual(['0:firing', '45:resolved']);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('keeps history for the windows custom rules ask for', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    let dead = 0;
    live(registry, 'queue', 'q', () => ({ dead }));
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        {
          name: 'C',
          expr: {
            kind: 'custom',
            evaluate: (ctx) => ctx.increase('bulwark_queue_dead', 600_000).filter((s) => s.value > 0),
          },
        },
      ],
    });
    await alerts.evaluate();
    for (let i = 0; i < 10; i++) {
      await clock.tick(15_000);
      await alerts.evaluate();
    }
    dead = 5;
    await clock.tick(15_000);
    expect((await alerts.evaluate()).map((t) => t.to)).toEqual(['firing']);
  });

  it('a ratio of rates without windowMs uses (and keeps history for) the 5 min default', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    const api = new FakeComponent(
      { kind: 'pipeline', help: 'p', states: ['idle'], gauges: {}, counters: { calls: 'c', failures: 'f' } },
      'api',
    );
    registry.register(api);
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        {
          name: 'FailRatio',
          expr: {
            kind: 'ratio',
            numerator: { metric: 'bulwark_pipeline_failures_total', fn: 'rate' },
            denominator: { metric: 'bulwark_pipeline_calls_total', fn: 'rate' },
            by: ['name'],
            op: '>',
            threshold: 0.5,
          },
        },
      ],
    });
    await alerts.evaluate();
    api.counters.failures = 10;
    api.counters.calls = 10;
    await clock.tick(15_000);
    expect((await alerts.evaluate()).map((t) => t.to)).toEqual(['firing']);
  });

  it('the dead-letter rule reads any `dead` gauge as a gauge: a fall does not fire, a rise does', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    let dead = 100;
    live(registry, 'queue', 'q', () => ({ dead }));
    const alerts = createAlerts({ metrics, clock, rules: defaultAlertRules() });
    await alerts.evaluate();
    dead = 98; // two dead jobs requeued
    await clock.tick(15_000);
    expect(await alerts.evaluate()).toEqual([]);
    dead = 101;
    await clock.tick(15_000);
    const t = await alerts.evaluate();
    expect(t.map((x) => `${x.alert.rule}:${x.to}:${x.alert.value}`)).toEqual([
      'BulwarkDeadLetterGrowing:firing:1',
    ]);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('delta expressions and selectors', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    let pending = 10;
    live(registry, 'queue', 'q', () => ({ pending }));
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        {
          name: 'Draining',
          expr: {
            kind: 'delta',
            metric: 'bulwark_queue_pending',
            windowMs: 60_000,
            op: '<',
            threshold: -3,
          },
        },
      ],
    });
    await alerts.evaluate();
    pending = 5;
    await clock.tick(15_000);
    const t = await alerts.evaluate();
    expect(t.map((x) => [x.to, x.alert.value])).toEqual([['firing', -5]]);
  });
});
