/**
 * Cron expressions for queue schedules: parse, match and find the next run time in a time zone.
 *
 * Syntax: 5 fields (`minute hour day-of-month month day-of-week`) or 6 with seconds first
 * (`second minute hour day-of-month month day-of-week`). Each field takes `*`, a number, a range
 * `a-b`, a step `a-b/n` or `a/n` (or star-slash-n), and comma lists of those; months and weekdays also take
 * names (`JAN`…`DEC`, `SUN`…`SAT`); day-of-week 7 is Sunday; `?` is `*`. As in Vixie cron, when
 * both day-of-month and day-of-week are restricted a day matches if EITHER matches.
 *
 * Time zones are IANA names (`Europe/Paris`), default `UTC`. Around daylight-saving changes: a
 * local time that does not exist (the spring-forward gap) is skipped; a local time that occurs
 * twice (the fall-back hour) runs once, at its first occurrence.
 * @module
 */

import { ConfigError } from '../core/errors.js';

/** A parsed cron expression. */
export interface Cron {
  /** The expression as given. */
  readonly source: string;
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 0 = Sunday. */
  readonly weekdays: ReadonlySet<number>;
  /** Day-of-month is `*` (then only weekdays restrict days). */
  readonly anyDay: boolean;
  /** Day-of-week is `*` (then only day-of-month restricts days). */
  readonly anyWeekday: boolean;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  /** Value of the first name (1 for months, 0 for weekdays). */
  readonly nameBase?: number;
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day-of-week', min: 0, max: 7, names: WEEKDAYS, nameBase: 0 },
];

function bad(source: string, why: string, path: string): ConfigError {
  return new ConfigError(
    path,
    `a cron expression of 5 or 6 fields ("*/5 * * * *", "0 30 9 * * MON-FRI"): ${why}`,
    source,
  );
}

function value(text: string, f: FieldSpec, source: string, path: string): number {
  const upper = text.toUpperCase();
  const named = f.names?.indexOf(upper) ?? -1;
  if (named >= 0) return named + (f.nameBase ?? 0);
  if (!/^\d+$/.test(text)) throw bad(source, `"${text}" is not a number in the ${f.name} field`, path);
  const n = Number(text);
  if (n < f.min || n > f.max)
    throw bad(source, `${n} is out of ${f.min}-${f.max} in the ${f.name} field`, path);
  return n;
}

function field(text: string, f: FieldSpec, source: string, path: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') throw bad(source, `an empty list entry in the ${f.name} field`, path);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw bad(source, `"${part}" has two steps`, path);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        throw bad(source, `step "${stepText}" must be a whole number >= 1`, path);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = f.min;
      hi = f.max;
    } else {
      const dash = range!.indexOf('-', 1);
      if (dash > 0) {
        lo = value(range!.slice(0, dash), f, source, path);
        hi = value(range!.slice(dash + 1), f, source, path);
        if (hi < lo) throw bad(source, `range "${range}" runs backwards in the ${f.name} field`, path);
      } else {
        lo = value(range!, f, source, path);
        hi = stepText === undefined ? lo : f.max;
      }
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/**
 * Parses a cron expression (5 fields, or 6 with seconds first); throws a `ConfigError` (option
 * `path`) naming the field that is wrong.
 *
 * @example
 * ```ts
 * import { parseCron } from 'bulwark/durable';
 * const c = parseCron('0 0/15 9-17 * * MON-FRI');
 * console.log(c.minutes.has(45), c.weekdays.has(0)); // true false
 * ```
 */
export function parseCron(source: string, path = 'cron'): Cron {
  if (typeof source !== 'string') throw bad(String(source), 'not a string', path);
  const parts = source.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) throw bad(source, `${parts.length} fields`, path);
  if (parts.length === 5) parts.unshift('0');
  const sets = parts.map((p, i) => field(p, FIELDS[i]!, source, path));
  const weekdays = sets[5]!;
  if (weekdays.delete(7)) weekdays.add(0);
  const star = (p: string) => p === '*' || p === '?';
  return {
    source,
    seconds: sets[0]!,
    minutes: sets[1]!,
    hours: sets[2]!,
    days: sets[3]!,
    months: sets[4]!,
    weekdays,
    anyDay: star(parts[3]!),
    anyWeekday: star(parts[5]!),
  };
}

/** Wall-clock fields of an instant in a zone. @internal */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws a `ConfigError` unless `tz` is an IANA time zone this runtime knows. */
export function checkTimeZone(tz: string, path = 'schedule.tz'): void {
  try {
    formatter(tz);
  } catch {
    throw new ConfigError(path, 'an IANA time zone such as "UTC" or "Europe/Paris"', tz);
  }
}

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** The wall-clock time of `ms` in `tz`. @internal */
export function localTime(ms: number, tz: string): LocalTime {
  if (tz === 'UTC') {
    const d = new Date(ms);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
    };
  }
  const t: LocalTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const p of formatter(tz).formatToParts(new Date(ms))) {
    if (p.type in t) t[p.type as keyof LocalTime] = Number(p.value);
  }
  return t;
}

function asUtc(t: LocalTime): number {
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
}

/** The first instant whose wall-clock time in `tz` is `t`, or null when `t` does not exist there. */
function instantOf(t: LocalTime, tz: string): number | null {
  const wall = asUtc(t);
  if (tz === 'UTC') return wall;
  // Offsets within a day of `wall`: try each (earliest instant first) and keep those that map back.
  const offsets = new Set<number>();
  for (const probe of [wall - 86_400_000, wall, wall + 86_400_000]) {
    offsets.add(asUtc(localTime(probe, tz)) - probe);
  }
  let best: number | null = null;
  for (const off of offsets) {
    const at = wall - off;
    if (asUtc(localTime(at, tz)) === wall && (best === null || at < best)) best = at;
  }
  return best;
}

function dayMatches(c: Cron, year: number, month: number, day: number): boolean {
  const dom = c.days.has(day);
  const dow = c.weekdays.has(new Date(Date.UTC(year, month - 1, day)).getUTCDay());
  if (c.anyDay && c.anyWeekday) return true;
  if (c.anyDay) return dow;
  if (c.anyWeekday) return dom;
  return dom || dow;
}

/** True when the wall-clock time `t` matches `c`. @internal */
export function cronMatches(c: Cron, t: LocalTime): boolean {
  return (
    c.seconds.has(t.second) &&
    c.minutes.has(t.minute) &&
    c.hours.has(t.hour) &&
    c.months.has(t.month) &&
    dayMatches(c, t.year, t.month, t.day)
  );
}

function firstAtLeast(set: ReadonlySet<number>, from: number, max: number): number | null {
  for (let v = from; v <= max; v++) if (set.has(v)) return v;
  return null;
}

/**
 * The first instant strictly after `afterMs` (whole seconds) whose wall-clock time in `tz` matches
 * `cron`, or null when none exists within 8 years (e.g. `0 0 30 2 *`).
 *
 * @example
 * ```ts
 * import { nextCronTime, parseCron } from 'bulwark/durable';
 * const next = nextCronTime(parseCron('30 9 * * *'), Date.UTC(2026, 0, 1, 12), 'Europe/Paris');
 * console.log(new Date(next!).toISOString()); // 2026-01-02T08:30:00.000Z
 * ```
 */
export function nextCronTime(cron: Cron, afterMs: number, tz = 'UTC'): number | null {
  const from = Math.floor(afterMs / 1000) * 1000 + 1000;
  let wallFrom = localTime(from, tz);
  // Each pass skips one wall time that does not exist (DST gap) or ran already (repeated hour).
  for (let guard = 0; guard < 10_000; guard++) {
    const wall = nextWall(cron, wallFrom);
    if (wall === null) return null;
    const at = instantOf(wall, tz);
    if (at !== null && at >= from) return at;
    wallFrom = normal(wall, 0, 0, 0, 1);
  }
  return null;
}

/** `t` plus the given days, hours, minutes and seconds, normalised (Date.UTC carries). */
function normal(t: LocalTime, days: number, hours: number, minutes: number, seconds: number): LocalTime {
  return localTime(
    Date.UTC(t.year, t.month - 1, t.day + days, t.hour + hours, t.minute + minutes, t.second + seconds),
    'UTC',
  );
}

/** The first wall-clock time >= `start` (calendar arithmetic, no zone) matching `c`. */
function nextWall(c: Cron, start: LocalTime): LocalTime | null {
  let t = start;
  const lastYear = start.year + 8;
  while (t.year <= lastYear) {
    if (!c.months.has(t.month)) {
      t = {
        year: t.year + (t.month === 12 ? 1 : 0),
        month: (t.month % 12) + 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
      };
      continue;
    }
    if (!dayMatches(c, t.year, t.month, t.day)) {
      t = normal({ ...t, hour: 0, minute: 0, second: 0 }, 1, 0, 0, 0);
      continue;
    }
    const h = firstAtLeast(c.hours, t.hour, 23);
    if (h === null) {
      t = normal({ ...t, hour: 0, minute: 0, second: 0 }, 1, 0, 0, 0);
      continue;
    }
    if (h !== t.hour) t = { ...t, hour: h, minute: 0, second: 0 };
    const mi = firstAtLeast(c.minutes, t.minute, 59);
    if (mi === null) {
      t = normal({ ...t, minute: 0, second: 0 }, 0, 1, 0, 0);
      continue;
    }
    if (mi !== t.minute) t = { ...t, minute: mi, second: 0 };
    const s = firstAtLeast(c.seconds, t.second, 59);
    if (s === null) {
      t = normal({ ...t, second: 0 }, 0, 0, 1, 0);
      continue;
    }
    return { ...t, second: s };
  }
  return null;
}
