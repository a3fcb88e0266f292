import { createServer } from 'node:net';
import { circuitBreaker } from 'bulwark';
import { createFakeClock, deferred } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';
import { customCheck, type HealthCheckEvent } from './check.js';
import { breakerCheck, eventLoopCheck, httpCheck, postgresCheck, queueCheck, tcpCheck } from './checks.js';
import { createHealthMonitor, type HealthMonitorEvent } from './monitor.js';

describe('createHealthMonitor', () => {
  it('runs checks in the background on their interval, with unref timers', async () => {
    const clock = createFakeClock();
    let runs = 0;
    const monitor = createHealthMonitor({
      clock,
      checks: [customCheck({ name: 'a', intervalMs: 1_000, run: () => void runs++ })],
    });
    await clock.tick(0);
    expect(runs).toBe(1);
    await clock.tick(3_000);
    expect(runs).toBe(4);
    expect(clock.refed).toBe(0);
    await monitor.close();
    await clock.tick(5_000);
    expect(runs).toBe(4);
    expect(clock.pending).toBe(0);
  });

  it('applies failure and success thresholds; counts consecutive failures; startup and readiness follow', async () => {
    const clock = createFakeClock();
    let up = true;
    const checkEvents: HealthCheckEvent[] = [];
    const events: HealthMonitorEvent[] = [];
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'db',
          intervalMs: 1_000,
          failureThreshold: 3,
          successThreshold: 2,
          run: () => up,
        }),
      ],
      degradation: { recoverAfterMs: 0 },
    });
    monitor.onEvent((e) => events.push(e));
    monitor.checks[0]!.onEvent((e) => checkEvents.push(e));
    expect(monitor.report()).toMatchObject({ started: false, ready: false, live: true, status: 'warn' });
    await clock.tick(0);
    expect(monitor.report()).toMatchObject({ started: true, ready: true, status: 'pass', level: 'normal' });
    up = false;
    await clock.tick(2_000); // 2 failures: still pass
    let s = monitor.report();
    expect(s.checks[0]).toMatchObject({ status: 'pass', consecutiveFailures: 2 });
    expect(monitor.healthJson({ details: true })!.checks!['db:responseTime']![0]!.output).toContain(
      'failed 2 of 3 consecutive runs',
    );
    await clock.tick(1_000);
    s = monitor.report();
    expect(s).toMatchObject({ status: 'fail', ready: false, started: true, level: 'offline' });
    expect(s.checks[0]).toMatchObject({ status: 'fail', consecutiveFailures: 3, critical: true });
    up = true;
    await clock.tick(1_000);
    expect(monitor.report().checks[0]!.status).toBe('fail');
    await clock.tick(1_000);
    expect(monitor.report()).toMatchObject({ status: 'pass', ready: true });
    expect(checkEvents.map((e) => e.to)).toEqual(['pass', 'fail', 'pass']);
    expect(events.filter((e) => e.event === 'stateChange').map((e) => e.to)).toEqual([
      'ready',
      'notReady',
      'ready',
    ]);
    await monitor.close();
  });

  it('a hung check times out with an aborted signal and does not block the others', async () => {
    const clock = createFakeClock();
    const hang = deferred<void>();
    let aborted = false;
    let fastRuns = 0;
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'hung',
          timeoutMs: 500,
          failureThreshold: 1,
          intervalMs: 1_000,
          run: (signal) => {
            signal.addEventListener('abort', () => {
              aborted = true;
            });
            return hang.promise;
          },
        }),
        customCheck({ name: 'fast', intervalMs: 100, run: () => void fastRuns++ }),
      ],
    });
    await clock.tick(400);
    expect(monitor.report().checks[0]!.pending).toBe(true);
    expect(fastRuns).toBe(5);
    await clock.tick(100);
    expect(aborted).toBe(true);
    const doc = monitor.healthJson({ details: true })!;
    expect(doc.checks!['hung:responseTime']![0]).toMatchObject({
      status: 'fail',
      output: 'timed out after 500 ms',
    });
    const lat = monitor.report().checks[0]!.latencyMs!;
    for (const q of [lat.p50, lat.p90, lat.p99]) expect(Math.abs(q - 500) / 500).toBeLessThan(0.045); // the sketch's precision
    await monitor.close();
  });

  it('never starts a check that is still running', async () => {
    const clock = createFakeClock();
    const d = deferred<void>();
    let runs = 0;
    const monitor = createHealthMonitor({
      clock,
      autoStart: false,
      checks: [
        customCheck({
          name: 'slow',
          timeoutMs: 10_000,
          run: () => {
            runs++;
            return d.promise;
          },
        }),
      ],
    });
    const a = monitor.runNow();
    const b = monitor.runNow();
    await clock.tick(10);
    expect(runs).toBe(1);
    d.resolve();
    await Promise.all([a, b]);
    expect(monitor.report().checks[0]!.status).toBe('pass');
    await monitor.close();
  });

  it('stops starting runs of a check whose timed-out runs never end', async () => {
    const clock = createFakeClock();
    let runs = 0;
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'stuck',
          timeoutMs: 10,
          // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
          // each test spells out its own scenario.
          intervalMs: 100,
          run: () => {
            runs++;
            return new Promise(() => {});
          },
        }),
      ],
    });
    await clock.tick(1_000);
    expect(runs).toBe(3);
    expect(monitor.report().checks[0]!.output).toContain('3 earlier runs have not ended');
    await monitor.close();
  });

  it('a timed-out run that ends late frees its slot', async () => {
    const clock = createFakeClock();
    const late = deferred<void>();
    let runs = 0;
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'slow',
          timeoutMs: 10,
          intervalMs: 100,
          run: () => (++runs <= 3 ? late.promise : true),
        }),
      ],
    });
    await clock.tick(300);
    expect(runs).toBe(3);
    await clock.tick(300);
    expect(runs).toBe(3); // three runs hung: no fourth
    late.resolve();
    await clock.tick(100);
    expect(runs).toBe(4);
    expect(monitor.report().checks[0]!.status).toBe('pass');
    await monitor.close();
  });

  it('eventLoopCheck measures the delay and counts for liveness', async () => {
    const check = eventLoopCheck({ warnMs: 10_000, failMs: 20_000 });
    expect(check).toMatchObject({
      liveness: true,
      critical: false,
      componentType: 'system',
      measurement: 'delay',
    });
    const r = await check.run(new AbortController().signal);
    expect(r).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    await check.close?.();
    expect(() => httpCheck({ url: 'http://127.0.0.1:1/', liveness: true })).toThrow(
      /httpCheck\.liveness must not be true/,
    );
  });

  it('non-critical failures warn and limit; liveness only counts liveness checks', async () => {
    const clock = createFakeClock();
    let loop = true;
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({ name: 'db', run: () => true }),
        customCheck({ name: 'cache', critical: false, failureThreshold: 1, run: () => false }),
        customCheck({
          name: 'loop',
          critical: false,
          liveness: true,
          failureThreshold: 1,
          intervalMs: 100,
          run: () => loop,
        }),
      ],
    });
    await clock.tick(0);
    expect(monitor.report()).toMatchObject({ status: 'warn', ready: true, live: true, level: 'limited' });
    expect(monitor.probeJson('live').status).toBe('pass');
    loop = false;
    await clock.tick(100);
    expect(monitor.report()).toMatchObject({ live: false, level: 'offline', ready: false });
    const live = monitor.probeJson('live', { details: true });
    expect(live.status).toBe('fail');
    expect(Object.keys(live.checks!)).toEqual(['loop:responseTime']);
    await monitor.close();
  });

  it('hides details unless asked; groups; shutting down fails health and readiness', async () => {
    const clock = createFakeClock();
    const monitor = createHealthMonitor({
      clock,
      version: '1',
      releaseId: '1.2.3',
      serviceId: 'svc',
      description: 'test',
      notes: ['n'],
      groups: { db: ['db'] },
      checks: [
        customCheck({
          name: 'db',
          componentType: 'datastore',
          run: () => ({ status: 'warn', output: 'slow', observedValue: 9, observedUnit: 'ms' }),
        }),
        customCheck({ name: 'other', critical: false, run: () => true }),
      ],
    });
    await clock.tick(0);
    const open = monitor.healthJson()!;
    expect(open).toEqual({
      status: 'warn',
      serviceId: 'svc',
      description: 'test',
      checks: {
        'db:responseTime': [
          { componentId: 'db', componentType: 'datastore', status: 'warn', time: '2026-01-01T00:00:00.000Z' },
        ],
        'other:responseTime': [
          {
            componentId: 'other',
            componentType: 'component',
            status: 'pass',
            time: '2026-01-01T00:00:00.000Z',
          },
        ],
      },
    });
    const full = monitor.healthJson({ details: true })!;
    expect(full).toMatchObject({ version: '1', releaseId: '1.2.3', notes: ['n'], output: 'db: warn (slow)' });
    expect(full.checks!['db:responseTime']![0]).toMatchObject({
      observedValue: 9,
      observedUnit: 'ms',
      output: 'slow',
    });
    expect(Object.keys(monitor.healthJson({ group: 'db' })!.checks!)).toEqual(['db:responseTime']);
    expect(monitor.healthJson({ group: 'nope' })).toBeUndefined();
    monitor.setShuttingDown();
    expect(monitor.healthJson()!.status).toBe('fail');
    expect(monitor.probeJson('ready', { details: true })).toMatchObject({
      status: 'fail',
      output: 'shutting down',
    });
    expect(monitor.probeJson('live').status).toBe('pass');
    expect(monitor.report()).toMatchObject({ shuttingDown: true, ready: false });
    await monitor.close();
  });

  it('breakerCheck follows a core circuit breaker: open fails, half-open warns', async () => {
    const clock = createFakeClock();
    const breaker = circuitBreaker({
      name: 'pay',
      clock,
      halfOpenAfterMs: 1_000,
      breaker: { kind: 'consecutive', threshold: 1 },
    });
    const check = breakerCheck(breaker);
    const signal = new AbortController().signal;
    expect(await check.run(signal)).toMatchObject({ status: 'pass', observedValue: 'closed' });
    await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    expect(breaker.state).toBe('open');
    expect(await check.run(signal)).toMatchObject({ status: 'fail' });
    await clock.tick(1_000);
    expect(await check.run(signal)).toMatchObject({ status: 'warn' });
    const d = deferred<void>();
    const probe = breaker.execute(() => d.promise);
    expect(breaker.state).toBe('half-open');
    expect(await check.run(signal)).toMatchObject({ status: 'warn', observedValue: 'half-open' });
    d.resolve();
    await probe;
    expect(await check.run(signal)).toMatchObject({ status: 'pass' });
    expect(check.critical).toBe(false);
  });

  it('queueCheck warns on backlog age and dead-letter growth', async () => {
    let stats = { pending: 1, dead: 0, oldestPendingAgeMs: 10 };
    const check = queueCheck({ stats: async () => stats }, { warnAgeMs: 100, failAgeMs: 1_000 });
    const signal = new AbortController().signal;
    expect(await check.run(signal)).toMatchObject({ status: 'pass', observedValue: 10, observedUnit: 'ms' });
    stats = { pending: 1, dead: 2, oldestPendingAgeMs: 10 };
    expect(await check.run(signal)).toMatchObject({
      status: 'warn',
      output: 'pending 1, oldest 10 ms, dead 2 (+2)',
    });
    stats = { pending: 1, dead: 2, oldestPendingAgeMs: 500 };
    expect(await check.run(signal)).toMatchObject({ status: 'warn' });
    stats = { pending: 1, dead: 2, oldestPendingAgeMs: 5_000 };
    expect(await check.run(signal)).toMatchObject({ status: 'fail' });
  });

  it('rejects bad options with the field named', () => {
    expect(() => customCheck({ name: 'a:b', run: () => true })).toThrow(/customCheck\.name/);
    expect(() => customCheck({ name: 'a', timeoutMs: -1, run: () => true })).toThrow(
      /customCheck\.timeoutMs/,
    );
    expect(() => createHealthMonitor({ checks: [], typo: 1 } as never)).toThrow(/healthMonitor\.typo/);
    const a = customCheck({ name: 'a', run: () => true });
    expect(() => createHealthMonitor({ checks: [a, a] })).toThrow(/checks\[1\]\.name/);
    expect(() => createHealthMonitor({ checks: [a], groups: { g: ['zz'] } })).toThrow(/groups\.g\[0\]/);
  });

  it('default names of httpCheck and tcpCheck hold no host (IPv6 hosts work; hidden details leak nothing)', async () => {
    expect(tcpCheck({ host: '::1', port: 5432 }).name).toBe('tcp');
    expect(httpCheck({ url: 'http://[::1]:8080/healthz' }).name).toBe('http');
    const monitor = createHealthMonitor({
      autoStart: false,
      checks: [
        tcpCheck({ host: '10.0.3.7', port: 5432 }),
        httpCheck({ url: 'http://payments.internal:8443/admin/healthz?token=abc' }),
      ],
    });
    const text = JSON.stringify([monitor.healthJson(), monitor.probeJson('ready'), monitor.report()]);
    expect(text).not.toMatch(/10\.0\.3\.7|payments\.internal|8443|5432|token/);
    await monitor.close();
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('an unknown status from a custom check fails, with an output saying so', async () => {
    const clock = createFakeClock();
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'odd',
          failureThreshold: 1,
          // A JavaScript caller, or a cast: 'ok' is not a health+json status.
          run: () => ({ status: 'ok' as 'pass', output: 'all good' }),
        }),
      ],
    });
    await clock.tick(0);
    const c = monitor.report().checks[0]!;
    expect(c.status).toBe('fail');
    expect(c.output).toBe(
      'check returned an unknown status "ok" (expected "pass", "warn" or "fail"): all good',
    );
    await monitor.close();
  });

  it('snapshot().status is fail while shutting down, like /health; pass entries carry no output', async () => {
    const clock = createFakeClock();
    const monitor = createHealthMonitor({
      clock,
      checks: [customCheck({ name: 'a', run: () => ({ status: 'pass', output: 'fine' }) })],
    });
    await clock.tick(0);
    expect(monitor.report().status).toBe('pass');
    expect(monitor.healthJson({ details: true })!.checks!['a:responseTime']![0]).not.toHaveProperty('output');
    monitor.setShuttingDown();
    expect(monitor.report().status).toBe('fail');
    expect(monitor.report().checks[0]!.status).toBe('pass'); // the check itself still passes
    expect(monitor.healthJson()!.status).toBe('fail');
    await monitor.close();
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('error causes are kept in outputs', async () => {
    const clock = createFakeClock();
    const monitor = createHealthMonitor({
      clock,
      checks: [
        customCheck({
          name: 'a',
          failureThreshold: 1,
          run: () => {
            throw new TypeError('fetch failed', {
              cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
            });
          },
        }),
      ],
    });
    await clock.tick(0);
    expect(monitor.report().checks[0]!.output).toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:9');
    await monitor.close();
  });

  it('intervals and timeouts are bounded: at least 1 ms, at most 2147483647 ms', () => {
    expect(() => customCheck({ name: 'a', intervalMs: 2 ** 31, run: () => true })).toThrow(/intervalMs/);
    expect(() => customCheck({ name: 'a', timeoutMs: 0.5, run: () => true })).toThrow(
      /customCheck.timeoutMs must be a finite number >= 1 and <= 2147483647/,
    );
    expect(customCheck({ name: 'a', intervalMs: 2_147_483_647, run: () => true }).intervalMs).toBe(
      2_147_483_647,
    );
  });

  it('postgresCheck with a connection string opens no connection once its signal is aborted', async () => {
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const check = postgresCheck({ client: `postgres://postgres@127.0.0.1:${port}/test` });
    const ac = new AbortController();
    ac.abort(new Error('timed out'));
    await expect(check.run(ac.signal)).rejects.toThrow('timed out');
    expect(connections).toBe(0);
    await new Promise((r) => server.close(r));
  });
});
