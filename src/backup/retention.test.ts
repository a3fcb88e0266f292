import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { _keys, selectRetention } from './retention.js';

const DAY = 86_400_000;

describe('selectRetention', () => {
  it('ISO weeks: 2021-01-03 is in 2020-W53, 2021-01-04 starts 2021-W01, 2026-12-31 is 2026-W53', () => {
    expect(_keys.isoWeekKey(Date.UTC(2021, 0, 3))).toBe('2020-W53');
    expect(_keys.isoWeekKey(Date.UTC(2021, 0, 4))).toBe('2021-W01');
    expect(_keys.isoWeekKey(Date.UTC(2026, 11, 31))).toBe('2026-W53');
    expect(_keys.isoWeekKey(Date.UTC(2027, 0, 4))).toBe('2027-W01');
  });

  it('GFS over a year of nightly backups: 7 daily + 4 weekly + 12 monthly, overlapping', () => {
    const start = Date.UTC(2026, 0, 1, 2);
    const items = Array.from({ length: 365 }, (_, i) => ({
      id: `b${String(i).padStart(3, '0')}`,
      createdAt: start + i * DAY,
    }));
    const { keep, remove } = selectRetention(items, { daily: 7, weekly: 4, monthly: 12 });
    // 7 dailies (Dec 25-31); weekly: 2026-W53 and -W52 end in those days, -W51 and -W50 add 2;
    // monthly: December's newest is a daily, the 11 earlier months add 11.
    expect(keep.size).toBe(7 + 2 + 11);
    expect(keep.has('b364')).toBe(true);
    expect(keep.get('b364')).toContain('newest');
    expect(keep.has('b030')).toBe(true); // 2026-01-31: January's newest
    expect(remove.length + keep.size).toBe(365);
  });

  it('properties: the newest is always kept; keep and remove partition the input; keepLast newest are kept', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 400 * DAY }), { minLength: 0, maxLength: 60 }),
        fc.record({
          keepLast: fc.integer({ min: 0, max: 5 }),
          daily: fc.integer({ min: 0, max: 10 }),
          weekly: fc.integer({ min: 0, max: 6 }),
          monthly: fc.integer({ min: 0, max: 13 }),
        }),
        (times, policy) => {
          const items = times.map((t, i) => ({ id: `i${i}`, createdAt: Date.UTC(2025, 0, 1) + t }));
          const { keep, remove } = selectRetention(items, policy);
          const sorted = [...items].sort((a, b) => b.createdAt - a.createdAt);
          if (sorted.length > 0) expect(keep.has(sorted[0]!.id)).toBe(true);
          expect(keep.size + remove.length).toBe(items.length);
          for (const id of remove) expect(keep.has(id)).toBe(false);
          for (const b of sorted.slice(0, policy.keepLast)) expect(keep.has(b.id)).toBe(true);
          // daily: at most one kept per day by the daily rule, and never more days than asked
          const dailyDays = new Set([...keep.values()].flat().filter((w) => w.startsWith('daily')));
          expect(dailyDays.size).toBeLessThanOrEqual(policy.daily);
        },
      ),
    );
  });

  it('refuses a bad policy with ConfigError', () => {
    expect(() => selectRetention([], { daily: -1 })).toThrow(/retention.daily must be an integer >= 0/);
    expect(() => selectRetention([], { dayly: 3 } as never)).toThrow(/did you mean retention.daily/);
  });
});
