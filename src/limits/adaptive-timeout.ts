/**
 * Adaptive timeout: the timeout follows observed latency, `quantile(q) × multiplier` clamped
 * to [min, max], from a streaming quantile estimate (`quantile.ts`). It runs on the timeout
 * policy's machinery (no timer per call); the duration is rounded up to a grid 2^(1/4) apart
 * so that few distinct durations (hence deadline queues) exist.
 */

import type { Clock } from '../core/clock.js';
import { defineDescriptor, type Figures } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { ConfigError, TimeoutError } from '../core/errors.js';
import type { PolicyEmitter, TimeoutEvent } from '../core/events.js';
import { checkEnum, checkKeys, checkObject, checkString, optNumber, rules } from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase } from '../core/policy.js';
import { TimeoutPolicy } from '../core/timeout.js';
import { QuantileSketch } from './quantile.js';

/** Options of `adaptiveTimeout()`. */
export interface AdaptiveTimeoutOptions extends CommonOptions {
  /** Latency quantile the timeout follows, in (0, 1]. Default 0.99. */
  quantile?: number;
  /** Factor on that quantile (>= 1). Default 1.5. */
  multiplier?: number;
  /** Shortest timeout, ms (> 0). Default 10. */
  minMs?: number;
  /** Longest timeout, ms (>= minMs). Default 60_000. */
  maxMs?: number;
  /** Timeout until `minSamples` latencies are known, ms (clamped to [minMs, maxMs]). Default 10_000. */
  initialMs?: number;
  /** Latencies needed before the estimate is used (integer >= 1). Default 20. */
  minSamples?: number;
  /** The estimate covers the last `windowMs` to 2 × `windowMs` of calls. Default 60_000. */
  windowMs?: number;
  /** `cooperative` (default) or `abandon`, as for `timeout()`. */
  strategy?: 'cooperative' | 'abandon';
}

const STEPS_PER_DOUBLING = 4;
/** Samples between two readings of the estimate. */
const RECOMPUTE_EVERY = 16;

/** Rounds `ms` up to the grid 2^(k/4). */
function roundUp(ms: number): number {
  const k = Math.ceil(Math.log2(ms) * STEPS_PER_DOUBLING - 1e-9);
  return 2 ** (k / STEPS_PER_DOUBLING);
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'adaptiveTimeout',
  help: 'A timeout that follows a quantile of recent successful latencies.',
  states: ['ready'],
  gauges: { timeoutMs: 'The timeout applied now, in ms.', samples: 'Latencies in the window.' },
  counters: { timeouts: 'Executions timed out.' },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/** An adaptive timeout policy. See `adaptiveTimeout()`. */
export class AdaptiveTimeoutPolicy extends PolicyBase<never, TimeoutEvent> {
  readonly kind = 'adaptiveTimeout';
  readonly name: string;
  /** @internal */
  readonly emitter: PolicyEmitter<TimeoutEvent>;
  private readonly inner: TimeoutPolicy;
  private readonly sketch: QuantileSketch;
  private readonly clock: Clock;
  private readonly q: number;
  private readonly multiplier: number;
  private readonly min: number;
  private readonly max: number;
  private readonly initial: number;
  private readonly minSamples: number;
  /** The current timeout, recomputed every RECOMPUTE_EVERY samples. */
  private cached: number;
  private sinceCompute = 0;
  /** Samples recorded since creation, counted up to 4 × RECOMPUTE_EVERY. */
  private recorded = 0;

  // Deliberate repetition: every policy constructor opens the same way (super(), then checkKeys with its
  // own option names) — the shape of option validation, not shared logic.
  constructor(options: AdaptiveTimeoutOptions = {}) {
    super();
    const o = options as Record<string, unknown>;
    checkKeys('adaptiveTimeout', o, [
      'quantile',
      'multiplier',
      'minMs',
      'maxMs',
      'initialMs',
      'minSamples',
      'windowMs',
      'strategy',
      'name',
      'registry',
      'clock',
    ]);
    this.q = optNumber('adaptiveTimeout.quantile', o.quantile, rules.ratio, 0.99);
    this.multiplier = optNumber('adaptiveTimeout.multiplier', o.multiplier, rules.finite(1), 1.5);
    this.min = optNumber('adaptiveTimeout.minMs', o.minMs, rules.positive, 10);
    this.max = optNumber(
      'adaptiveTimeout.maxMs',
      o.maxMs,
      rules.atLeast(this.min),
      Math.max(60_000, this.min),
    );
    if (this.max === Number.POSITIVE_INFINITY) {
      throw new ConfigError('adaptiveTimeout.maxMs', 'a finite number of ms', this.max);
    }
    this.initial = Math.min(
      this.max,
      Math.max(this.min, optNumber('adaptiveTimeout.initialMs', o.initialMs, rules.positive, 10_000)),
    );
    this.minSamples = optNumber('adaptiveTimeout.minSamples', o.minSamples, rules.int(1), 20);
    const windowMs = optNumber('adaptiveTimeout.windowMs', o.windowMs, rules.positive, 60_000);
    const strategy = checkEnum(
      'adaptiveTimeout.strategy',
      o.strategy,
      ['cooperative', 'abandon'],
      'cooperative',
    );
    this.name = checkString('adaptiveTimeout.name', o.name, 'adaptiveTimeout');
    this.clock = clockOf(o.clock as Clock | undefined, 'adaptiveTimeout.clock');
    this.sketch = new QuantileSketch(windowMs, this.clock);
    this.inner = new TimeoutPolicy({
      timeoutMs: () => this.cached,
      strategy,
      name: this.name,
      clock: this.clock,
    });
    this.emitter = (this.inner as unknown as { emitter: PolicyEmitter<TimeoutEvent> }).emitter;
    this.cached = this.initial;
    this._join('adaptiveTimeout', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    const st = this.stats;
    return {
      state: 'ready',
      gauges: { timeoutMs: st.timeoutMs, samples: st.samples },
      counters: { timeouts: st.timeouts },
    };
  }

  /** The timeout the next call gets, ms. */
  get timeoutMs(): number {
    return this.cached;
  }

  /** The latency estimate: the configured quantile of the window (NaN before any sample). */
  get estimateMs(): number {
    return this.sketch.quantile(this.q);
  }

  /** Latencies recorded in the window and timeouts since creation. */
  get stats(): { readonly timeoutMs: number; readonly samples: number; readonly timeouts: number } {
    return { timeoutMs: this.cached, samples: this.sketch.count, timeouts: this.inner.stats.timeouts };
  }

  private recompute(): void {
    const n = this.sketch.count;
    if (n < this.minSamples) {
      this.cached = this.initial;
      return;
    }
    const ms = roundUp(this.sketch.quantile(this.q) * this.multiplier);
    this.cached = Math.min(this.max, Math.max(this.min, ms));
  }

  private record(ms: number): void {
    this.sketch.record(ms);
    // Reading the histogram costs a scan of its buckets: do it every RECOMPUTE_EVERY samples
    // (on every one of the first few, while the estimate moves fast), not on every call.
    const warmingUp = this.recorded < 4 * RECOMPUTE_EVERY;
    if (warmingUp) this.recorded++;
    if (++this.sinceCompute >= RECOMPUTE_EVERY || warmingUp) {
      this.sinceCompute = 0;
      this.recompute();
    }
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
    const t0 = this.clock.now();
    return this.inner._run(ctx, next).then(
      (value) => {
        this.record(this.clock.now() - t0);
        return value;
      },
      (error: unknown) => {
        // A call this policy timed out took (at least) the timeout: recorded as such, so that a
        // slower service raises the estimate. Other failures are not latencies (a refused
        // connection fails in 1 ms and would pull the estimate down during an outage), and a call
        // the caller or an enclosing timeout aborted says nothing about the service.
        if (!ctx._isAborted && error instanceof TimeoutError) this.record(this.clock.now() - t0);
        throw error;
      },
    );
  }
}

/**
 * Makes an adaptive timeout: `quantile × multiplier` of observed latencies, clamped to [minMs, maxMs].
 *
 * @example
 * ```ts
 * import { adaptiveTimeout } from 'bulwark';
 * const t = adaptiveTimeout({ quantile: 0.99, multiplier: 1.5, minMs: 50, maxMs: 5_000, initialMs: 1_000 });
 * await t.execute(({ signal }) => new Promise((resolve) => setTimeout(resolve, 5, 'ok')));
 * console.log(t.timeoutMs);
 * ```
 */
export function adaptiveTimeout(options: AdaptiveTimeoutOptions = {}): AdaptiveTimeoutPolicy {
  return new AdaptiveTimeoutPolicy(checkObject('adaptiveTimeout', options) as AdaptiveTimeoutOptions);
}
