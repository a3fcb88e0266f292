import { describe, expect, it } from 'vitest';
import type { ComponentOperation } from '../core/component.js';
import { BulwarkError, type ConfigError } from '../core/errors.js';
import { loadShedder } from '../limits/shed.js';
import { createFakeClock } from '../testing/index.js';
import { customCheck } from './check.js';
import { createHealthMonitor } from './monitor.js';

const CTX = { actor: 'alice', reason: 'draining for maintenance', dryRun: false };

function op(ops: readonly ComponentOperation[], name: string): ComponentOperation {
  const o = ops.find((x) => x.name === name);
  if (o === undefined) throw new Error(name);
  return o;
}

function setup() {
  const clock = createFakeClock();
  const monitor = createHealthMonitor({
    clock,
    checks: [
      customCheck({ name: 'db', run: () => true }),
      customCheck({ name: 'cache', critical: false, run: () => true }),
    ],
    degradation: { recoverAfterMs: 0 },
  });
  return { clock, monitor };
}

describe('health overrides', () => {
  it('a forced fail shows in readiness, health+json, snapshots and ends by itself', async () => {
    const { clock, monitor } = setup();
    await monitor.runNow();
    expect(monitor.report().ready).toBe(true);
    const ops = monitor.operations();
    const force = op(ops, 'forceCheck');
    const result = await force.run(
      force.input.parse({ check: 'db', status: 'fail', durationMs: 60_000 }, 'in'),
      CTX,
    );
    expect(result).toMatchObject({ target: 'db', value: 'fail', actor: 'alice', reason: CTX.reason });
    expect(monitor.report().ready).toBe(false);
    expect(monitor.snapshot().state).toBe('notReady');
    expect(monitor.report().level).toBe('critical-only'); // the default rule reads the forced status
    const doc = monitor.healthJson({ details: true })!;
    expect(doc.status).toBe('fail');
    expect(doc.checks!['db:responseTime']![0]!.output).toMatch(
      /^forced fail by alice until .*: draining for maintenance$/,
    );
    expect(doc.notes).toEqual(['override: db = fail by alice: draining for maintenance']);
    const check = monitor.checks[0]!.snapshot();
    expect(check.state).toBe('fail');
    expect(check.details).toMatchObject({ judged: 'pass', override: { value: 'fail' } });
    expect(monitor.snapshot().details!.overrides).toHaveLength(1);
    await clock.tick(59_999);
    expect(monitor.report().ready).toBe(false);
    await clock.tick(1);
    expect(monitor.report().ready).toBe(true);
    expect(monitor.overrides()).toEqual([]);
    expect(monitor.healthJson({ details: true })!.notes).toBeUndefined();
    await monitor.close();
  });

  it('a forced level drives attached shedders; release ends it at once', async () => {
    const { monitor } = setup();
    await monitor.runNow();
    const shedder = loadShedder();
    monitor.degradation!.attach(shedder);
    const ops = monitor.operations();
    const force = op(ops, 'forceLevel');
    await force.run(force.input.parse({ level: 'limited', durationMs: 600_000 }, 'in'), CTX);
    expect(shedder.level).toBe('limited');
    expect(monitor.snapshot().gauges.degradationLevel).toBe(1);
    await monitor.runNow(); // the rules keep running under the override: it still holds
    expect(shedder.level).toBe('limited');
    const release = op(ops, 'releaseOverride');
    const r = await release.run(release.input.parse({ target: 'degradationLevel' }, 'in'), CTX);
    expect(r).toMatchObject({ released: { value: 'limited' } });
    expect(shedder.level).toBe('normal');
    expect(await release.run({ target: 'degradationLevel' }, CTX)).toEqual({ released: null });
    await monitor.close();
  });

  it('validates the check name, status and duration naming the field; no level without degradation', async () => {
    const { monitor } = setup();
    const force = op(monitor.operations(), 'forceCheck');
    const field = (input: unknown) => {
      try {
        force.input.parse(input, 'body.input');
      } catch (error) {
        return (error as ConfigError).option;
      }
      return undefined;
    };
    expect(field({ check: 'dbx', status: 'fail', durationMs: 1_000 })).toBe('body.input.check');
    expect(field({ check: 'db', status: 'down', durationMs: 1_000 })).toBe('body.input.status');
    expect(field({ check: 'db', status: 'fail', durationMs: 0 })).toBe('body.input.durationMs');
    expect(field({ check: 'db', status: 'fail', durationMs: 8 * 86_400_000 })).toBe('body.input.durationMs');
    const plain = createHealthMonitor({ checks: [], degradation: false, autoStart: false });
    expect(plain.operations().map((o) => o.name)).toEqual(['overrides']);
    expect(() => plain.forceLevel('offline', { durationMs: 1_000, reason: 'x' })).toThrow(BulwarkError);
    expect(() => monitor.forceCheck('nope', 'fail', { durationMs: 1_000, reason: 'x' })).toThrow(
      BulwarkError,
    );
    await monitor.close();
    await plain.close();
  });
});
