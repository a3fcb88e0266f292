/**
 * Client-side adaptive throttling (Google SRE book, ch. 21, eq. 21-1): each client counts, over
 * a sliding window (2 minutes by default), the requests it made and those the backend
 * accepted, and rejects new requests locally with probability
 * `max(0, (requests − k·accepts) / (requests + 1))`.
 */

import type { Clock, RandomSource } from '../core/clock.js';
import { systemRandom } from '../core/clock.js';
import { defineDescriptor, type Figures } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { ConfigError, RejectedError } from '../core/errors.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
import { Handler } from '../core/handle.js';
import { checkFunction, checkKeys, checkObject, checkString, optNumber, rules } from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { isAbortError, isTransient, isTransientResult } from '../core/transient.js';

/** A call rejected locally by `adaptiveThrottle()` (code `THROTTLED`). */
export class ThrottledError extends RejectedError {
  /** The throttle's name. */
  readonly throttle: string;
  /** The rejection probability when the call was rejected. */
  readonly probability: number;
  constructor(throttle: string, probability: number) {
    super(
      'THROTTLED',
      'throttled',
      Number.NaN,
      `Throttled locally by "${throttle}": the backend has been rejecting requests (rejection probability ${probability.toFixed(3)}); back off`,
    );
    this.throttle = throttle;
    this.probability = probability;
  }
}

/** Events of the adaptive throttle. */
export type AdaptiveThrottleEvent = EventBase & {
  readonly kind: 'adaptiveThrottle';
  readonly event: 'reject';
  readonly probability: number;
  readonly requests: number;
  readonly accepts: number;
};

declare module '../core/events.js' {
  interface PolicyEventMap {
    adaptiveThrottle: AdaptiveThrottleEvent;
  }
}

/** Options of `adaptiveThrottle()`. */
export interface AdaptiveThrottleOptions extends CommonOptions {
  /** Multiplier K on accepts (> 0): lower rejects sooner. Default 2 (1.1 ≈ 1 in 10 rejected). */
  k?: number;
  /** Window over which requests and accepts are counted, ms. Default 120_000 (2 minutes). */
  windowMs?: number;
  /** Buckets the window is divided into (integer >= 1). Default 120 (1 s each by default). */
  buckets?: number;
  /** Below this many requests in the window nothing is rejected (integer >= 0). Default 0. */
  minSamples?: number;
  /** Cap on the rejection probability, in (0, 1]. Default 1 (the SRE formula, uncapped). */
  maxRejectionRatio?: number;
  /**
   * Failures that are NOT accepts (the backend refused or was overloaded). Default: transient
   * failures (`isTransient`: network errors, timeouts, 408/425/429/5xx errors and Response
   * results). Any other outcome, success or error, is an accept. Aborts by the caller count as
   * neither.
   */
  handle?: Handler;
  /** Random source for the rejection draw. Default `Math.random`. */
  random?: RandomSource;
}

const DEFAULT_REJECTS = new Handler(isTransient, isTransientResult);

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'adaptiveThrottle',
  help: 'Rejects calls locally with the probability the backend has been rejecting them (Google SRE).',
  category: 'limiter',
  states: ['ready', 'throttling'],
  gauges: {
    requests: 'Requests in the window.',
    accepts: 'Accepted requests in the window.',
    rejectionRatio: 'The current local rejection probability.',
  },
  counters: { rejections: 'Calls rejected locally.' },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/** An adaptive throttle. See `adaptiveThrottle()`. */
export class AdaptiveThrottlePolicy extends PolicyBase<never, AdaptiveThrottleEvent> {
  readonly kind = 'adaptiveThrottle';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<AdaptiveThrottleEvent>();
  private readonly k: number;
  private readonly bucketMs: number;
  private readonly minRequests: number;
  private readonly maxP: number;
  private readonly handler: Handler;
  private readonly random: RandomSource;
  private readonly clock: Clock;
  private readonly reqs: Float64Array;
  private readonly accs: Float64Array;
  private readonly epochs: Float64Array;
  private requestsSum = 0;
  private acceptsSum = 0;
  private rejectedCount = 0;

  // Deliberate repetition: every policy constructor opens the same way (super(), then checkKeys with its
  // own option names) — the shape of option validation, not shared logic.
  constructor(options: AdaptiveThrottleOptions = {}) {
    super();
    const o = options as Record<string, unknown>;
    checkKeys('adaptiveThrottle', o, [
      'k',
      'windowMs',
      'buckets',
      'minSamples',
      'maxRejectionRatio',
      'handle',
      'random',
      'name',
      'registry',
      'clock',
    ]);
    this.k = optNumber('adaptiveThrottle.k', o.k, rules.positive, 2);
    const windowMs = optNumber('adaptiveThrottle.windowMs', o.windowMs, rules.positive, 120_000);
    const buckets = optNumber('adaptiveThrottle.buckets', o.buckets, rules.int(1), 120);
    this.bucketMs = windowMs / buckets;
    this.minRequests = optNumber('adaptiveThrottle.minSamples', o.minSamples, rules.int(0), 0);
    this.maxP = optNumber('adaptiveThrottle.maxRejectionRatio', o.maxRejectionRatio, rules.ratio, 1);
    if (o.handle !== undefined && !Handler.is(o.handle)) {
      throw new ConfigError('adaptiveThrottle.handle', 'a handler, e.g. handle.transient()', o.handle);
    }
    this.handler = (o.handle as Handler | undefined) ?? DEFAULT_REJECTS;
    this.random = checkFunction<RandomSource>('adaptiveThrottle.random', o.random) ?? systemRandom;
    this.name = checkString('adaptiveThrottle.name', o.name, 'adaptiveThrottle');
    this.clock = clockOf(o.clock as Clock | undefined, 'adaptiveThrottle.clock');
    this.reqs = new Float64Array(buckets);
    this.accs = new Float64Array(buckets);
    this.epochs = new Float64Array(buckets).fill(-1);
    this._join('adaptiveThrottle', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    const st = this.stats;
    return {
      state: st.probability > 0 ? 'throttling' : 'ready',
      gauges: { requests: st.requests, accepts: st.accepts, rejectionRatio: st.probability },
      counters: { rejections: st.rejected },
    };
  }

  /** Drops buckets that left the window; returns the current bucket's index. */
  private roll(): number {
    const epoch = Math.floor(this.clock.now() / this.bucketMs);
    const n = this.reqs.length;
    const i = ((epoch % n) + n) % n;
    if (this.epochs[i] !== epoch) {
      // Expire every bucket older than the window (cheap: n is small, and this runs once per bucket).
      for (let j = 0; j < n; j++) {
        const e = this.epochs[j]!;
        if (e !== -1 && e <= epoch - n) {
          this.requestsSum -= this.reqs[j]!;
          this.acceptsSum -= this.accs[j]!;
          this.reqs[j] = 0;
          this.accs[j] = 0;
          this.epochs[j] = -1;
        }
      }
      this.requestsSum -= this.reqs[i]!;
      this.acceptsSum -= this.accs[i]!;
      this.reqs[i] = 0;
      this.accs[i] = 0;
      this.epochs[i] = epoch;
    }
    return i;
  }

  /** The rejection probability now. */
  get probability(): number {
    this.roll();
    return this.p();
  }

  private p(): number {
    const r = this.requestsSum;
    if (r < this.minRequests || r === 0) return 0;
    return Math.min(this.maxP, Math.max(0, (r - this.k * this.acceptsSum) / (r + 1)));
  }

  /** Requests and accepts in the window, the rejection probability, and local rejections since creation. */
  get stats(): {
    readonly requests: number;
    readonly accepts: number;
    readonly probability: number;
    readonly rejected: number;
  } {
    this.roll();
    return {
      requests: this.requestsSum,
      accepts: this.acceptsSum,
      probability: this.p(),
      rejected: this.rejectedCount,
    };
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
    this.roll();
    // p is computed from calls whose outcome is known (as gRPC does): counting calls still in
    // flight as requests without accepts would reject a burst of healthy concurrent calls.
    const p = this.p();
    if (p > 0 && this.random() < p) {
      // Local rejections count as requests (they are what the application attempted).
      this.count(false);
      this.rejectedCount++;
      if (this.emitter.wants('reject')) {
        this.emitter.emit({
          kind: 'adaptiveThrottle',
          event: 'reject',
          name: this.name,
          priority: ctx.priority,
          operation: ctx.name,
          attempt: ctx.attempt,
          probability: p,
          requests: this.requestsSum,
          accepts: this.acceptsSum,
        });
      }
      return Promise.reject(new ThrottledError(this.name, p));
    }
    return start(ctx, next).then(
      (value) => {
        this.count(!this.handler.handlesResult(value));
        return value;
      },
      (error: unknown) => {
        // A call aborted from outside (its caller, an enclosing timeout) counts as neither a
        // request nor an accept: the backend did not refuse it.
        if (ctx._isAborted || isAbortError(error)) throw error;
        this.count(!this.handler.handlesError(error));
        throw error;
      },
    );
  }

  /** Counts one request, and an accept when `accepted`. */
  private count(accepted: boolean): void {
    const i = this.roll();
    this.reqs[i]!++;
    this.requestsSum++;
    if (accepted) {
      this.accs[i]!++;
      this.acceptsSum++;
    }
  }
}

/**
 * Makes a client-side adaptive throttle (SRE eq. 21-1). Rejects with `ThrottledError`.
 *
 * @example
 * ```ts
 * import { adaptiveThrottle, ThrottledError } from 'bulwark';
 * const throttle = adaptiveThrottle({ k: 2, windowMs: 120_000 });
 * try {
 *   await throttle.execute(() => 'ok');
 * } catch (err) {
 *   if (err instanceof ThrottledError) console.log('backend overloaded; dropped locally');
 * }
 * ```
 */
export function adaptiveThrottle(options: AdaptiveThrottleOptions = {}): AdaptiveThrottlePolicy {
  return new AdaptiveThrottlePolicy(checkObject('adaptiveThrottle', options) as AdaptiveThrottleOptions);
}
