import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { createFakeClock, deferred, flushMicrotasks } from '../testing/index.js';
import { LoadShedError, type LoadShedEvent, loadShedder, SHED_LEVELS, SHED_PRIORITIES } from './shed.js';

describe('loadShedder', () => {
  it('admits everything with no pressure and adds no timer', async () => {
    const clock = createFakeClock();
    const s = loadShedder({ clock });
    for (const p of SHED_PRIORITIES) expect(await s.execute(() => p, { priority: p })).toBe(p);
    expect(clock.pending).toBe(0);
    expect(s.stats.admitted).toBe(4);
    expect(s.stats.inFlight).toBe(0);
  });

  it('reserves the top 20% of the capacity for critical and sheds lower classes first', async () => {
    const s = loadShedder({ capacity: 10 });
    const gate = deferred<void>();
    const running: Promise<unknown>[] = [];
    const admitted: string[] = [];
    const shed: string[] = [];
    const tryRun = (priority: string) => {
      const p = s.execute(() => gate.promise, { priority });
      running.push(
        p.then(
          () => {},
          (e: unknown) => {
            if (!(e instanceof LoadShedError)) throw e;
          },
        ),
      );
      // A shed rejection is known at once: see whether the call is in flight now.
      return p;
    };
    for (let i = 0; i < 12; i++) {
      const before = s.stats.inFlight;
      const priority = i < 6 ? 'low' : i < 8 ? 'normal' : i < 9 ? 'high' : 'critical';
      void tryRun(priority);
      (s.stats.inFlight > before ? admitted : shed).push(priority);
    }
    // low admitted while in flight < 6, normal < 7, high < 8, critical < 10.
    expect(admitted).toEqual([
      'low',
      'low',
      'low',
      'low',
      'low',
      'low',
      'normal',
      'high',
      'critical',
      'critical',
    ]);
    expect(shed).toEqual(['normal', 'critical']);
    expect(s.check('low')?.reason).toBe('concurrency');
    expect(s.check('critical')?.reason).toBe('concurrency');
    gate.resolve();
    await Promise.all(running);
    expect(s.check('low')).toBeNull();
    expect(s.stats.shed).toEqual({ critical: 1, high: 0, normal: 1, low: 0 });
  });

  it('rejects with a typed LoadShedError and emits shed', async () => {
    const s = loadShedder({ level: 'critical-only' });
    const events: LoadShedEvent[] = [];
    s.onEvent((e) => events.push(e));
    const err = await s.execute(() => 1, { priority: 'high', name: 'op' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadShedError);
    expect(err).toBeInstanceOf(BulwarkError);
    const e = err as LoadShedError;
    expect(e.code).toBe('LOAD_SHED');
    expect(e.priority).toBe('high');
    expect(e.reason).toBe('shed');
    expect(e.trigger).toBe('level');
    expect(e.level).toBe('critical-only');
    expect(events).toMatchObject([{ kind: 'loadShedder', event: 'shed', reason: 'level', operation: 'op' }]);
    expect(await s.execute(() => 2, { priority: 'critical' })).toBe(2);
  });

  it('levels shed whole classes and emit levelChange', async () => {
    const s = loadShedder();
    const events: LoadShedEvent[] = [];
    s.onEvent((e) => events.push(e));
    const admitted = () => SHED_PRIORITIES.filter((p) => s.check(p) === null);
    expect(admitted()).toEqual(['critical', 'high', 'normal', 'low']);
    s.setLevel('limited');
    expect(admitted()).toEqual(['critical', 'high']);
    s.setLevel('critical-only');
    expect(admitted()).toEqual(['critical']);
    s.setLevel('offline');
    expect(admitted()).toEqual([]);
    s.setLevel('offline');
    s.setLevel('normal');
    expect(s.level).toBe('normal');
    expect(events.map((e) => (e.event === 'levelChange' ? `${e.from}>${e.to}` : e.event))).toEqual([
      'normal>limited',
      'limited>critical-only',
      'critical-only>offline',
      'offline>normal',
    ]);
    expect(() => s.setLevel('down' as never)).toThrow(ConfigError);
    // Unknown priorities count as normal.
    s.setLevel('limited');
    expect(s.check('batch')?.reason).toBe('level');
  });

  it('sheds on latency and recovers when old samples leave the window', async () => {
    const clock = createFakeClock();
    const s = loadShedder({ clock, latency: { thresholdMs: 100, minSamples: 5, windowMs: 1_000 } });
    const slow = (ms: number) => s.execute(() => clock.tick(ms), { priority: 'critical' });
    for (let i = 0; i < 10; i++) await slow(75); // p90 75 ms (the sketch: within 4.4 % above): pressure ~0.75
    expect(s.stats.latencyMs).toBeGreaterThanOrEqual(75);
    expect(s.stats.latencyMs).toBeLessThanOrEqual(75 * 1.045);
    expect(s.check('low')).toMatchObject({ reason: 'latency' });
    expect((s.check('low') as { pressure: number }).pressure).toBeCloseTo(0.75, 1);
    expect(s.check('normal')).toMatchObject({ reason: 'latency' });
    expect(s.check('high')).toBeNull();
    expect(s.check('critical')).toBeNull();
    await expect(s.execute(() => 1, { priority: 'low' })).rejects.toMatchObject({
      reason: 'shed',
      trigger: 'latency',
    });
    await clock.tick(2_000); // samples are forgotten after two windows
    expect(s.check('low')).toBeNull();
  });

  it('takes custom signals (a throwing one is reported and ignored)', () => {
    let q = 0;
    const s = loadShedder({
      signals: [
        () => q,
        () => {
          throw new Error('broken gauge');
        },
      ],
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      q = 0.65;
      expect(s.check('low')).toEqual({ reason: 'signal', pressure: 0.65 });
      expect(s.check('normal')).toBeNull();
      q = 2;
      expect(s.check('critical')).toEqual({ reason: 'signal', pressure: 2 });
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('rejects an aborted caller at once and validates options', async () => {
    const s = loadShedder();
    const c = new AbortController();
    c.abort(new Error('gone'));
    await expect(s.execute(() => 1, { signal: c.signal })).rejects.toThrow('gone');
    expect(() => loadShedder({ capacity: 0 })).toThrow(/loadShedder.capacity/);
    expect(() => loadShedder({ thresholds: { low: 0.9 } })).toThrow(/loadShedder.thresholds.low/);
    expect(() => loadShedder({ thresholds: { bulk: 1 } as never })).toThrow(/loadShedder.thresholds.bulk/);
    expect(() => loadShedder({ latency: { thresholdMs: 0 } })).toThrow(/loadShedder.latency.thresholdMs/);
    expect(() => loadShedder({ latency: { thresholdMs: 1, windowMs: -1 } })).toThrow(
      /loadShedder.latency.windowMs/,
    );
    expect(() => loadShedder({ level: 'down' as never })).toThrow(/loadShedder.level/);
    expect(() => loadShedder({ signals: [1 as never] })).toThrow(/loadShedder.signals\[0\]/);
    expect(() => loadShedder({ capcity: 1 } as never)).toThrow(/capcity/);
  });

  it('works in a pipeline and releases on failure', async () => {
    const s = loadShedder({ capacity: 1 });
    const p = pipeline(s);
    await expect(p.execute(() => Promise.reject(new Error('x')), { priority: 'critical' })).rejects.toThrow(
      'x',
    );
    expect(s.stats.inFlight).toBe(0);
    expect(await p.execute(() => 'ok', { priority: 'critical' })).toBe('ok');
  });

  it('property: never sheds a higher priority while admitting a lower one under the same state', async () => {
    const prio = fc.constantFrom(...SHED_PRIORITIES, 'batch');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('call' as const), priority: prio, ms: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 200 }) }),
      fc.record({ kind: fc.constant('level' as const), level: fc.constantFrom(...SHED_LEVELS) }),
      fc.record({ kind: fc.constant('signal' as const), v: fc.double({ min: 0, max: 1.5, noNaN: true }) }),
    );
    const thresholds = fc
      .array(fc.double({ min: 0, max: 1.2, noNaN: true }), { minLength: 4, maxLength: 4 })
      .map((xs) => xs.sort((a, b) => b - a));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        thresholds,
        fc.boolean(),
        fc.array(op, { maxLength: 60 }),
        async (capacity, ts, useLatency, ops) => {
          const clock = createFakeClock();
          let signal = 0;
          const s = loadShedder({
            clock,
            capacity,
            thresholds: { critical: ts[0]!, high: ts[1]!, normal: ts[2]!, low: ts[3]! },
            signals: [() => signal],
            ...(useLatency ? { latency: { thresholdMs: 100, minSamples: 1, windowMs: 500 } } : {}),
          });
          const pending: Promise<unknown>[] = [];
          const checkMonotone = () => {
            const d = SHED_PRIORITIES.map((p) => s.check(p));
            for (let hi = 0; hi < 4; hi++) {
              for (let lo = hi + 1; lo < 4; lo++) {
                if (d[hi] !== null && d[lo] === null) return false;
              }
            }
            return true;
          };
          for (const o of ops) {
            if (o.kind === 'call') {
              const expected = s.check(o.priority);
              expect(checkMonotone()).toBe(true);
              const before = s.stats.inFlight;
              const p = s.execute(() => clock.tick(o.ms), { priority: o.priority });
              pending.push(p.catch((e: unknown) => expect(e).toBeInstanceOf(LoadShedError)));
              expect(s.stats.inFlight - before).toBe(expected === null ? 1 : 0);
            } else if (o.kind === 'tick') {
              await clock.tick(o.ms);
            } else if (o.kind === 'level') {
              s.setLevel(o.level);
            } else {
              signal = o.v;
            }
            expect(checkMonotone()).toBe(true);
          }
          await clock.runAll();
          await Promise.all(pending);
          await flushMicrotasks();
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('loadShedder: switched off', () => {
  it('is a pass-through while off (nothing shed, nothing counted), and can be switched at run time', async () => {
    const s = loadShedder({ capacity: 1, enabled: false });
    expect(s.enabled).toBe(false);
    const inner = Promise.resolve('x');
    expect(s.execute(() => inner)).toBe(inner);
    const gate = deferred<void>();
    const held = s.execute(() => gate.promise); // would fill capacity 1 if counted
    await expect(s.execute(() => 'ok', { priority: 'low' })).resolves.toBe('ok');
    s.setEnabled(true);
    await expect(s.execute(() => 'ok', { priority: 'critical' })).resolves.toBe('ok');
    gate.resolve();
    await held;
    expect(() => s.setEnabled('yes' as never)).toThrow('loadShedder.setEnabled(on) must be');
    expect(() => loadShedder({ enabled: 1 as never })).toThrow('loadShedder.enabled must be');
  });
});
