import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Cron, cronMatches, localTime, nextCronTime, parseCron } from './cron.js';

/** The reference: scan minute by minute (then the seconds of a matching minute), first occurrences only. */
function bruteNext(c: Cron, after: number, tz: string, horizonMs: number): number | null {
  const secs = [...c.seconds].sort((a, b) => a - b);
  const startMin = Math.floor(after / 60_000) * 60_000;
  for (let m = startMin; m <= after + horizonMs; m += 60_000) {
    const w = localTime(m, tz);
    if (!cronMatches(c, { ...w, second: secs[0] ?? 0 })) continue;
    for (const s of secs) {
      const t = m + s * 1000;
      if (t <= after) continue;
      // Skip the second occurrence of a repeated wall time (fall back by one hour).
      const earlier = localTime(t - 3_600_000, tz);
      const here = localTime(t, tz);
      if (JSON.stringify(earlier) === JSON.stringify(here)) continue;
      return t;
    }
  }
  return null;
}

const part = (min: number, max: number) =>
  fc.oneof(
    fc.constant('*'),
    fc.integer({ min, max }).map(String),
    fc
      .tuple(fc.integer({ min, max }), fc.integer({ min, max }))
      .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.integer({ min: 1, max: 20 }).map((n) => `*/${n}`),
    fc.uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength: 4 }).map((xs) => xs.join(',')),
  );

describe('parseCron', () => {
  it('parses fields, names, steps and lists', () => {
    const c = parseCron('*/20 5-7 * JAN,jul MON-FRI');
    expect([...c.minutes]).toEqual([0, 20, 40]);
    expect([...c.hours]).toEqual([5, 6, 7]);
    expect([...c.months]).toEqual([1, 7]);
    expect([...c.weekdays]).toEqual([1, 2, 3, 4, 5]);
    expect([...c.seconds]).toEqual([0]);
    expect([...parseCron('* * * * * 7').weekdays]).toEqual([0]);
    expect([...parseCron('10/25 * * * * *').seconds]).toEqual([10, 35]);
  });

  it.each([
    ['* * * *', '4 fields'],
    ['60 * * * *', 'out of 0-59'],
    ['*/0 * * * *', 'step'],
    ['5-1 * * * *', 'backwards'],
    ['* * * FOO *', 'not a number'],
    ['1,,2 * * * *', 'empty list entry'],
  ])('rejects %s with a ConfigError (%s)', (expr, why) => {
    expect(() => parseCron(expr)).toThrow(why);
    try {
      parseCron(expr);
    } catch (error) {
      expect((error as { code?: string }).code).toBe('INVALID_OPTION');
    }
  });
});

describe('nextCronTime', () => {
  it('handles day-of-month OR day-of-week, and impossible dates', () => {
    const c = parseCron('0 0 13 * FRI');
    // 2026-02-01 → the 6th is a Friday, before the 13th.
    expect(new Date(nextCronTime(c, Date.UTC(2026, 1, 1))!).toISOString()).toBe('2026-02-06T00:00:00.000Z');
    expect(nextCronTime(parseCron('0 0 30 2 *'), Date.UTC(2026, 0, 1))).toBeNull();
  });

  it('skips the spring-forward gap and runs the repeated hour once (Europe/Paris)', () => {
    const c = parseCron('30 2 * * *');
    // 2026-03-29 02:30 does not exist in Paris: the next run is on the 30th.
    const spring = nextCronTime(c, Date.UTC(2026, 2, 28, 12), 'Europe/Paris')!;
    expect(new Date(spring).toISOString()).toBe('2026-03-30T00:30:00.000Z');
    // 2026-10-25 02:30 happens twice in Paris (CEST, then CET): it runs at the first only.
    const fall = nextCronTime(c, Date.UTC(2026, 9, 24, 12), 'Europe/Paris')!;
    expect(new Date(fall).toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(new Date(nextCronTime(c, fall, 'Europe/Paris')!).toISOString()).toBe('2026-10-26T01:30:00.000Z');
  });

  it('matches a brute-force scan (property, UTC and zones with DST)', () => {
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];
    // Starts near DST changes of 2026 and elsewhere.
    const starts = [
      Date.UTC(2026, 2, 8, 5),
      Date.UTC(2026, 2, 29, 0),
      Date.UTC(2026, 9, 25, 0),
      Date.UTC(2026, 10, 1, 5),
      Date.UTC(2026, 3, 5, 14),
      Date.UTC(2027, 0, 1, 0),
    ];
    fc.assert(
      fc.property(
        part(0, 59),
        part(0, 59),
        part(0, 23),
        fc.constantFrom(...zones),
        fc.constantFrom(...starts),
        fc.integer({ min: -7_200_000, max: 7_200_000 }),
        (sec, min, hour, tz, start, jitter) => {
          const c = parseCron(`${sec} ${min} ${hour} * * *`);
          const after = start + jitter;
          expect(nextCronTime(c, after, tz)).toBe(bruteNext(c, after, tz, 2 * 86_400_000));
        },
      ),
      { numRuns: 150 },
    );
  });
});
