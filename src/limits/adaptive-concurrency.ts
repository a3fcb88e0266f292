/**
 * Adaptive concurrency: a bulkhead whose limit follows the measured round-trip times of the
 * calls it admits (AIMD, Gradient2 or Vegas, see `adaptive-limits.ts`).
 */

import type { Clock, RandomSource } from '../core/clock.js';
import { systemRandom } from '../core/clock.js';
import { type ComponentOperation, defineDescriptor, type Figures } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { DeadlineQueues } from '../core/deadline-queue.js';
import { BulkheadRejectedError, ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { Handler } from '../core/handle.js';
import {
  checkEnum,
  checkFunction,
  checkKeys,
  checkObject,
  checkString,
  optNumber,
  rules,
} from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { isResponseLike } from '../core/transient.js';
import { type Waiter, WaitQueue } from '../core/wait-queue.js';
import {
  AimdLimit,
  Gradient2Limit,
  type LimitAlgorithm,
  VegasLimit,
  WindowedLimit,
  type WindowOptions,
} from './adaptive-limits.js';
import { adaptiveOperations } from './limit-operations.js';

/** Events of the adaptive concurrency limit. */
export type AdaptiveConcurrencyEvent =
  | (EventBase & {
      readonly kind: 'adaptiveConcurrency';
      readonly event: 'limitChange';
      readonly from: number;
      readonly to: number;
      /** The RTT (ms) of the sample that changed the limit. */
      readonly rttMs: number;
    })
  | (EventBase & {
      readonly kind: 'adaptiveConcurrency';
      readonly event: 'reject';
      readonly reason: 'full' | 'queueTimeout';
      readonly inFlight: number;
      readonly limit: number;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    adaptiveConcurrency: AdaptiveConcurrencyEvent;
  }
}

/** Options of `adaptiveConcurrency()`. */
export interface AdaptiveConcurrencyOptions extends CommonOptions {
  /** `aimd`, `gradient2` (default) or `vegas`. */
  algorithm?: 'aimd' | 'gradient2' | 'vegas';
  /** Starting limit. Default 20. */
  initialLimit?: number;
  /** Lowest limit (aimd, gradient2). Default 20. */
  minLimit?: number;
  /** Highest limit. Default 200 (aimd, gradient2), 1000 (vegas). */
  maxLimit?: number;
  /** aimd: multiplier on a drop, in [0.5, 1). Default 0.9. */
  backoffRatio?: number;
  /** aimd: an RTT above this many ms counts as a drop. Default 5_000. */
  timeoutMs?: number;
  /** gradient2: weight of a new estimate, in (0, 1]. Default 0.2; vegas: default 1.0. */
  smoothing?: number;
  /** gradient2: latency inflation tolerated (>= 1). Default 1.5. */
  rttTolerance?: number;
  /** gradient2: headroom added per update (>= 0). Default 4. */
  queueSize?: number;
  /** gradient2: samples in the long RTT average. Default 600. */
  longWindow?: number;
  /** vegas: re-probe the no-load RTT every U[0.5,1) × this × limit samples. Default 30. */
  probeMultiplier?: number;
  /**
   * Sampling window in front of the algorithm (Netflix's WindowedLimit): `{ minWindowMs: 1_000,
   * maxWindowMs: 1_000, minSamples: 10, minRttThresholdMs: 0.1 }`, or `false` to feed every
   * sample. Default: on for gradient2, off for aimd and vegas.
   */
  window?: WindowOptions | false;
  /** Calls allowed to wait for a slot (integer >= 0 or Infinity). Default 0. */
  queue?: number;
  /** Longest wait in the queue, ms. Default Infinity. */
  queueTimeoutMs?: number;
  /**
   * Which failures are drops (overload signals that shrink the limit). Default: a `TimeoutError`,
   * and an HTTP 429 or 503 (on an error or a Response-like result). Other errors (and aborts)
   * are ignored: they feed no sample.
   */
  drop?: Handler;
  /** Random source (vegas's probe jitter). Default `Math.random`. */
  random?: RandomSource;
}

function statusOf(x: unknown): number | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const e = x as { status?: unknown; statusCode?: unknown; response?: { status?: unknown } | null };
  if (typeof e.status === 'number') return e.status;
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.response === 'object' && e.response !== null && typeof e.response.status === 'number')
    return e.response.status;
  return undefined;
}

/** The default drop signal: a timeout, or HTTP 429/503. */
export const DEFAULT_DROPS: Handler = new Handler(
  (e) => {
    if (e instanceof Error && e.name === 'TimeoutError') return true;
    const s = statusOf(e);
    return s === 429 || s === 503;
  },
  (r) => isResponseLike(r) && (r.status === 429 || r.status === 503),
);

const COMMON_KEYS = [
  'algorithm',
  'initialLimit',
  'maxLimit',
  'window',
  'queue',
  'queueTimeoutMs',
  'drop',
  'random',
  'name',
  'registry',
  'clock',
];
const KEYS = {
  aimd: [...COMMON_KEYS, 'minLimit', 'backoffRatio', 'timeoutMs'],
  gradient2: [...COMMON_KEYS, 'minLimit', 'smoothing', 'rttTolerance', 'queueSize', 'longWindow'],
  vegas: [...COMMON_KEYS, 'smoothing', 'probeMultiplier'],
} as const;

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'adaptiveConcurrency',
  help: 'A bulkhead whose limit follows measured round-trip times (AIMD, Gradient2, Vegas).',
  category: 'bulkhead',
  states: ['ready', 'full'],
  gauges: {
    limit: 'The concurrency limit now.',
    inFlight: 'Calls running now.',
    queued: 'Calls waiting for a slot now.',
  },
  counters: {
    rejections: 'Calls refused.',
    samples: 'RTT samples fed to the algorithm.',
    drops: 'Samples that were drops (overload signals).',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/** An adaptive concurrency limit. See `adaptiveConcurrency()`. */
export class AdaptiveConcurrencyPolicy extends PolicyBase<never, AdaptiveConcurrencyEvent> {
  readonly kind = 'adaptiveConcurrency';
  readonly name: string;
  readonly algorithm: 'aimd' | 'gradient2' | 'vegas';
  /** @internal */
  readonly emitter = new PolicyEmitter<AdaptiveConcurrencyEvent>();
  private readonly algo: LimitAlgorithm;
  private readonly clock: Clock;
  private readonly queueMax: number;
  private readonly queueTimeout: number;
  private readonly drop: Handler;
  private current: number;
  private running = 0;
  private readonly waiters: WaitQueue;
  private rejected = 0;
  private samples = 0;
  private drops = 0;

  // Deliberate repetition: every policy constructor opens the same way (super(), then checkKeys with its
  // own option names) — the shape of option validation, not shared logic.
  constructor(options: AdaptiveConcurrencyOptions = {}) {
    super();
    const o = options as Record<string, unknown>;
    const algorithm = checkEnum(
      'adaptiveConcurrency.algorithm',
      o.algorithm,
      ['aimd', 'gradient2', 'vegas'],
      'gradient2',
    );
    this.algorithm = algorithm;
    checkKeys('adaptiveConcurrency', o, KEYS[algorithm]);
    const p = (k: string) => `adaptiveConcurrency.${k}`;
    const initialLimit = optNumber(p('initialLimit'), o.initialLimit, rules.int(1), 20);
    let algo: LimitAlgorithm;
    if (algorithm === 'aimd') {
      const minLimit = optNumber(p('minLimit'), o.minLimit, rules.int(1), 20);
      const maxLimit = optNumber(
        p('maxLimit'),
        o.maxLimit,
        rules.int(Math.max(minLimit, initialLimit)),
        Math.max(200, minLimit, initialLimit),
      );
      const backoffRatio = optNumber(
        p('backoffRatio'),
        o.backoffRatio,
        (v) => (v >= 0.5 && v < 1 ? null : 'a number in [0.5, 1)'),
        0.9,
      );
      const timeoutMs = optNumber(p('timeoutMs'), o.timeoutMs, rules.positive, 5_000);
      algo = new AimdLimit({ initialLimit, minLimit, maxLimit, backoffRatio, timeoutMs });
    } else if (algorithm === 'gradient2') {
      const minLimit = optNumber(p('minLimit'), o.minLimit, rules.int(1), 20);
      algo = new Gradient2Limit({
        initialLimit,
        minLimit,
        maxLimit: optNumber(
          p('maxLimit'),
          o.maxLimit,
          rules.int(Math.max(minLimit, initialLimit)),
          Math.max(200, minLimit, initialLimit),
        ),
        smoothing: optNumber(p('smoothing'), o.smoothing, rules.ratio, 0.2),
        rttTolerance: optNumber(p('rttTolerance'), o.rttTolerance, rules.finite(1), 1.5),
        queueSize: optNumber(p('queueSize'), o.queueSize, rules.finite(0), 4),
        longWindow: optNumber(p('longWindow'), o.longWindow, rules.int(1), 600),
      });
    } else {
      const random = checkFunction<RandomSource>(p('random'), o.random) ?? systemRandom;
      algo = new VegasLimit(
        {
          initialLimit,
          maxLimit: optNumber(
            p('maxLimit'),
            o.maxLimit,
            rules.int(initialLimit),
            Math.max(1000, initialLimit),
          ),
          smoothing: optNumber(p('smoothing'), o.smoothing, rules.ratio, 1.0),
          probeMultiplier: optNumber(p('probeMultiplier'), o.probeMultiplier, rules.positive, 30),
        },
        random,
      );
    }
    if (o.random !== undefined) checkFunction(p('random'), o.random);
    const w = o.window === undefined ? (algorithm === 'gradient2' ? {} : false) : o.window;
    if (w !== false) {
      const wo = checkObject(p('window'), w);
      checkKeys(p('window'), wo, ['minWindowMs', 'maxWindowMs', 'minSamples', 'minRttThresholdMs']);
      const minWindowMs = optNumber(p('window.minWindowMs'), wo.minWindowMs, rules.finite(0), 1_000);
      algo = new WindowedLimit(algo, {
        minWindowMs,
        maxWindowMs: optNumber(
          p('window.maxWindowMs'),
          wo.maxWindowMs,
          rules.finite(minWindowMs),
          Math.max(1_000, minWindowMs),
        ),
        minSamples: optNumber(p('window.minSamples'), wo.minSamples, rules.int(1), 10),
        minRttThresholdMs: optNumber(
          p('window.minRttThresholdMs'),
          wo.minRttThresholdMs,
          rules.finite(0),
          0.1,
        ),
      });
    }
    this.algo = algo;
    this.current = algo.limit;
    this.queueMax = optNumber(p('queue'), o.queue, rules.intOrInfinity(0), 0);
    this.queueTimeout = optNumber(
      p('queueTimeoutMs'),
      o.queueTimeoutMs,
      rules.atLeast(0),
      Number.POSITIVE_INFINITY,
    );
    if (o.drop !== undefined && !Handler.is(o.drop)) {
      throw new ConfigError(p('drop'), 'a handler, e.g. handle.errors(TimeoutError)', o.drop);
    }
    this.drop = (o.drop as Handler | undefined) ?? DEFAULT_DROPS;
    this.name = checkString(p('name'), o.name, 'adaptiveConcurrency');
    this.clock = clockOf(o.clock as Clock | undefined, p('clock'));
    const timers = new DeadlineQueues<Waiter>(this.clock, (w) =>
      this.waiters.expire(w, () => this.rejection(w.ctx, 'queueTimeout')),
    );
    this.waiters = new WaitQueue(timers);
    this._join('adaptiveConcurrency', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    return {
      state: this.running >= this.current ? 'full' : 'ready',
      gauges: { limit: this.current, inFlight: this.running, queued: this.waiters.size },
      counters: { rejections: this.rejected, samples: this.samples, drops: this.drops },
      details: { algorithm: this.algorithm, ...this.algo.bounds },
    };
  }

  /** The current limit. */
  get limit(): number {
    return this.current;
  }

  /** The bounds the limit moves within: `{ minLimit, maxLimit }`. */
  get bounds(): { readonly minLimit: number; readonly maxLimit: number } {
    return this.algo.bounds;
  }

  /**
   * Changes the bounds of the limit at run time (integers >= 1, min <= max; one may be left
   * out). The limit is brought within them at once; a larger limit admits queued calls at once.
   *
   * @example
   * ```ts
   * import { adaptiveConcurrency } from 'bulwark';
   * const limiter = adaptiveConcurrency({ algorithm: 'aimd', initialLimit: 20 });
   * limiter.setBounds({ minLimit: 40, maxLimit: 400 });
   * console.log(limiter.limit); // 40
   * ```
   */
  setBounds(bounds: { readonly minLimit?: number; readonly maxLimit?: number }): void {
    const o = checkObject('adaptiveConcurrency.setBounds', bounds);
    checkKeys('adaptiveConcurrency.setBounds', o, ['minLimit', 'maxLimit']);
    const cur = this.algo.bounds;
    const min = optNumber('adaptiveConcurrency.setBounds.minLimit', o.minLimit, rules.int(1), cur.minLimit);
    const max = optNumber('adaptiveConcurrency.setBounds.maxLimit', o.maxLimit, rules.int(min), cur.maxLimit);
    this.algo.setBounds(min, max);
    const before = this.current;
    this.current = this.algo.limit;
    if (this.current !== before && this.emitter.wants('limitChange')) this.limitChanged(before, 0, null);
    this.admitWaiting();
  }

  /** The control plane's action: `setBounds` (minLimit, maxLimit). */
  operations(): readonly ComponentOperation[] {
    return adaptiveOperations(this);
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.waiters.size;
  }

  /** Live figures and counters since creation. */
  get stats(): {
    readonly limit: number;
    readonly inFlight: number;
    readonly queued: number;
    readonly rejected: number;
    readonly samples: number;
    readonly drops: number;
  } {
    return {
      limit: this.current,
      inFlight: this.running,
      queued: this.waiters.size,
      rejected: this.rejected,
      samples: this.samples,
      drops: this.drops,
    };
  }

  /** Subscribes to changes of the limit. */
  onLimitChange(listener: Listener<Extract<AdaptiveConcurrencyEvent, { event: 'limitChange' }>>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'limitChange') listener(e);
      },
      ['limitChange'],
    );
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
    if (this.running < this.current) {
      this.running++;
      return this.measure(ctx, next);
    }
    if (this.waiters.size < this.queueMax) return this.runQueued(ctx, next);
    return Promise.reject(this.rejection(ctx, 'full'));
  }

  private measure(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    const inflight = this.running;
    const t0 = this.clock.now();
    // A drop predicate that throws rejects the call; the slot is released either way.
    return start(ctx, next).then(
      (value) => {
        try {
          this.sample(
            ctx,
            t0,
            inflight,
            this.drop.resultPredicate !== null && this.drop.handlesResult(value),
          );
        } finally {
          this.release();
        }
        return value;
      },
      (error: unknown) => {
        // A drop feeds a sample; any other error (or an abort) feeds none (Netflix's onIgnore).
        try {
          if (this.drop.handlesError(error)) this.sample(ctx, t0, inflight, true);
        } finally {
          this.release();
        }
        throw error;
      },
    );
  }

  private async runQueued(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    await this.waiters.wait(ctx, 0, 0, this.queueTimeout); // resolves with the slot already taken
    if (ctx._isAborted) {
      this.release();
      throw ctx._abortReason;
    }
    return this.measure(ctx, next);
  }

  private sample(ctx: ExecutionContext, t0: number, inflight: number, didDrop: boolean): void {
    const rtt = this.clock.now() - t0;
    this.samples++;
    if (didDrop) this.drops++;
    const before = this.current;
    const after = this.algo.update(rtt, inflight, didDrop, this.clock.now());
    if (after === before) return;
    this.current = after;
    if (this.emitter.wants('limitChange')) this.limitChanged(before, rtt, ctx);
  }

  /** Emits `limitChange` from `from` to the current limit (callers check `wants` first); `ctx` is the call whose sample moved it. */
  private limitChanged(from: number, rttMs: number, ctx: ExecutionContext | null): void {
    this.emitter.emit({
      kind: 'adaptiveConcurrency',
      event: 'limitChange',
      name: this.name,
      priority: ctx === null ? 'normal' : ctx.priority,
      operation: ctx === null ? undefined : ctx.name,
      attempt: ctx === null ? 0 : ctx.attempt,
      from,
      to: this.current,
      rttMs,
    });
  }

  private rejection(ctx: ExecutionContext, reason: 'full' | 'queueTimeout'): BulkheadRejectedError {
    this.rejected++;
    if (this.emitter.wants('reject')) {
      this.emitter.emit({
        kind: 'adaptiveConcurrency',
        event: 'reject',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        reason,
        inFlight: this.running,
        limit: this.current,
      });
    }
    return new BulkheadRejectedError(
      this.name,
      reason === 'full' ? 'BULKHEAD_FULL' : 'BULKHEAD_QUEUE_TIMEOUT',
      this.running,
      this.waiters.size,
    );
  }

  private release(): void {
    this.running--;
    this.admitWaiting();
  }

  /** Hands free slots to queued calls, oldest first. */
  private admitWaiting(): void {
    while (this.waiters.head !== null && this.running < this.current) {
      const w = this.waiters.head;
      this.waiters.remove(w);
      this.running++;
      w.resolve();
    }
  }
}

/**
 * Makes an adaptive concurrency limit: a bulkhead whose limit adapts to measured latency.
 * Rejects with `BulkheadRejectedError` when full (and its queue, if any, is full).
 *
 * @example
 * ```ts
 * import { adaptiveConcurrency } from 'bulwark';
 * const limiter = adaptiveConcurrency({ algorithm: 'vegas', queue: 50, queueTimeoutMs: 1_000 });
 * limiter.onLimitChange((e) => console.log(`limit ${e.from} -> ${e.to}`));
 * await limiter.execute(() => 'work');
 * console.log(limiter.limit, limiter.inFlight);
 * ```
 */
export function adaptiveConcurrency(options: AdaptiveConcurrencyOptions = {}): AdaptiveConcurrencyPolicy {
  return new AdaptiveConcurrencyPolicy(
    checkObject('adaptiveConcurrency', options) as AdaptiveConcurrencyOptions,
  );
}
