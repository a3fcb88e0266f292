import { LoadShedError, loadShedder } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createDegradation,
  DEGRADATION_LEVELS,
  type DegradationChange,
  type DegradationLevel,
  defaultDegradationRule,
  Hysteresis,
} from './degradation.js';

type CheckStatus = 'pass' | 'warn' | 'fail';
const sev = (l: DegradationLevel) => DEGRADATION_LEVELS.indexOf(l);
/** A live process with one critical and one non-critical check, of these statuses. */
const liveWith = (critical: CheckStatus, other: CheckStatus) => ({
  live: true,
  checks: [
    { status: critical, critical: true },
    { status: other, critical: false },
  ],
});

describe('Hysteresis (property)', () => {
  it('changes only when the window justifies it, never late, and timers land on every change point', () => {
    const level = fc.constantFrom(...DEGRADATION_LEVELS);
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 500, 2_000),
        fc.constantFrom(0, 1, 1_000, 30_000),
        fc.array(
          fc.record({
            dt: fc.integer({ min: 0, max: 40_000 }),
            target: level,
            probe: fc.double({ min: 0, max: 1, noNaN: true }),
          }),
          {
            maxLength: 60,
          },
        ),
        (D, R, steps) => {
          const h = new Hysteresis('normal', 0, { degradeAfterMs: D, recoverAfterMs: R });
          const history: { t: number; s: number }[] = [{ t: Number.NEGATIVE_INFINITY, s: 0 }];
          // Targets over [from, to] from the full history (independent of the machine).
          const over = (from: number, to: number) => {
            const out: number[] = [];
            for (let i = 0; i < history.length; i++) {
              const start = history[i]!.t;
              const end = i + 1 < history.length ? history[i + 1]!.t : Number.POSITIVE_INFINITY;
              if (start <= to && end > from) out.push(history[i]!.s);
            }
            return out;
          };
          let now = 0;
          let current = 0;
          const evaluated = (t: number, after: number) => {
            // Justified changes.
            if (after > current) expect(Math.min(...over(t - D, t))).toBeGreaterThanOrEqual(after);
            if (after < current) expect(Math.max(...over(t - R, t))).toBeLessThanOrEqual(after);
            // Never late.
            expect(after).toBeGreaterThanOrEqual(Math.min(...over(t - D, t)));
            expect(after).toBeLessThanOrEqual(Math.max(...over(t - R, t)));
            current = after;
          };
          for (const step of steps) {
            const until = now + step.dt;
            const probeAt = now + Math.floor(step.probe * step.dt);
            let probed = false;
            // Fire the "timers" up to the next input.
            for (;;) {
              const at = h.nextChangeAt(now);
              if (!probed && (at === undefined || at > probeAt)) {
                // An evaluation between change points changes nothing.
                expect(sev(h.evaluate(probeAt))).toBe(current);
                now = Math.max(now, probeAt);
                probed = true;
                continue;
              }
              if (at === undefined || at > until) break;
              now = at;
              evaluated(now, sev(h.evaluate(now)));
            }
            now = until;
            const last = history[history.length - 1]!;
            if (last.t === now) last.s = sev(step.target);
            else history.push({ t: now, s: sev(step.target) });
            evaluated(now, sev(h.input(step.target, now)));
          }
          // Once the last target has held long enough, the level is the target.
          const tail = now + Math.max(D, R);
          for (;;) {
            const at = h.nextChangeAt(now);
            if (at === undefined || at > tail) break;
            now = at;
            evaluated(now, sev(h.evaluate(now)));
          }
          expect(sev(h.evaluate(tail))).toBe(history[history.length - 1]!.s);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('createDegradation', () => {
  it('degrades at once, recovers after recoverAfterMs, and emits changes', async () => {
    const clock = createFakeClock();
    const d = createDegradation({ clock, recoverAfterMs: 30_000 });
    const changes: DegradationChange[] = [];
    d.on('change', (e) => changes.push(e));
    d.update(liveWith('fail', 'pass'));
    expect(d.level).toBe('critical-only');
    await clock.tick(10_000);
    d.update(liveWith('pass', 'fail'));
    expect(d.level).toBe('critical-only');
    expect(d.target).toBe('limited');
    await clock.tick(29_999);
    expect(d.level).toBe('critical-only');
    await clock.tick(1);
    expect(d.level).toBe('limited');
    d.update(liveWith('pass', 'pass'));
    await clock.tick(15_000);
    d.update(liveWith('pass', 'fail')); // flap
    await clock.tick(1);
    d.update(liveWith('pass', 'pass'));
    await clock.tick(29_999);
    expect(d.level).toBe('limited');
    await clock.tick(1);
    expect(d.level).toBe('normal');
    expect(changes.map((c) => c.to)).toEqual(['critical-only', 'limited', 'normal']);
    d.close();
  });

  it('degradeAfterMs delays a worse level; custom rules add their opinion', async () => {
    const clock = createFakeClock();
    let queueLag = 0;
    const d = createDegradation<{ live: boolean; checks: []; lag: number }>({
      clock,
      degradeAfterMs: 5_000,
      recoverAfterMs: 0,
      rules: [(s) => (s.lag > 100 ? 'limited' : undefined)],
    });
    const feed = () => d.update({ live: true, checks: [], lag: queueLag });
    queueLag = 500;
    feed();
    expect(d.level).toBe('normal');
    await clock.tick(5_000);
    expect(d.level).toBe('limited');
    queueLag = 0;
    feed();
    expect(d.level).toBe('normal');
    d.close();
  });

  it('attach() drives a load shedder: degraded, it still serves critical work', async () => {
    const clock = createFakeClock();
    const d = createDegradation({ clock, recoverAfterMs: 1_000 });
    const shedder = loadShedder({ clock });
    const detach = d.attach(shedder);
    d.update(liveWith('fail', 'pass'));
    expect(shedder.level).toBe('critical-only');
    await expect(shedder.execute(() => 'ok', { priority: 'critical' })).resolves.toBe('ok');
    await expect(shedder.execute(() => 'ok', { priority: 'normal' })).rejects.toBeInstanceOf(LoadShedError);
    d.update(liveWith('pass', 'pass'));
    await clock.tick(1_000);
    expect(shedder.level).toBe('normal');
    detach();
    d.update({ live: false, checks: [] });
    expect(d.level).toBe('offline');
    expect(shedder.level).toBe('normal');
    d.close();
  });

  it('the default rule', () => {
    expect(defaultDegradationRule({ live: true, checks: [] })).toBe('normal');
    expect(defaultDegradationRule({ live: false, checks: [] })).toBe('offline');
    expect(defaultDegradationRule(liveWith('fail', 'fail'))).toBe('offline');
    expect(defaultDegradationRule(liveWith('warn', 'fail'))).toBe('limited');
  });
});
