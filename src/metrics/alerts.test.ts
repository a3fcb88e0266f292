import { ConfigError, createRegistry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';
import { live, setup, states } from '../../test/support/alerts-harness.js';
import { createHealthMonitor, customCheck } from '../health/index.js';
import { type AlertRule, createAlerts, createMetrics, defaultAlertRules, renderTemplate } from './index.js';

/** Alerts with one `NotReady` rule (`bulwark_svc_ready == 0`, plus `rule`) over a live `svc/main` whose readiness the test sets. */
function notReady(ready: boolean, rule: Partial<AlertRule> = {}) {
  const svc = { ready };
  const h = setup([
    {
      name: 'NotReady',
      expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 },
      ...rule,
    },
  ]);
  live(h.registry, 'svc', 'main', () => ({ ready: svc.ready ? 1 : 0 }));
  return { ...h, svc };
}

describe('alert rules', () => {
  it('goes inactive → pending → firing → (keep firing) → resolved → inactive', async () => {
    const { clock, svc, alerts, notes } = notReady(true, {
      forMs: 60_000,
      keepFiringForMs: 30_000,
      severity: 'critical',
      labels: { team: 'core' },
      annotations: { summary: 'ready={{ $value }} team={{ $labels.team }}' },
    });
    expect(await alerts.evaluate()).toEqual([]);
    svc.ready = false;
    expect(states(await alerts.evaluate())).toEqual(['inactive->pending']);
    await clock.tick(30_000);
    expect(await alerts.evaluate()).toEqual([]);
    expect(alerts.alerts()[0]!.state).toBe('pending');
    await clock.tick(30_000);
    const fired = await alerts.evaluate();
    expect(states(fired)).toEqual(['pending->firing']);
    expect(fired[0]!.alert.annotations.summary).toBe('ready=0 team=core');
    expect(fired[0]!.alert.labels).toMatchObject({
      alertname: 'NotReady',
      severity: 'critical',
      team: 'core',
    });
    expect(notes.map((n) => n.status)).toEqual(['firing']);
    // Condition stops: keeps firing for 30 s from the first evaluation where it no longer holds
    // (Prometheus' KeepFiringSince), so resolves 30 s after that evaluation.
    svc.ready = true;
    await clock.tick(15_000);
    expect(await alerts.evaluate()).toEqual([]);
    expect(alerts.alerts()[0]!.state).toBe('firing');
    await clock.tick(15_000);
    expect(await alerts.evaluate()).toEqual([]);
    expect(alerts.alerts()[0]!.state).toBe('firing');
    await clock.tick(15_000);
    const resolved = await alerts.evaluate();
    expect(states(resolved)).toEqual(['firing->resolved']);
    expect(notes.map((n) => n.status)).toEqual(['firing', 'resolved']);
    // Resolved is reported once, then the alert is gone.
    await clock.tick(15_000);
    expect(await alerts.evaluate()).toEqual([]);
    expect(alerts.alerts()).toEqual([]);
    expect(notes).toHaveLength(2);
  });

  it('a pending alert whose condition stops goes back to inactive without a notification', async () => {
    const { clock, svc, alerts, notes } = notReady(false, { forMs: 60_000 });
    await alerts.evaluate();
    svc.ready = true;
    await clock.tick(10_000);
    expect(states(await alerts.evaluate())).toEqual(['pending->inactive']);
    expect(notes).toEqual([]);
  });

  it('keepFiringFor stops flapping: a condition that comes back keeps the same alert firing', async () => {
    const { clock, svc, alerts, notes } = notReady(false, { keepFiringForMs: 60_000 });
    expect(states(await alerts.evaluate())).toEqual(['inactive->firing']);
    for (let i = 0; i < 6; i++) {
      svc.ready = !svc.ready;
      await clock.tick(15_000);
      expect(await alerts.evaluate()).toEqual([]);
    }
    expect(notes).toHaveLength(1);
  });

  it('one alert per series, with the series labels', async () => {
    const { registry, alerts } = setup([
      {
        name: 'CheckFailing',
        expr: { kind: 'value', metric: 'bulwark_check_status', op: '<', threshold: 1 },
      },
    ]);
    live(registry, 'check', 'db', () => ({ status: 0 }));
    live(registry, 'check', 'cache', () => ({ status: 0.5 }));
    live(registry, 'check', 'disk', () => ({ status: 1 }));
    const t = await alerts.evaluate();
    expect(t.map((x) => x.alert.labels.name).sort()).toEqual(['cache', 'db']);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('rate, increase and ratio expressions over the evaluation history', async () => {
    let dead = 0;
    const { clock, registry, alerts } = setup([
      {
        name: 'DeadGrowing',
        expr: {
          kind: 'increase',
          metric: 'bulwark_queue_dead',
          windowMs: 600_000,
          op: '>',
          threshold: 0,
        },
      },
      {
        name: 'DeadFast',
        expr: {
          kind: 'rate',
          metric: 'bulwark_queue_dead',
          windowMs: 60_000,
          op: '>',
          threshold: 0.5,
        },
      },
    ]);
    live(registry, 'queue', 'jobs', () => ({ dead }));
    expect(await alerts.evaluate()).toEqual([]); // one point: no increase yet
    await clock.tick(60_000);
    expect(await alerts.evaluate()).toEqual([]); // flat
    dead = 10;
    await clock.tick(60_000);
    const t = await alerts.evaluate();
    expect(t.map((x) => `${x.alert.rule}:${x.to}:${x.alert.value}`)).toEqual(['DeadGrowing:firing:10']);
    // 10 dead in 60 s = 0.17/s: under 0.5/s, so only the increase rule fires.
    dead = 100;
    await clock.tick(60_000);
    const t2 = await alerts.evaluate();
    expect(t2.map((x) => x.alert.rule)).toEqual(['DeadFast']);
    expect(t2[0]!.alert.value).toBe(1.5);
    // Flat for 10 minutes: the increase over the window drops to 0 and the alert resolves.
    for (let i = 0; i < 12; i++) {
      await clock.tick(60_000);
      await alerts.evaluate();
    }
    expect(alerts.alerts()).toEqual([]);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('counts a fall of a counter as a reset', async () => {
    let n = 5;
    const { clock, registry, alerts } = setup([
      {
        name: 'Inc',
        expr: {
          kind: 'increase',
          metric: 'bulwark_queue_dead',
          windowMs: 600_000,
          op: '>=',
          threshold: 0,
        },
      },
    ]);
    live(registry, 'queue', 'q', () => ({ dead: n }));
    await alerts.evaluate();
    n = 2; // reset, then 2 new
    await clock.tick(1_000);
    const t = await alerts.evaluate();
    expect(t[0]!.alert.value).toBe(2);
  });

  it('default rules: saturation, breaker open over a minute, critical check, not ready outside shutdown, SLO states', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    live(registry, 'bulkhead', 'pool', () => ({ inFlight: 10, limit: 10 }));
    live(registry, 'bulkhead', 'other', () => ({ inFlight: 1, limit: 10 }));
    const breaker = live(registry, 'circuitBreaker', 'db', () => ({}), ['closed', 'open', 'isolated']);
    let pgUp = true;
    const monitor = createHealthMonitor({
      clock,
      registry,
      degradation: false,
      checks: [
        customCheck({ name: 'pg', failureThreshold: 1, intervalMs: 1_000, run: () => pgUp }),
        customCheck({
          name: 'cache',
          critical: false,
          failureThreshold: 1,
          intervalMs: 1_000,
          run: () => false,
        }),
      ],
    });
    await monitor.runNow();
    pgUp = false;
    await clock.tick(1_000);
    const alerts = createAlerts({ metrics });
    expect(alerts.rules.map((r) => r.name)).toEqual(defaultAlertRules().map((r) => r.name));
    breaker.setState('isolated'); // not 'open': does not count for the open rule
    const first = await alerts.evaluate();
    const firing = first.filter((t) => t.to === 'firing').map((t) => t.alert.rule);
    expect(firing.sort()).toEqual(['BulwarkCriticalCheckFailing', 'BulwarkSaturated']);
    expect(first.find((t) => t.alert.rule === 'BulwarkCriticalCheckFailing')!.alert.labels.name).toBe('pg');
    expect(first.find((t) => t.alert.rule === 'BulwarkSaturated')!.alert.annotations.summary).toBe(
      'pool is at 1 of its limit',
    );
    expect(first.find((t) => t.alert.rule === 'BulwarkNotReady')?.to).toBe('pending');
    await clock.tick(60_000);
    expect((await alerts.evaluate()).map((t) => `${t.alert.rule}:${t.to}`)).toEqual([
      'BulwarkNotReady:firing',
    ]);
    monitor.setShuttingDown();
    await clock.tick(15_000);
    expect((await alerts.evaluate()).map((t) => `${t.alert.rule}:${t.to}`)).toEqual([
      'BulwarkNotReady:resolved',
    ]);
    breaker.setState('open');
    expect(states(await alerts.evaluate())).toEqual(['inactive->pending']);
    await clock.tick(60_000);
    const t = await alerts.evaluate();
    expect(t.map((x) => `${x.alert.rule}:${x.to}`)).toEqual(['BulwarkCircuitOpen:firing']);
    expect(t[0]!.alert.annotations.summary).toBe('Circuit breaker db has been open for over a minute');
    const slo = live(registry, 'slo', 'checkout', () => ({}), ['ok', 'ticket', 'page']);
    slo.setState('page');
    expect((await alerts.evaluate()).map((x) => `${x.alert.rule}:${x.to}:${x.alert.severity}`)).toEqual([
      'BulwarkSloBurnRatePage:firing:critical',
    ]);
    await monitor.close();
  });

  it('evaluates at start(), then on the clock every intervalMs, and stop() ends it', async () => {
    const { clock, registry, svc, alerts, seen } = notReady(true);
    let reads = 0;
    live(registry, 'counter', 'evaluations', () => ({ reads: ++reads }));
    reads = 0;
    alerts.start();
    await clock.tick(0);
    expect(reads).toBe(1); // the first evaluation runs at start()
    svc.ready = false;
    await clock.tick(14_999);
    expect(seen).toEqual([]);
    await clock.tick(1);
    expect(states(seen)).toEqual(['inactive->firing']);
    expect(reads).toBe(2);
    await alerts.stop();
    expect(clock.pending).toBe(0);
  });

  it('stop() then start() at once does not leave two timers running', async () => {
    const { clock, registry, alerts } = setup([
      { name: 'NotReady', expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 } },
    ]);
    let reads = 0;
    live(registry, 'counter', 'evaluations', () => ({ reads: ++reads }));
    reads = 0;
    alerts.start();
    await clock.tick(15_000); // evaluation in flight while stop() and start() run
    const stopped = alerts.stop();
    alerts.start();
    await stopped;
    await clock.tick(0);
    const before = reads;
    await clock.tick(15_000);
    expect(reads - before).toBe(1);
    await clock.tick(15_000);
    expect(reads - before).toBe(2);
    expect(clock.pending).toBe(1);
    await alerts.stop();
    expect(clock.pending).toBe(0);
  });

  it('evaluate() does not wait for notifiers; flush() does', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    live(registry, 'svc', 'main', () => ({ ready: 0 }));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const delivered: string[] = [];
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [{ name: 'A', expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 } }],
      notifiers: [
        {
          notify: async (n) => {
            await gate;
            delivered.push(n.status);
          },
        },
      ],
    });
    expect(states(await alerts.evaluate())).toEqual(['inactive->firing']);
    expect(delivered).toEqual([]);
    let flushed = false;
    const f = alerts.flush().then(() => {
      flushed = true;
    });
    await Promise.resolve();
    expect(flushed).toBe(false);
    release();
    await f;
    expect(delivered).toEqual(['firing']);
  });

  it('a failing notifier or rule is reported, never thrown', async () => {
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    live(registry, 'svc', 'main', () => ({ ready: 0 }));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        { name: 'A', expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 } },
        {
          name: 'B',
          expr: {
            kind: 'custom',
            evaluate: () => {
              throw new Error('bad rule');
            },
          },
        },
      ],
      notifiers: [{ notify: () => Promise.reject(new Error('smtp down')) }],
    });
    await alerts.evaluate();
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    expect(warnings.some((w) => w.includes('bad rule'))).toBe(true);
    expect(warnings.some((w) => w.includes('smtp down'))).toBe(true);
  });

  it('validates rules with the field named', () => {
    const metrics = createMetrics({ registry: createRegistry() });
    expect(() =>
      createAlerts({
        metrics,
        rules: [{ name: 'x', expr: { kind: 'value', metric: 'm', op: '=~' as never, threshold: 1 } }],
      }),
    ).toThrow(ConfigError);
    expect(() =>
      createAlerts({
        metrics,
        rules: [{ name: 'x', expr: { kind: 'rate', metric: 'm', windowMs: -1, op: '>', threshold: 1 } }],
      }),
    ).toThrow(/createAlerts\.rules\[0\]\.expr\.windowMs/);
    expect(() =>
      createAlerts({
        metrics,
        rules: [
          { name: 'x', expr: { kind: 'value', metric: 'm', op: '>', threshold: 1 } },
          { name: 'x', expr: { kind: 'value', metric: 'm', op: '>', threshold: 1 } },
        ],
      }),
    ).toThrow(/a name no other rule has/);
  });

  it('renders templates', () => {
    expect(renderTemplate('{{$value}} {{ $labels.a }}{{ $labels.missing }}', { a: 'A' }, 0.123456789)).toBe(
      '0.123457 A',
    );
  });
});
