/**
 * Repeatable and cron jobs: schedules per queue, fired once per tick fleet-wide.
 *
 * A schedule (`queue.schedules.add`) is stored with the queue: a cron expression (5 fields, or 6
 * with seconds; in an IANA time zone) or a fixed period `everyMs` (ticks at whole multiples of it
 * since the epoch, so every process agrees), a payload, and the options of the items it makes.
 * Every process running a worker of the queue also runs its schedules' ticker; a tick is fired
 * in ONE store transaction that moves the schedule's `nextRunAt` by compare-and-set, records the
 * tick under a unique (queue, schedule, tick) key and inserts the item — so however many processes
 * race for a tick, and whichever of them is killed, each tick makes exactly one item.
 *
 * Missed ticks (no worker running, or the fleet was down) follow the schedule's `catchUp` rule:
 * - `last` (default): one item for the latest missed tick, then on schedule;
 * - `all`: one item per missed tick, oldest first (at most 100 per pass; a long gap is caught up
 *   over several passes);
 * - `none`: missed ticks are skipped; a tick fires only while it is at most 10 s late.
 * @module
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { s } from '../core/schema.js';
import { checkTimeZone, nextCronTime, parseCron } from './cron.js';
import { uuidv7 } from './ids.js';
import type { NewItem, QueueStore, StoredItem } from './store.js';
import { type CatchUp, requireFeatures, type ScheduleRecord, type ScheduleRun } from './store-features.js';

/** A tick of a `catchUp: 'none'` schedule fires only while at most this late, in ms. */
export const MISSED_AFTER_MS = 10_000;
/** The most ticks one pass fires for a `catchUp: 'all'` schedule. */
const MAX_RUNS_PER_PASS = 100;
/** Run records are kept this long after their tick (they only guard ticks that can still fire). */
const RUNS_KEPT_MS = 24 * 3600 * 1000;

/** Options of `queue.schedules.add`. */
export interface ScheduleOptions<T = unknown> {
  /** The schedule's name, unique in its queue (1-200 characters). Adding an existing name replaces it. */
  name: string;
  /** A cron expression: 5 fields, or 6 with seconds first. Exactly one of `cron` and `everyMs`. */
  cron?: string;
  /** The IANA time zone of `cron`. Default `UTC`. */
  tz?: string;
  /** A fixed period in ms (>= 1000): ticks at whole multiples of it since the epoch. */
  everyMs?: number;
  /** The payload of every run. Default null. */
  payload?: T;
  /** What to do with missed ticks (see the module doc). Default `last`. */
  catchUp?: CatchUp;
  /** Options of the items made. */
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
}

// Deliberate repetition: the public view of a schedule is kept apart from the store's ScheduleRecord
// (payload decoded, no queue or key id, fields documented for users), so each can change alone.
/** A schedule as listed. */
export interface ScheduleView<T = unknown> {
  readonly name: string;
  readonly cron: string | null;
  readonly tz: string;
  readonly everyMs: number | null;
  readonly catchUp: CatchUp;
  readonly payload: T | undefined;
  readonly priority: number;
  readonly maxAttempts: number | null;
  readonly timeoutMs: number | null;
  /** The next tick (ms epoch); `Number.MAX_SAFE_INTEGER` when the expression never matches again. */
  readonly nextRunAt: number;
  readonly lastRunAt: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

const scheduleSchema = s.object({
  name: s.string({ maxLength: 200 }),
  cron: s.optional(s.string({ maxLength: 200 })),
  tz: s.optional(s.string({ maxLength: 100 })),
  everyMs: s.optional(s.int({ min: 1000 })),
  payload: s.optional(s.unknown()),
  catchUp: s.optional(s.oneOf(['none', 'last', 'all'] as const)),
  priority: s.optional(s.int()),
  maxAttempts: s.optional(s.int({ min: 1 })),
  timeoutMs: s.optional(s.int({ min: 1 })),
});

/** What schedules need of their queue. @internal */
export interface SchedulesHost<T> {
  readonly name: string;
  readonly store: QueueStore;
  readonly clock: Clock;
  readonly maxAttempts: number;
  /** Throws when the queue is closed (or, with `write`, read-only). */
  check(write: boolean): void;
  seal(id: string, payload: T): { bytes: Uint8Array; keyId: string | null };
  open(item: Pick<StoredItem, 'id' | 'keyId' | 'payload'>): T;
  /** Reports items made for a schedule, and background errors. */
  fired(schedule: string, ids: readonly string[]): void;
  error(operation: string, error: unknown): void;
}

/** The AAD id of a schedule's stored payload (bound like an item's, to the queue and schedule). */
const payloadId = (name: string) => `schedule:${name}`;

/** The first tick of a spec strictly after `after`, or MAX_SAFE_INTEGER when none. */
function tickAfter(rec: Pick<ScheduleRecord, 'cron' | 'tz' | 'everyMs'>, after: number): number {
  if (rec.everyMs !== null) return (Math.floor(after / rec.everyMs) + 1) * rec.everyMs;
  return nextCronTime(parseCron(rec.cron!), after, rec.tz) ?? Number.MAX_SAFE_INTEGER;
}

/**
 * The ticks a pass fires for a schedule at `now`, and the next tick after them (pure; exported
 * for tests). @internal
 */
export function dueTicks(
  rec: Pick<ScheduleRecord, 'cron' | 'tz' | 'everyMs' | 'catchUp' | 'nextRunAt'>,
  now: number,
): { fire: number[]; next: number } {
  if (rec.nextRunAt > now) return { fire: [], next: rec.nextRunAt };
  const ticks: number[] = [];
  let t = rec.nextRunAt;
  if (rec.catchUp !== 'all' && rec.everyMs !== null) {
    // The latest tick <= now, directly.
    t = rec.nextRunAt + Math.floor((now - rec.nextRunAt) / rec.everyMs) * rec.everyMs;
  }
  for (let guard = 0; t <= now && guard < 100_000; guard++) {
    ticks.push(t);
    if (rec.catchUp === 'all' && ticks.length > MAX_RUNS_PER_PASS) break;
    t = tickAfter(rec, t);
  }
  if (rec.catchUp === 'all') {
    if (ticks.length > MAX_RUNS_PER_PASS)
      return { fire: ticks.slice(0, MAX_RUNS_PER_PASS), next: ticks[MAX_RUNS_PER_PASS]! };
    return { fire: ticks, next: t };
  }
  const last = ticks[ticks.length - 1]!;
  if (rec.catchUp === 'none' && now - last > MISSED_AFTER_MS) return { fire: [], next: t };
  return { fire: [last], next: t };
}

/** The schedules of a queue (`queue.schedules`). */
export class Schedules<T> {
  private timer: TimerHandle | null = null;
  private running = false;
  private pass: Promise<unknown> | null = null;
  private sweptAt = 0;

  /** @internal */
  constructor(private readonly q: SchedulesHost<T>) {}

  /**
   * Creates or replaces a schedule. Replacing one with the same cron/tz/everyMs keeps its next tick
   * (re-adding at every deploy neither skips nor repeats a tick); a changed spec starts at the
   * first tick after now.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'reports', store: sqliteStore({ path: ':memory:' }) });
   * await q.schedules.add({ name: 'nightly', cron: '0 30 2 * * *', tz: 'Europe/Paris', payload: { kind: 'daily' } });
   * await q.schedules.add({ name: 'heartbeat', everyMs: 60_000, catchUp: 'none' });
   * console.log((await q.schedules.list()).map((x) => x.name)); // [ 'heartbeat', 'nightly' ]
   * await q.close();
   * ```
   */
  async add(options: ScheduleOptions<T>): Promise<ScheduleView<T>> {
    this.q.check(true);
    const o = scheduleSchema.parse(options, 'schedules.add') as ScheduleOptions<T>;
    if ((o.cron === undefined) === (o.everyMs === undefined))
      throw new ConfigError('schedules.add.cron', 'exactly one of cron and everyMs', o.cron);
    if (o.cron !== undefined) parseCron(o.cron, 'schedules.add.cron');
    const tz = o.tz ?? 'UTC';
    checkTimeZone(tz, 'schedules.add.tz');
    if (o.everyMs !== undefined && o.tz !== undefined)
      throw new ConfigError('schedules.add.tz', 'only with cron (everyMs ticks are time-zone free)', o.tz);
    const f = requireFeatures(this.q.store, 'schedules');
    const now = this.q.clock.date();
    const spec = { cron: o.cron ?? null, tz, everyMs: o.everyMs ?? null };
    const old = (await f.listSchedules(this.q.name)).find((x) => x.name === o.name);
    const same =
      old !== undefined && old.cron === spec.cron && old.tz === spec.tz && old.everyMs === spec.everyMs;
    const { bytes, keyId } = this.q.seal(payloadId(o.name), (o.payload ?? null) as T);
    const rec: ScheduleRecord = {
      queue: this.q.name,
      name: o.name,
      ...spec,
      catchUp: o.catchUp ?? 'last',
      payload: bytes,
      keyId,
      priority: o.priority ?? 0,
      maxAttempts: o.maxAttempts ?? null,
      timeoutMs: o.timeoutMs ?? null,
      nextRunAt: same ? old.nextRunAt : tickAfter(spec, now - 1),
      lastRunAt: same ? old.lastRunAt : null,
      createdAt: old?.createdAt ?? now,
      updatedAt: now,
    };
    await f.putSchedule(rec);
    this.wake();
    return this.view(rec);
  }

  /**
   * The queue's schedules, by name.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'sl', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.schedules.list()); // []
   * await q.close();
   * ```
   */
  async list(): Promise<ScheduleView<T>[]> {
    this.q.check(false);
    const all = await requireFeatures(this.q.store, 'schedules').listSchedules(this.q.name);
    return all.map((r) => this.view(r));
  }

  /**
   * Deletes a schedule (items it already made stay); false when there was none.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'sr', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.schedules.remove('nope')); // false
   * await q.close();
   * ```
   */
  async remove(name: string): Promise<boolean> {
    this.q.check(true);
    return requireFeatures(this.q.store, 'schedules').removeSchedule(this.q.name, name);
  }

  private view(r: ScheduleRecord): ScheduleView<T> {
    let payload: T | undefined;
    try {
      payload = this.q.open({ id: payloadId(r.name), keyId: r.keyId, payload: r.payload });
    } catch {
      payload = undefined;
    }
    const { queue: _q, payload: _p, keyId: _k, ...rest } = r;
    return { ...rest, payload };
  }

  /**
   * Fires every due tick of the queue's schedules now (workers do this on their own; for tests and
   * for processes that run no worker). Resolves to the items made by this process.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'sf', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.schedules.fireDue()); // 0
   * await q.close();
   * ```
   */
  async fireDue(): Promise<number> {
    return (await this.firePass()).made;
  }

  /** One pass: fires due ticks; also says when the next tick of any schedule is due. */
  private async firePass(): Promise<{ made: number; nextAt: number }> {
    this.q.check(true);
    const f = requireFeatures(this.q.store, 'schedules');
    const now = this.q.clock.date();
    let made = 0;
    let nextAt = Number.POSITIVE_INFINITY;
    for (const rec of await f.listSchedules(this.q.name)) {
      const { fire, next } = dueTicks(rec, now);
      nextAt = Math.min(nextAt, next);
      if (fire.length === 0 && next === rec.nextRunAt) continue;
      const payload = this.q.open({ id: payloadId(rec.name), keyId: rec.keyId, payload: rec.payload });
      const runs: ScheduleRun[] = fire.map((tick) => ({ tick, item: this.item(rec, payload, tick, now) }));
      const ids = await f.fireSchedule(this.q.name, rec.name, rec.nextRunAt, runs, next, now);
      if (ids !== null && ids.length > 0) {
        made += ids.length;
        this.q.fired(rec.name, ids);
      }
    }
    if (now - this.sweptAt > 600_000) {
      this.sweptAt = now;
      await f.sweepRuns(this.q.name, now - RUNS_KEPT_MS);
    }
    return { made, nextAt };
  }

  private item(rec: ScheduleRecord, payload: T, tick: number, now: number): NewItem {
    const id = uuidv7(now);
    const { bytes, keyId } = this.q.seal(id, payload);
    return {
      id,
      payload: bytes,
      keyId,
      key: null,
      priority: rec.priority,
      runAt: tick,
      maxAttempts: rec.maxAttempts ?? this.q.maxAttempts,
      createdAt: now,
      ...(rec.timeoutMs === null ? {} : { timeoutMs: rec.timeoutMs }),
    };
  }

  /** Starts the ticker (workers do; idempotent). Stores without schedules: nothing to do. @internal */
  start(): void {
    if (this.running || this.q.store.features === undefined) return;
    this.running = true;
    this.arm(0);
  }

  /** Stops the ticker and waits for a pass in flight. @internal */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== null) this.q.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.pass?.catch(() => {});
  }

  private wake(): void {
    if (this.running && this.pass === null) this.arm(0);
  }

  private arm(ms: number): void {
    if (this.timer !== null) this.q.clock.clearTimeout(this.timer);
    this.timer = this.q.clock.setTimeout(() => {
      this.timer = null;
      this.pass = this.tick().finally(() => {
        this.pass = null;
      });
    }, ms);
    this.timer.unref();
  }

  /** One pass, then sleep until the earliest next tick (at most 1 s, to see schedules added elsewhere). */
  private async tick(): Promise<void> {
    if (!this.running) return;
    let wait = 1000;
    try {
      const { nextAt } = await this.firePass();
      wait = Math.min(wait, Math.max(5, nextAt - this.q.clock.date()));
    } catch (error) {
      this.q.error('schedules', error);
    }
    if (this.running) this.arm(wait);
  }
}
