/**
 * Degradation levels computed from health, with hysteresis: a worse level applies once it has
 * held for `degradeAfterMs` (default at once), a better one only once it has held for
 * `recoverAfterMs` (default 30 s), so a flapping dependency does not flap the service. A level
 * change is an event, and `attach(shedder)` feeds it to the priority load shedder, so a degraded
 * service keeps serving `critical` work.
 */

import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { s } from '../core/schema.js';
import { SHED_LEVELS, type ShedLevel } from '../limits/shed.js';
import { clockSchema, fn, ms, parse } from './options.js';

/** `normal → limited → critical-only → offline` (the load shedder's levels). */
export type DegradationLevel = ShedLevel;

/**
 * The levels, best first.
 *
 * @example
 * ```ts
 * import { DEGRADATION_LEVELS } from 'bulwark/health';
 * console.log(DEGRADATION_LEVELS); // ['normal', 'limited', 'critical-only', 'offline']
 * ```
 */
export const DEGRADATION_LEVELS: readonly DegradationLevel[] = SHED_LEVELS;

/** Severity of a level: 0 normal … 3 offline. */
function sev(level: DegradationLevel): number {
  return SHED_LEVELS.indexOf(level);
}

/** One entry of the target history: `level` holds from time `t` until the next entry. */
interface Entry {
  t: number;
  s: number;
}

const hysteresisSchema = s.object({ degradeAfterMs: ms, recoverAfterMs: ms });

/**
 * The hysteresis state machine, pure (no timers): feed it the target level computed from health
 * (`input`) and let time pass (`evaluate`). The level becomes worse, to L, when every target of
 * the last `degradeAfterMs` was at least as bad as L; it becomes better, to L, when every target
 * of the last `recoverAfterMs` was at least as good as L.
 *
 * @example
 * ```ts
 * import { Hysteresis } from 'bulwark/health';
 * const h = new Hysteresis('normal', 0, { degradeAfterMs: 0, recoverAfterMs: 30_000 });
 * h.input('critical-only', 1_000); // worse: at once
 * h.input('normal', 2_000);
 * console.log(h.evaluate(31_999), h.evaluate(32_000)); // critical-only normal
 * ```
 */
export class Hysteresis {
  private entries: Entry[];
  private current: number;
  /** The level before the first input (times before creation count as it). */
  private readonly origin: number;
  private readonly degradeMs: number;
  private readonly recoverMs: number;

  constructor(
    initial: DegradationLevel,
    now: number,
    options: { readonly degradeAfterMs: number; readonly recoverAfterMs: number },
  ) {
    s.oneOf(SHED_LEVELS).parse(initial, 'Hysteresis.initial');
    s.number().parse(now, 'Hysteresis.now');
    hysteresisSchema.parse(options, 'Hysteresis.options');
    this.current = sev(initial);
    this.origin = this.current;
    this.entries = [{ t: now, s: this.current }];
    this.degradeMs = options.degradeAfterMs;
    this.recoverMs = options.recoverAfterMs;
  }

  /** The level now. */
  get level(): DegradationLevel {
    return SHED_LEVELS[this.current]!;
  }

  /** The latest target. */
  get target(): DegradationLevel {
    return SHED_LEVELS[this.entries[this.entries.length - 1]!.s]!;
  }

  /** Records the target computed at `now` (non-decreasing times) and evaluates. */
  input(target: DegradationLevel, now: number): DegradationLevel {
    const s = sev(target);
    const last = this.entries[this.entries.length - 1]!;
    if (s !== last.s) {
      if (now <= last.t) last.s = s;
      else this.entries.push({ t: now, s });
    }
    return this.evaluate(now);
  }

  /** Applies what the windows allow at `now`; returns the level. */
  evaluate(now: number): DegradationLevel {
    const best = this.extreme(now - this.degradeMs, now, Math.min);
    if (best > this.current) {
      this.current = best;
    } else {
      const worst = this.extreme(now - this.recoverMs, now, Math.max);
      if (worst < this.current) this.current = worst;
    }
    this.prune(now);
    return this.level;
  }

  /**
   * When `evaluate` may next change the level (the time an entry leaves a window), or undefined
   * when it cannot without a new input (the target equals the level).
   */
  nextChangeAt(now: number): number | undefined {
    if (this.entries[this.entries.length - 1]!.s === this.current) return undefined;
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.entries.length; i++) {
      const t = this.entries[i]!.t;
      if (t + this.degradeMs > now && t + this.degradeMs < next) next = t + this.degradeMs;
      if (t + this.recoverMs > now && t + this.recoverMs < next) next = t + this.recoverMs;
    }
    return next === Number.POSITIVE_INFINITY ? undefined : next;
  }

  /** min or max of the targets over [from, to]. */
  private extreme(from: number, _to: number, pick: (a: number, b: number) => number): number {
    const e = this.entries;
    let i = e.length - 1;
    let v = e[i]!.s;
    while (i > 0 && e[i]!.t > from) {
      i--;
      v = pick(v, e[i]!.s);
    }
    // The window reaches back before the first input: the initial level held then.
    if (i === 0 && e[0]!.t > from) v = pick(v, this.origin);
    return v;
  }

  /** Drops entries that no window can reach any more. */
  private prune(now: number): void {
    const horizon = now - Math.max(this.degradeMs, this.recoverMs);
    let k = 0;
    while (k + 1 < this.entries.length && this.entries[k + 1]!.t <= horizon) k++;
    if (k > 0) this.entries = this.entries.slice(k);
  }
}

/** What the degradation rules read (a health snapshot; `bulwark/health`'s monitor provides it). */
export interface DegradationInput {
  readonly live: boolean;
  readonly checks: readonly { readonly status: 'pass' | 'warn' | 'fail'; readonly critical: boolean }[];
}

/** A rule: the level the service should be at, or undefined for no opinion. */
export type DegradationRule<S extends DegradationInput = DegradationInput> = (
  snapshot: S,
) => DegradationLevel | undefined;

/**
 * The default rule: not live, or every check failing → `offline`; a critical check failing →
 * `critical-only`; another check failing → `limited`; else `normal`.
 *
 * @example
 * ```ts
 * import { defaultDegradationRule } from 'bulwark/health';
 * console.log(defaultDegradationRule({ live: true, checks: [{ status: 'fail', critical: false }, { status: 'pass', critical: true }] })); // limited
 * ```
 */
export function defaultDegradationRule(snapshot: DegradationInput): DegradationLevel {
  if (!snapshot.live) return 'offline';
  const checks = snapshot.checks;
  if (checks.length > 0 && checks.every((c) => c.status === 'fail')) return 'offline';
  let level: DegradationLevel = 'normal';
  for (const c of checks) {
    if (c.status !== 'fail') continue;
    if (c.critical) return 'critical-only';
    level = 'limited';
  }
  return level;
}

/** Options of `createDegradation()` (and `createHealthMonitor({ degradation })`). */
export interface DegradationOptions<S extends DegradationInput = DegradationInput> {
  /** Extra rules; the level aimed at is the worst of all the rules' answers. */
  rules?: readonly DegradationRule<S>[];
  /** Apply `defaultDegradationRule` too. Default true. */
  defaultRule?: boolean;
  /** A worse level applies once it has held this long. Default 0 (at once). */
  degradeAfterMs?: number;
  /** A better level applies only once it has held this long. Default 30 000 ms. */
  recoverAfterMs?: number;
  /** Default `normal`. */
  initial?: DegradationLevel;
  clock?: Clock;
}

/** A level change. */
export interface DegradationChange {
  readonly type: 'level';
  readonly from: DegradationLevel;
  readonly to: DegradationLevel;
  /** The level the rules aim at now. */
  readonly target: DegradationLevel;
}

/** Something with a degradation-level setter: the core `loadShedder` fits. */
export interface LevelSink {
  setLevel(level: DegradationLevel): void;
}

const optionsSchema = s.object({
  rules: s.optional(s.array(fn<DegradationRule>())),
  defaultRule: s.optional(s.boolean()),
  degradeAfterMs: s.optional(ms),
  recoverAfterMs: s.optional(ms),
  initial: s.optional(s.oneOf(SHED_LEVELS)),
  clock: s.optional(clockSchema),
});

/**
 * Tracks the degradation level. See `createDegradation()`.
 *
 * @example
 * ```ts
 * import { Degradation } from 'bulwark/health';
 * const d = new Degradation({ recoverAfterMs: 0 });
 * d.update({ live: true, checks: [{ status: 'fail', critical: false }, { status: 'pass', critical: true }] });
 * console.log(d.level); // limited
 * d.close();
 * ```
 */
export class Degradation<S extends DegradationInput = DegradationInput> {
  private readonly machine: Hysteresis;
  private readonly clock: Clock;
  private readonly rules: readonly DegradationRule<S>[];
  private readonly emitter = new Emitter<DegradationChange>();
  private timer: TimerHandle | undefined;
  private timerAt = Number.NaN;
  private last: S | undefined;
  private forced: DegradationLevel | undefined;

  constructor(options: DegradationOptions<S> = {}) {
    const o = parse('degradation', optionsSchema, options) as unknown as DegradationOptions<S>;
    this.clock = o.clock ?? systemClock;
    this.rules = [
      ...(o.defaultRule === false ? [] : [defaultDegradationRule as DegradationRule<S>]),
      ...(o.rules ?? []),
    ];
    this.machine = new Hysteresis(o.initial ?? 'normal', this.clock.now(), {
      degradeAfterMs: o.degradeAfterMs ?? 0,
      recoverAfterMs: o.recoverAfterMs ?? 30_000,
    });
  }

  /** The current level (a forced level while an operator's override lasts). */
  get level(): DegradationLevel {
    return this.forced ?? this.machine.level;
  }

  /**
   * Forces the level (an operator's override; `createHealthMonitor` ends it after its duration),
   * or with undefined lets the rules decide again. Attached sinks follow.
   *
   * @example
   * ```ts
   * import { createDegradation } from 'bulwark/health';
   * const d = createDegradation();
   * d.force('limited');
   * console.log(d.level); // limited
   * d.force(undefined);
   * console.log(d.level); // normal
   * ```
   */
  force(level: DegradationLevel | undefined): void {
    this.apply(() => {
      this.forced = level;
      return this.level;
    });
  }

  /** The level the rules aim at (the level follows it through the hysteresis). */
  get target(): DegradationLevel {
    return this.machine.target;
  }

  /** Feeds a health snapshot: the rules compute a target, the hysteresis decides the level. */
  update(snapshot: S): DegradationLevel {
    this.last = snapshot;
    let target = 0;
    for (const rule of this.rules) {
      let l: DegradationLevel | undefined;
      try {
        l = rule(snapshot);
      } catch {
        continue; // a broken rule has no opinion
      }
      if (l !== undefined && SHED_LEVELS.includes(l)) target = Math.max(target, sev(l));
    }
    return this.apply(() => this.machine.input(SHED_LEVELS[target]!, this.clock.now()));
  }

  /** Subscribes to level changes. */
  on(_event: 'change', listener: Listener<DegradationChange>): Disposer {
    return this.emitter.on(listener);
  }

  /**
   * Feeds the level to a load shedder (its `setLevel`) now and on every change, so that a
   * degraded service sheds low priorities and keeps serving `critical` work. Returns a disposer.
   */
  attach(sink: LevelSink): Disposer {
    sink.setLevel(this.level);
    return this.emitter.on((e) => sink.setLevel(e.to));
  }

  /** Cancels the pending re-evaluation timer. */
  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private apply(step: () => DegradationLevel): DegradationLevel {
    const from = this.level;
    step();
    const to = this.level;
    if (to !== from) this.emitter.emit({ type: 'level', from, to, target: this.machine.target });
    this.schedule();
    return to;
  }

  private schedule(): void {
    const now = this.clock.now();
    const at = this.machine.nextChangeAt(now);
    if (at === this.timerAt && this.timer !== undefined) return;
    this.close();
    this.timerAt = Number.NaN;
    if (at === undefined) return;
    this.timerAt = at;
    const t = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.NaN;
      this.apply(() => this.machine.evaluate(this.clock.now()));
    }, at - now);
    t.unref();
    this.timer = t;
  }

  /** The last snapshot fed to `update`. @internal */
  get lastInput(): S | undefined {
    return this.last;
  }
}

/**
 * Makes a degradation tracker: feed it health snapshots, read `level`, attach a load shedder.
 * (`createHealthMonitor` makes one for you: `monitor.degradation`.)
 *
 * @example
 * ```ts
 * import { loadShedder } from 'bulwark';
 * import { createDegradation } from 'bulwark/health';
 * import { createFakeClock } from 'bulwark/testing';
 * const clock = createFakeClock();
 * const degradation = createDegradation({ recoverAfterMs: 30_000, clock });
 * const shedder = loadShedder();
 * degradation.attach(shedder);
 * degradation.update({ live: true, checks: [{ status: 'fail', critical: true }, { status: 'pass', critical: false }] });
 * console.log(shedder.level); // critical-only
 * degradation.update({ live: true, checks: [{ status: 'pass', critical: true }, { status: 'pass', critical: false }] });
 * await clock.tick(30_000);
 * console.log(shedder.level); // normal
 * ```
 */
export function createDegradation<S extends DegradationInput = DegradationInput>(
  options: DegradationOptions<S> = {},
): Degradation<S> {
  return new Degradation(options);
}
