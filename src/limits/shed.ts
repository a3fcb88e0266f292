/**
 * Priority load shedding (after Stripe's fleet-usage and worker-utilisation shedders): under
 * pressure the lowest priorities are refused first, and the top of the capacity is reserved
 * for `critical`. Pressure is a ratio (1 = full) taken as the largest of: the concurrency in
 * flight over `capacity`, a recent latency percentile over `latency.thresholdMs`, and any
 * custom `signals` (a queue's wait, event-loop lag, …). A priority is shed when the pressure
 * exceeds its threshold; an operator's degradation `level` sheds whole classes at once.
 */

import type { Clock } from '../core/clock.js';
import { type ComponentOperation, defineDescriptor, type Figures } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { ConfigError, RejectedError } from '../core/errors.js';
import { type EventBase, PolicyEmitter, reportError } from '../core/events.js';
// Deliberate repetition: the list of validators this file imports (import lists match by shape).
import {
  checkEnum,
  checkFunction,
  checkKeys,
  checkNumber,
  checkObject,
  checkString,
  optNumber,
  rules,
} from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { finiteOrNull } from '../core/settings-operation.js';
import { shedderOperations } from './limit-operations.js';
import { QuantileSketch } from './quantile.js';

/** The four priority classes, most important first. Any other priority counts as `normal`. */
export const SHED_PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
/** A priority class the shedder knows. */
export type ShedPriority = (typeof SHED_PRIORITIES)[number];

/** Degradation levels, from none to everything shed. */
export const SHED_LEVELS = ['normal', 'limited', 'critical-only', 'offline'] as const;
/**
 * A degradation level set by an operator or a health check:
 * `normal` (pressure decides), `limited` (only `high` and `critical` admitted),
 * `critical-only`, `offline` (everything shed).
 */
export type ShedLevel = (typeof SHED_LEVELS)[number];

/** Why a call was shed. */
export type ShedReason = 'level' | 'concurrency' | 'latency' | 'signal';

/** Options of `loadShedder()`. */
export interface LoadShedderOptions extends CommonOptions {
  /** Executions in flight at full capacity (pressure = in flight / capacity). Default Infinity (off). */
  capacity?: number;
  /**
   * The pressure (1 = full) above which each priority is shed. Must not decrease with
   * priority. Default `{ critical: 1, high: 0.8, normal: 0.7, low: 0.6 }`: 20% of the capacity
   * is reserved for `critical`, and below that the lower classes go first.
   */
  thresholds?: Partial<Record<ShedPriority, number>>;
  /**
   * Latency as a signal: pressure = the `quantile` of the latencies of recent calls /
   * `thresholdMs`. Not sampled while fewer than `minSamples` calls are in the window.
   */
  latency?: {
    /** The latency that counts as full (pressure 1), in ms. */
    thresholdMs: number;
    /** Default 0.9. */
    quantile?: number;
    /**
     * Default 5 000 ms: the quantile covers the last `windowMs` to 2 × `windowMs` (Bulwark's one
     * quantile sketch), older samples are forgotten, so the signal recovers when calls stop.
     */
    windowMs?: number;
    /** Default 10. */
    minSamples?: number;
  };
  /** Extra pressure signals, each returning a ratio (1 = full), e.g. `() => pool.queued / 100`. */
  signals?: readonly (() => number)[];
  /** The initial degradation level. Default `normal`. */
  /** Shedding switched on (default `true`); `setEnabled()` changes it at run time. Off, a pass-through. */
  enabled?: boolean;
  level?: ShedLevel;
}

/** Events of the load shedder. */
export type LoadShedEvent =
  | (EventBase & {
      readonly kind: 'loadShedder';
      readonly event: 'shed';
      readonly reason: ShedReason;
      /** The pressure (1 = full) when the call was shed. */
      readonly pressure: number;
      readonly level: ShedLevel;
    })
  | (EventBase & {
      readonly kind: 'loadShedder';
      readonly event: 'levelChange';
      readonly from: ShedLevel;
      readonly to: ShedLevel;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    loadShedder: LoadShedEvent;
  }
}

/**
 * A load shedder refused the call: its priority is shed under the current pressure or level.
 * Answer 503 (or 429), or serve a degraded result.
 *
 * @example
 * ```ts nocheck
 * import { LoadShedError } from 'bulwark';
 * try { await policy.execute(work); } catch (err) {
 *   if (err instanceof LoadShedError) console.log(err.priority, err.trigger);
 * }
 * ```
 */
export class LoadShedError extends RejectedError {
  override readonly code: 'LOAD_SHED' = 'LOAD_SHED';
  /** The shedder's name. */
  readonly shedder: string;
  /** The priority of the call that was shed. */
  readonly priority: string;
  /** What shed it: the level, or concurrency, latency or signal pressure. (`reason` is `shed`.) */
  readonly trigger: ShedReason;
  /** The pressure (1 = full) at the time. */
  readonly pressure: number;
  /** The degradation level at the time. */
  readonly level: ShedLevel;

  constructor(shedder: string, priority: string, trigger: ShedReason, pressure: number, level: ShedLevel) {
    super(
      'LOAD_SHED',
      'shed',
      Number.NaN,
      trigger === 'level'
        ? `Load shedder "${shedder}" is at level "${level}", which sheds "${priority}" calls; retry later`
        : `Load shedder "${shedder}" shed a "${priority}" call under ${trigger} pressure ${pressure.toFixed(2)}; retry later with backoff`,
    );
    this.shedder = shedder;
    this.priority = priority;
    this.trigger = trigger;
    this.pressure = pressure;
    this.level = level;
  }
}

/** Rank of a priority: 0 critical … 3 low (others: normal). */
function rankOf(priority: string): number {
  switch (priority) {
    case 'critical':
      return 0;
    case 'high':
      return 1;
    case 'low':
      return 3;
    default:
      return 2;
  }
}

/** Lowest rank admitted at each level (index = level). */
const LEVEL_MAX_RANK = [3, 1, 0, -1] as const;

/** A decision: null when admitted, else why shed and at what pressure. */
export interface ShedDecision {
  readonly reason: ShedReason;
  readonly pressure: number;
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'loadShedder',
  help: 'Sheds calls by priority under concurrency, latency or signal pressure, or by degradation level.',
  category: 'shedder',
  states: ['normal', 'shed-low', 'critical-only', 'shed-all'],
  gauges: {
    inFlight: 'Calls running now.',
    latencyMs: 'The latency quantile the shedder watches, in ms (NaN without latency).',
  },
  counters: { admissions: 'Calls admitted.', rejections: 'Calls shed (any priority).' },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A load-shedding policy. See `loadShedder()`.
 */
export class LoadShedderPolicy extends PolicyBase<never, LoadShedEvent> {
  readonly kind = 'loadShedder';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<LoadShedEvent>();
  private readonly clock: Clock;
  private capacity: number;
  /** Per rank: the most calls in flight at which a call of that rank is still admitted. */
  private readonly maxInflight: Float64Array;
  private readonly thresholds: Float64Array;
  private readonly latency: QuantileSketch | null;
  private readonly latencyThreshold: number;
  private readonly latencyPercentile: number;
  private readonly latencyMinSamples: number;
  private readonly signals: readonly (() => number)[];
  /** True when only concurrency and level matter (no clock read, no signal call per call). */
  private readonly simple: boolean;
  private levelIndex: number;
  private inflight = 0;
  private admitted = 0;
  private readonly shedCounts = [0, 0, 0, 0];
  private on: boolean;

  constructor(options: LoadShedderOptions) {
    super();
    checkKeys('loadShedder', options as unknown as Record<string, unknown>, [
      'capacity',
      'thresholds',
      'latency',
      'signals',
      'level',
      'enabled',
      'name',
      'registry',
      'clock',
    ]);
    this.name = checkString('loadShedder.name', options.name, 'loadShedder');
    if (options.enabled !== undefined && typeof options.enabled !== 'boolean') {
      throw new ConfigError('loadShedder.enabled', 'a boolean', options.enabled);
    }
    this.on = options.enabled ?? true;
    this.clock = clockOf(options.clock, 'loadShedder.clock');
    this.capacity = optNumber(
      'loadShedder.capacity',
      options.capacity,
      rules.intOrInfinity(1),
      Number.POSITIVE_INFINITY,
    );
    const t = checkObject('loadShedder.thresholds', options.thresholds);
    checkKeys('loadShedder.thresholds', t, SHED_PRIORITIES);
    const defaults = [1, 0.8, 0.7, 0.6];
    this.thresholds = new Float64Array(4);
    for (let r = 0; r < 4; r++) {
      const p = SHED_PRIORITIES[r]!;
      this.thresholds[r] = optNumber(`loadShedder.thresholds.${p}`, t[p], rules.atLeast(0), defaults[r]!);
      if (r > 0 && this.thresholds[r]! > this.thresholds[r - 1]!) {
        throw new ConfigError(
          `loadShedder.thresholds.${p}`,
          `<= the threshold of ${SHED_PRIORITIES[r - 1]} (${this.thresholds[r - 1]}): a lower priority must never be admitted where a higher one is shed`,
          this.thresholds[r],
        );
      }
    }
    this.maxInflight = new Float64Array(4);
    this.setCapacity(this.capacity);
    if (options.latency !== undefined) {
      const l = checkObject('loadShedder.latency', options.latency);
      checkKeys('loadShedder.latency', l, ['thresholdMs', 'quantile', 'windowMs', 'minSamples']);
      this.latencyThreshold = checkNumber('loadShedder.latency.thresholdMs', l.thresholdMs, rules.positive);
      this.latencyPercentile = optNumber('loadShedder.latency.quantile', l.quantile, rules.ratio, 0.9);
      const windowMs = optNumber('loadShedder.latency.windowMs', l.windowMs, rules.positive, 5_000);
      this.latencyMinSamples = optNumber('loadShedder.latency.minSamples', l.minSamples, rules.int(1), 10);
      this.latency = new QuantileSketch(windowMs, this.clock);
    } else {
      this.latency = null;
      this.latencyThreshold = 1;
      this.latencyPercentile = 0.9;
      this.latencyMinSamples = 1;
    }
    if (options.signals !== undefined) {
      if (!Array.isArray(options.signals)) {
        throw new ConfigError('loadShedder.signals', 'an array of functions () => number', options.signals);
      }
      options.signals.forEach((s, i) => {
        checkFunction(`loadShedder.signals[${i}]`, s);
      });
      this.signals = Object.freeze([...options.signals]);
    } else {
      this.signals = [];
    }
    this.simple = this.latency === null && this.signals.length === 0;
    this.levelIndex = SHED_LEVELS.indexOf(
      checkEnum('loadShedder.level', options.level, SHED_LEVELS, 'normal'),
    );
    this._join('loadShedder', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    const st = this.stats;
    const shed = st.shed.critical + st.shed.high + st.shed.normal + st.shed.low;
    return {
      state: st.level,
      gauges: { inFlight: st.inFlight, latencyMs: st.latencyMs },
      counters: { admissions: st.admitted, rejections: shed },
      details: { shedByPriority: st.shed, capacity: finiteOrNull(this.capacity), enabled: this.on },
    };
  }

  /**
   * Changes the capacity at run time (an integer >= 1, or Infinity for none): the next call is
   * judged against it; calls in flight run on.
   *
   * @example
   * ```ts
   * import { loadShedder } from 'bulwark';
   * const shedder = loadShedder({ capacity: 100 });
   * shedder.setCapacity(150);
   * ```
   */
  setCapacity(capacity: number): void {
    const c = checkNumber('loadShedder.setCapacity(capacity)', capacity, rules.intOrInfinity(1));
    this.capacity = c;
    for (let r = 0; r < 4; r++)
      this.maxInflight[r] = c === Number.POSITIVE_INFINITY ? c : Math.floor(this.thresholds[r]! * c + 1e-9);
  }

  /** The control plane's actions: `setLimits` (capacity), `setLevel`, `setEnabled`. */
  operations(): readonly ComponentOperation[] {
    return shedderOperations(this, () => ({
      capacity: finiteOrNull(this.capacity),
      level: this.level,
      enabled: this.on,
    }));
  }

  /** The current degradation level. */
  get level(): ShedLevel {
    return SHED_LEVELS[this.levelIndex]!;
  }

  /**
   * Switches shedding on or off at run time. Off, the policy is a pass-through: calls are neither
   * shed nor counted (calls started while off do not count as in flight later).
   */
  setEnabled(on: boolean): void {
    if (typeof on !== 'boolean') throw new ConfigError('loadShedder.setEnabled(on)', 'a boolean', on);
    if (on === this.on) return;
    this.on = on;
    this._offChanged();
  }

  /** Switched off: pipelines leave the policy out of their chain. @internal */
  override get _off(): boolean {
    return !this.on;
  }

  /** True while shedding is switched on. */
  get enabled(): boolean {
    return this.on;
  }

  /** Sets the degradation level (emits `levelChange` when it changes). */
  setLevel(level: ShedLevel): void {
    if (level === undefined) {
      throw new ConfigError('loadShedder.setLevel(level)', `one of ${SHED_LEVELS.join(', ')}`, level);
    }
    // Deliberate repetition: a change guard then an event built behind emitter.wants() (the EventBase
    // fields, then the event's own), inline so no event object is made when nobody listens.
    const to = SHED_LEVELS.indexOf(checkEnum('loadShedder.setLevel(level)', level, SHED_LEVELS, 'normal'));
    const from = this.levelIndex;
    if (to === from) return;
    this.levelIndex = to;
    if (this.emitter.wants('levelChange')) {
      this.emitter.emit({
        kind: 'loadShedder',
        event: 'levelChange',
        name: this.name,
        priority: 'normal',
        operation: undefined,
        attempt: 0,
        from: SHED_LEVELS[from]!,
        to: SHED_LEVELS[to]!,
      });
    }
  }

  /** The pressure now (1 = full), the largest of the signals; concurrency counts the next call. */
  get pressure(): number {
    return this.measure(this.clock.now()).pressure;
  }

  /** Live figures and counters since creation. */
  get stats(): {
    readonly level: ShedLevel;
    readonly inFlight: number;
    readonly admitted: number;
    readonly shed: Readonly<Record<ShedPriority, number>>;
    readonly latencyMs: number;
  } {
    const c = this.shedCounts;
    return {
      level: this.level,
      inFlight: this.inflight,
      admitted: this.admitted,
      shed: { critical: c[0]!, high: c[1]!, normal: c[2]!, low: c[3]! },
      latencyMs:
        this.latency === null
          ? Number.NaN
          : this.latency.cachedQuantile(this.latencyPercentile, this.latencyMinSamples),
    };
  }

  /**
   * What would happen to a call of `priority` now: null when it would be admitted, else why it
   * would be shed. Pure: changes nothing.
   */
  check(priority: string): ShedDecision | null {
    return this.decide(rankOf(priority));
  }

  private measure(now: number): { pressure: number; reason: ShedReason } {
    let pressure = this.capacity === Number.POSITIVE_INFINITY ? 0 : (this.inflight + 1) / this.capacity;
    let reason: ShedReason = 'concurrency';
    if (this.latency !== null) {
      const p = this.latency.cachedQuantile(this.latencyPercentile, this.latencyMinSamples, now);
      if (!Number.isNaN(p) && p / this.latencyThreshold > pressure) {
        pressure = p / this.latencyThreshold;
        reason = 'latency';
      }
    }
    for (let i = 0; i < this.signals.length; i++) {
      let v: number;
      try {
        v = this.signals[i]!();
      } catch (error) {
        reportError(`loadShedder "${this.name}" signal ${i}`, error);
        continue;
      }
      if (typeof v === 'number' && v > pressure) {
        pressure = v;
        reason = 'signal';
      }
    }
    return { pressure, reason };
  }

  private decide(rank: number): ShedDecision | null {
    if (rank > LEVEL_MAX_RANK[this.levelIndex as 0 | 1 | 2 | 3]) {
      return {
        reason: 'level',
        pressure: this.simple ? (this.inflight + 1) / this.capacity : this.measure(this.clock.now()).pressure,
      };
    }
    if (this.simple) {
      if (this.inflight < this.maxInflight[rank]!) return null;
      return { reason: 'concurrency', pressure: (this.inflight + 1) / this.capacity };
    }
    if (this.inflight >= this.maxInflight[rank]!) {
      return { reason: 'concurrency', pressure: (this.inflight + 1) / this.capacity };
    }
    const m = this.measure(this.clock.now());
    // Concurrency was checked above with the exact integer bound.
    if (m.reason !== 'concurrency' && m.pressure > this.thresholds[rank]!) return m;
    return null;
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    if (!this.on) return start(ctx, next);
    const rank = rankOf(ctx.priority);
    const d =
      this.simple && this.levelIndex === 0 && this.inflight < this.maxInflight[rank]!
        ? null
        : this.decide(rank);
    if (d !== null) return Promise.reject(this.shed(ctx, rank, d));
    this.inflight++;
    this.admitted++;
    if (this.latency === null) return start(ctx, next).then(this.releaseOk, this.releaseError);
    const t0 = this.clock.now();
    return start(ctx, next).then(
      (value) => {
        this.inflight--;
        const now = this.clock.now();
        this.latency!.record(now - t0, now);
        return value;
      },
      (error: unknown) => {
        this.inflight--;
        const now = this.clock.now();
        this.latency!.record(now - t0, now);
        throw error;
      },
    );
  }

  private readonly releaseOk = (value: unknown): unknown => {
    this.inflight--;
    return value;
  };

  private readonly releaseError = (error: unknown): never => {
    this.inflight--;
    throw error;
  };

  private shed(ctx: ExecutionContext, rank: number, d: ShedDecision): LoadShedError {
    this.shedCounts[rank]!++;
    const level = this.level;
    if (this.emitter.wants('shed')) {
      this.emitter.emit({
        kind: 'loadShedder',
        event: 'shed',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        reason: d.reason,
        pressure: d.pressure,
        level,
      });
    }
    return new LoadShedError(this.name, ctx.priority, d.reason, d.pressure, level);
  }
}

/**
 * Makes a priority load shedder.
 *
 * @example
 * ```ts nocheck
 * import { loadShedder } from 'bulwark';
 * const shedder = loadShedder({ capacity: 100, latency: { thresholdMs: 500 } });
 * await shedder.execute(work, { priority: 'low' });
 * shedder.setLevel('critical-only');
 * ```
 */
export function loadShedder(options: LoadShedderOptions = {}): LoadShedderPolicy {
  return new LoadShedderPolicy(checkObject('loadShedder', options) as unknown as LoadShedderOptions);
}
