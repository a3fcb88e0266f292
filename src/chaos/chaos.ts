/**
 * In-process chaos strategies: policies that inject faults, latency, fake outcomes or
 * arbitrary behaviour into a pipeline, at a rate, on a schedule (first N calls, a time
 * window), switchable at run time through a control handle. Every injection is an event.
 *
 * When a call is not injected (disabled, outside its schedule, or the random draw says no)
 * the policy passes the call straight through: `start(ctx, next)` with no `.then` of its own.
 */

import { type Clock, type RandomSource, systemRandom } from '../core/clock.js';
import { type ComponentOperation, defineDescriptor, type Figures } from '../core/component.js';
import { type Context, type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { ConfigError } from '../core/errors.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
// Deliberate repetition: the list of validators this file imports (import lists match by shape).
import {
  checkFunction,
  checkKeys,
  checkNumber,
  checkObject,
  checkString,
  type Dynamic,
  DynamicNumber,
  type NumberRule,
  optNumber,
  rules,
} from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { sleep } from '../core/sleep.js';
import { chaosOperations } from './operations.js';

/** The four chaos strategies. */
export type ChaosStrategy = 'fault' | 'latency' | 'outcome' | 'behavior';

/** Events of the chaos strategies: one `inject` per injection, a `stateChange` when switched. */
export type ChaosEvent =
  | (EventBase & {
      readonly kind: 'chaos';
      readonly event: 'stateChange';
      readonly from: 'on' | 'off';
      readonly to: 'on' | 'off';
    })
  | (EventBase & {
      readonly kind: 'chaos';
      readonly event: 'inject';
      /** Which strategy injected. */
      readonly strategy: ChaosStrategy;
      /** For `latency`: the injected delay in ms. */
      readonly delayMs?: number;
      /** For `fault`: the injected error. */
      readonly error?: unknown;
      /** For `outcome`: the injected result. */
      readonly result?: unknown;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    chaos: ChaosEvent;
  }
}

/**
 * A time window of a chaos schedule. Relative: `{ fromMs, toMs }`, in ms since the policy's
 * start (its creation, or the last `control.restart()`), measured on its clock's `now()`.
 * Absolute: `{ from, to }`, wall-clock times (a `Date` or epoch ms) compared with the clock's
 * `date()`. `from` is inclusive, `to` exclusive; a missing bound is open.
 */
export type ChaosWindow =
  | { readonly fromMs?: number; readonly toMs?: number }
  | { readonly from?: Date | number; readonly to?: Date | number };

/** Options every chaos strategy accepts. */
export interface ChaosOptions extends CommonOptions {
  /**
   * Probability in [0, 1] that an eligible call is injected. Default 1 (every eligible call).
   * May be a function of the context; `control.setRate()` changes it at run time.
   */
  rate?: Dynamic<number>;
  /**
   * Whether the strategy may inject at all. Default true. May be a function of the context
   * (e.g. only for calls whose `props.tenant` is a test tenant); `control.enable()`/`disable()`
   * switch it at run time.
   */
  enabled?: boolean | ((ctx: Context) => boolean);
  /**
   * Inject only into the first N eligible calls (calls made while enabled and inside the
   * window), counted from the start; `control.restart()` counts again. Default Infinity.
   */
  firstN?: number;
  /** Inject only inside this time window. Default: always. */
  between?: ChaosWindow;
  /** Random source for the rate draw. Default `Math.random`. */
  random?: RandomSource;
}

/** Options of `chaos.fault()`. */
export interface FaultOptions extends ChaosOptions {
  /** The error to throw, or a function of the context that makes it (a fresh error per call). */
  error: ((ctx: Context) => unknown) | object;
}

/** Options of `chaos.latency()`. */
export interface LatencyOptions extends ChaosOptions {
  /** The delay in ms added before the call (>= 0), or a function of the context. */
  delayMs: Dynamic<number>;
}

/** Options of `chaos.outcome()`. */
export interface OutcomeOptions<R> extends ChaosOptions {
  /**
   * The result returned instead of calling the function, or a function of the context that
   * makes it (a fresh `Response` per call). A result that is itself a function must be
   * wrapped: `result: () => fn`.
   */
  result: R | ((ctx: Context) => R | PromiseLike<R>);
}

/** Options of `chaos.behavior()`. */
export interface BehaviorOptions extends ChaosOptions {
  /**
   * Run before the call (awaited when it returns a promise); the call then proceeds. If it
   * throws, the call fails with its error.
   */
  run: (ctx: Context) => void | PromiseLike<void>;
}

/** The run-time switch of a chaos strategy (`policy.control`). */
export interface ChaosControl {
  /** True when the strategy is switched on (its `enabled` function, if any, still applies per call). */
  readonly enabled: boolean;
  /** The current rate (the constant, or NaN while the rate is a function of the context). */
  readonly rate: number;
  /** Switches injection on. */
  enable(): void;
  /** Switches injection off: every call passes straight through. */
  disable(): void;
  /** Sets the injection rate (a number in [0, 1]); replaces a rate function. */
  setRate(rate: number): void;
  /** Restarts the schedule: the relative window and the first-N count start again from now. */
  restart(): void;
}

/** Counters of a chaos strategy since creation. */
export interface ChaosStats {
  /** Calls that reached the strategy. */
  readonly calls: number;
  /** Calls into which it injected. */
  readonly injected: number;
}

const RATE_RULE: NumberRule = (v) => (v >= 0 && v <= 1 ? null : 'a number in [0, 1]');

const COMMON_KEYS = ['rate', 'enabled', 'firstN', 'between', 'random', 'name', 'clock', 'registry'] as const;

/** A window resolved to numbers: relative (against now() − start) or absolute (against date()). */
interface Window {
  readonly absolute: boolean;
  readonly from: number;
  readonly to: number;
}

function toTime(path: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (v instanceof Date) {
    const t = v.getTime();
    if (Number.isNaN(t)) throw new ConfigError(path, 'a valid Date or epoch ms', v);
    return t;
  }
  return checkNumber(path, v, (x) => (Number.isNaN(x) ? 'a Date or epoch ms' : null));
}

function checkWindow(path: string, value: unknown): Window | null {
  if (value === undefined) return null;
  const w = checkObject(path, value);
  const relative = 'fromMs' in w || 'toMs' in w;
  const absolute = 'from' in w || 'to' in w;
  if (relative && absolute) {
    throw new ConfigError(
      path,
      'either { fromMs, toMs } (relative to the start) or { from, to } (wall-clock), not both',
      value,
    );
  }
  if (absolute) {
    checkKeys(path, w, ['from', 'to']);
    const from = toTime(`${path}.from`, w.from, Number.NEGATIVE_INFINITY);
    const to = toTime(`${path}.to`, w.to, Number.POSITIVE_INFINITY);
    if (!(to > from)) throw new ConfigError(`${path}.to`, `later than ${path}.from`, w.to);
    return { absolute: true, from, to };
  }
  checkKeys(path, w, ['fromMs', 'toMs']);
  const from = optNumber(`${path}.fromMs`, w.fromMs, rules.finite(0), 0);
  const to = optNumber(`${path}.toMs`, w.toMs, rules.atLeast(0), Number.POSITIVE_INFINITY);
  if (!(to > from)) throw new ConfigError(`${path}.toMs`, `greater than ${path}.fromMs`, w.toMs);
  return { absolute: false, from, to };
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'chaos',
  help: 'Injects faults, latency, outcomes or behaviour into a share of calls (fault injection).',
  category: 'chaos',
  states: ['off', 'on'],
  gauges: { rate: 'Share of calls injected, in [0, 1] (0 when it is a function of the context).' },
  counters: { calls: 'Calls seen.', injections: 'Calls injected.' },
});

/**
 * Base of the chaos strategies: the schedule, the rate draw, the control handle, events and
 * stats. Subclasses implement `inject`. @internal
 */
export abstract class ChaosPolicy<Alt> extends PolicyBase<Alt, ChaosEvent> {
  readonly kind = 'chaos';
  readonly name: string;
  /** The strategy: fault, latency, outcome or behavior. */
  abstract readonly strategy: ChaosStrategy;
  /** @internal */
  readonly emitter = new PolicyEmitter<ChaosEvent>();
  /** Switches the strategy on and off and changes its rate at run time. */
  readonly control: ChaosControl;
  protected readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly enabledFn: ((ctx: Context) => boolean) | null;
  private on: boolean;
  private rate: DynamicNumber;
  /** The constant rate, or -1 when the rate is a function. */
  private fixedRate: number;
  private readonly firstN: number;
  private readonly window: Window | null;
  private startedAt: number;
  private eligible = 0;
  private calls = 0;
  private injected = 0;
  private readonly path: string;

  constructor(path: string, options: ChaosOptions, extraKeys: readonly string[]) {
    super();
    this.path = path;
    checkKeys(path, options as Record<string, unknown>, [...extraKeys, ...COMMON_KEYS]);
    this.rate = DynamicNumber.of(`${path}.rate`, options.rate, RATE_RULE, 1);
    this.fixedRate = this.rate.fn === null ? this.rate.constant : -1;
    const enabled = options.enabled;
    if (enabled !== undefined && typeof enabled !== 'boolean' && typeof enabled !== 'function') {
      throw new ConfigError(`${path}.enabled`, 'a boolean or a function (ctx) => boolean', enabled);
    }
    this.on = enabled !== false;
    this.enabledFn = typeof enabled === 'function' ? enabled : null;
    this.firstN = optNumber(
      `${path}.firstN`,
      options.firstN,
      rules.intOrInfinity(0),
      Number.POSITIVE_INFINITY,
    );
    this.window = checkWindow(`${path}.between`, options.between);
    this.random = checkFunction<RandomSource>(`${path}.random`, options.random) ?? systemRandom;
    this.name = checkString(`${path}.name`, options.name, path);
    this.clock = clockOf(options.clock, `${path}.clock`);
    this.startedAt = this.clock.now();
    const self = this;
    this.control = {
      get enabled() {
        return self.on;
      },
      get rate() {
        return self.fixedRate < 0 ? Number.NaN : self.fixedRate;
      },
      enable: () => this.switchTo(true),
      disable: () => this.switchTo(false),
      setRate: (rate: number) => {
        checkNumber(`${path}.control.setRate(rate)`, rate, RATE_RULE);
        this.rate = DynamicNumber.of(`${path}.rate`, rate, RATE_RULE, 1);
        this.fixedRate = rate;
      },
      restart: () => {
        this.startedAt = this.clock.now();
        this.eligible = 0;
      },
    };
    this._join(path, (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    return {
      state: this.on ? 'on' : 'off',
      gauges: { rate: this.control.rate },
      counters: { calls: this.calls, injections: this.injected },
      details: { strategy: this.strategy },
    };
  }

  /** Switched off: pipelines leave the policy out of their chain (a disabled chaos policy costs nothing). @internal */
  override get _off(): boolean {
    return !this.on;
  }

  /** Calls seen and injections made since creation. */
  private switchTo(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    this._offChanged();
    if (this.emitter.active) {
      const [from, to] = on ? (['off', 'on'] as const) : (['on', 'off'] as const);
      this.emitter.emit({
        kind: 'chaos',
        name: this.name,
        event: 'stateChange',
        from,
        to,
        priority: 'normal',
        operation: undefined,
        attempt: 0,
      });
    }
  }

  /** The control plane's switches for this strategy (see `chaosOperations`). */
  operations(): readonly ComponentOperation[] {
    return chaosOperations(this.control);
  }

  get stats(): ChaosStats {
    return { calls: this.calls, injected: this.injected };
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | Alt> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | Alt>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    this.calls++;
    if (!this.on) return start(ctx, next);
    let inject: boolean;
    try {
      inject = this.decide(ctx);
    } catch (error) {
      return Promise.reject(error); // a bad dynamic value rejects; execute() never throws synchronously
    }
    if (!inject) return start(ctx, next);
    this.injected++;
    return this.inject(ctx, next);
  }

  /** Schedule and rate draw for one call (the strategy is on). */
  private decide(ctx: ExecutionContext): boolean {
    if (this.enabledFn !== null) {
      const v = this.enabledFn(ctx);
      if (typeof v !== 'boolean') throw new ConfigError(`${this.path}.enabled(ctx)`, 'a boolean', v);
      if (!v) return false;
    }
    const w = this.window;
    if (w !== null) {
      const t = w.absolute ? this.clock.date() : this.clock.now() - this.startedAt;
      if (t < w.from || t >= w.to) return false;
    }
    if (this.eligible >= this.firstN) return false;
    this.eligible++;
    const rate = this.fixedRate >= 0 ? this.fixedRate : this.rate.get(ctx);
    if (rate >= 1) return true;
    if (rate <= 0) return false;
    return this.random() < rate;
  }

  /** Injects into one call. @internal */
  protected abstract inject(ctx: ExecutionContext, next: Link | null): Promise<unknown>;

  /** Emits an `inject` event (when anyone listens). */
  protected emitInject(
    ctx: ExecutionContext,
    extra: { delayMs?: number; error?: unknown; result?: unknown },
  ): void {
    if (!this.emitter.wants('inject')) return;
    this.emitter.emit({
      kind: 'chaos',
      event: 'inject',
      strategy: this.strategy,
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      ...extra,
    });
  }
}

/** A fault-injection strategy. See `chaos.fault()`. */
export class ChaosFaultPolicy extends ChaosPolicy<never> {
  readonly strategy = 'fault';
  private readonly error: unknown;
  constructor(options: FaultOptions) {
    super('chaos.fault', options, ['error']);
    if (!('error' in options) || options.error === undefined) {
      throw new ConfigError('chaos.fault.error', 'an error, or a function (ctx) => error', undefined);
    }
    this.error = options.error;
  }
  protected inject(ctx: ExecutionContext): Promise<unknown> {
    let error: unknown;
    try {
      error = typeof this.error === 'function' ? (this.error as (ctx: Context) => unknown)(ctx) : this.error;
    } catch (thrown) {
      error = thrown;
    }
    this.emitInject(ctx, { error });
    return Promise.reject(error);
  }
}

/** A latency-injection strategy. See `chaos.latency()`. */
export class ChaosLatencyPolicy extends ChaosPolicy<never> {
  readonly strategy = 'latency';
  private readonly ms: DynamicNumber;
  // Deliberate repetition: a required option checked the way backoff.constant checks delayMs (its own
  // option name and message).
  constructor(options: LatencyOptions) {
    super('chaos.latency', options, ['delayMs']);
    if (options.delayMs === undefined) {
      throw new ConfigError(
        'chaos.latency.delayMs',
        'a finite number >= 0, or a function (ctx) => ms',
        undefined,
      );
    }
    this.ms = DynamicNumber.of('chaos.latency.delayMs', options.delayMs, rules.finite(0), 0);
  }
  protected inject(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    let ms: number;
    try {
      ms = this.ms.get(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    this.emitInject(ctx, { delayMs: ms });
    return sleep(this.clock, ms, ctx).then(() => start(ctx, next));
  }
}

/** An outcome-injection strategy. See `chaos.outcome()`. */
export class ChaosOutcomePolicy<R> extends ChaosPolicy<R> {
  readonly strategy = 'outcome';
  private readonly make: (ctx: Context) => R | PromiseLike<R>;
  constructor(options: OutcomeOptions<R>) {
    super('chaos.outcome', options, ['result']);
    if (!('result' in options)) {
      throw new ConfigError('chaos.outcome.result', 'a result, or a function (ctx) => result', undefined);
    }
    const result = options.result;
    this.make =
      typeof result === 'function' ? (result as (ctx: Context) => R | PromiseLike<R>) : () => result as R;
  }
  protected inject(ctx: ExecutionContext): Promise<unknown> {
    let result: R | PromiseLike<R>;
    try {
      result = this.make(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    this.emitInject(ctx, { result });
    return Promise.resolve(result);
  }
}

/** A behaviour-injection strategy. See `chaos.behavior()`. */
export class ChaosBehaviorPolicy extends ChaosPolicy<never> {
  readonly strategy = 'behavior';
  private readonly run: (ctx: Context) => void | PromiseLike<void>;
  constructor(options: BehaviorOptions) {
    super('chaos.behavior', options, ['run']);
    const run = checkFunction<(ctx: Context) => void | PromiseLike<void>>('chaos.behavior.run', options.run);
    if (run === undefined) throw new ConfigError('chaos.behavior.run', 'a function (ctx) => void', undefined);
    this.run = run;
  }
  protected inject(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    this.emitInject(ctx, {});
    let r: void | PromiseLike<void>;
    try {
      r = this.run(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    if (r === undefined || r === null) return start(ctx, next);
    return Promise.resolve(r).then(() => {
      if (ctx._isAborted) throw ctx._abortReason;
      return start(ctx, next);
    });
  }
}

/**
 * Chaos strategies: put one in a pipeline (usually innermost, next to the call it disturbs)
 * to test how the policies around it cope.
 *
 * @example
 * ```ts
 * import { chaos, pipeline, retry } from 'bulwark';
 * const faults = chaos.fault({ error: () => new Error('injected'), rate: 0.1 });
 * const policy = pipeline(retry({ maxAttempts: 3 }), faults);
 * await policy.execute(() => 'ok');
 * faults.control.disable(); // every call passes straight through now
 * ```
 */
export const chaos = {
  /** Throws an error instead of calling the function. */
  fault(options: FaultOptions): ChaosFaultPolicy {
    return new ChaosFaultPolicy(checkObject('chaos.fault', options) as unknown as FaultOptions);
  },
  /** Waits (on the policy's clock, abortable) before calling the function. */
  latency(options: LatencyOptions): ChaosLatencyPolicy {
    return new ChaosLatencyPolicy(checkObject('chaos.latency', options) as unknown as LatencyOptions);
  },
  /** Returns a result (e.g. an HTTP 503 `Response`) instead of calling the function. */
  outcome<R>(options: OutcomeOptions<R>): ChaosOutcomePolicy<Awaited<R>> {
    return new ChaosOutcomePolicy<Awaited<R>>(
      checkObject('chaos.outcome', options) as unknown as OutcomeOptions<Awaited<R>>,
    );
  },
  /** Runs a side effect (e.g. drop a connection, fill a cache) before calling the function. */
  behavior(options: BehaviorOptions): ChaosBehaviorPolicy {
    return new ChaosBehaviorPolicy(checkObject('chaos.behavior', options) as unknown as BehaviorOptions);
  },
};
