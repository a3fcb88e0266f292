/**
 * Hedging: when an attempt is slow (no result after a delay, fixed or taken from a percentile
 * of observed latencies) or fails with a handled error, start another attempt alongside it,
 * up to `maxHedges` extra ones. The first acceptable result wins; every other attempt is
 * aborted through its own signal (each attempt runs in its own child context) and its outcome
 * is observed and dropped. No timer is made per call: delays go through deadline queues.
 */

import type { Clock } from '../core/clock.js';
import { defineDescriptor, type Figures } from '../core/component.js';
import {
  type ChildContext,
  type Context,
  type ExecuteOptions,
  ExecutionContext,
  type Operation,
} from '../core/context.js';
import { type DeadlineNode, type DeadlineQueue, DeadlineQueues } from '../core/deadline-queue.js';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
import { Handler } from '../core/handle.js';
import { checkKeys, checkNumber, checkObject, checkString, optNumber, rules } from '../core/options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, type Runnable, start } from '../core/policy.js';
import { isAbortError } from '../core/transient.js';
import { QuantileSketch } from '../limits/quantile.js';

/** A hedging delay taken from observed latencies. */
export interface QuantileDelay {
  /** The quantile of the latencies of successful attempts, in (0, 1], e.g. 0.95. */
  quantile: number;
  /** The delay before `minSamples` latencies are known, in ms (not clamped). Default 100. */
  initialMs?: number;
  /** Lower bound of the delay taken from the percentile, in ms. Default 1 (never 0: that would hedge every call at once). */
  minMs?: number;
  /** Upper bound of the delay taken from the percentile, in ms. Default Infinity. */
  maxMs?: number;
  /**
   * How long latencies are remembered, ms: the quantile covers the last `windowMs` to
   * 2 × `windowMs` (the one quantile sketch Bulwark uses everywhere). Default 5 000.
   */
  windowMs?: number;
  /** Latencies needed before the percentile is used. Default 20. */
  minSamples?: number;
}

/** Options of `hedge()`. */
export interface HedgeOptions extends CommonOptions {
  /** Wait before each extra attempt: ms (>= 0), or a quantile of observed latencies. */
  delay: number | QuantileDelay;
  /** Extra attempts at most (>= 1). Default 1. */
  maxHedges?: number;
  /**
   * Errors (and results) that start the next attempt at once instead of ending the call.
   * Default: every error except an abort. An unhandled error ends the call with that error.
   */
  handle?: Handler;
  /**
   * Whether to hedge: `true` (default), `false`, or a function of the context (e.g. hedge only
   * `critical` calls). A call that is not hedged runs as if the policy were absent: no timer, no
   * child context, no extra promise.
   */
  enabled?: boolean | ((ctx: Context) => boolean);
}

/** Events of the hedging policy. */
export type HedgeEvent = EventBase & {
  readonly kind: 'hedge';
  readonly event: 'hedge';
  /** Why the extra attempt started: its delay passed, or an attempt failed with a handled error. */
  readonly reason: 'delay' | 'error';
  /** The delay used for this call, in ms. */
  readonly delayMs: number;
};

declare module '../core/events.js' {
  interface PolicyEventMap {
    hedge: HedgeEvent;
  }
}

/**
 * The abort reason of an attempt that lost the race: another attempt won (or the call ended).
 *
 * @example
 * ```ts nocheck
 * await hedged.execute(async ({ signal }) => {
 *   signal.addEventListener('abort', () => console.log(signal.reason instanceof HedgeCancelledError));
 * });
 * ```
 */
export class HedgeCancelledError extends BulwarkError {
  constructor() {
    super('HEDGE_CANCELLED', 'Another hedged attempt settled the call first; this attempt was cancelled');
  }
}

const CANCELLED = new HedgeCancelledError();

/** One hedged call: its attempts, and its node in the delay queue. */
class HedgeCall implements DeadlineNode<HedgeCall> {
  _dlPrev: HedgeCall | null = null;
  _dlNext: HedgeCall | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  /** The first attempt's context (every call has one). */
  first: ChildContext | null = null;
  /** The extra attempts' contexts, made when the first extra attempt starts. */
  more: ChildContext[] | null = null;
  /** Start times of the attempts (percentile delays only). */
  started: number[] | null = null;
  attempts = 0;
  settled = false;
  running = 0;
  hedgesLeft: number;
  hasLast = false;
  lastFailed = false;
  last: unknown = undefined;
  onAbort: (() => void) | null = null;
  resolve!: (v: unknown) => void;
  reject!: (e: unknown) => void;

  constructor(
    readonly policy: HedgePolicy,
    readonly ctx: ExecutionContext,
    readonly next: Link | null,
    readonly queue: DeadlineQueue<HedgeCall> | null,
    readonly delayMs: number,
    maxHedges: number,
  ) {
    this.hedgesLeft = maxHedges;
  }
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'hedge',
  help: 'Starts extra attempts when the first is slow; the first to succeed wins.',
  states: ['ready', 'off'],
  gauges: { delayMs: 'The delay before an extra attempt now, in ms.' },
  counters: {
    executions: 'Executions.',
    hedges: 'Extra attempts started.',
    hedgeWins: 'Executions won by an extra attempt.',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A hedging policy. See `hedge()`.
 */
export class HedgePolicy extends PolicyBase<never, HedgeEvent> {
  readonly kind = 'hedge';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<HedgeEvent>();
  private readonly clock: Clock;
  private readonly fixedDelay: number;
  private readonly pct: Required<Omit<QuantileDelay, 'windowMs'>> | null;
  private readonly window: QuantileSketch | null;
  private readonly maxHedges: number;
  private readonly handler: Handler | null;
  private readonly queues: DeadlineQueues<HedgeCall>;
  private counts = { executions: 0, hedges: 0, hedgeWins: 0 };
  private readonly enabled: boolean | ((ctx: Context) => boolean);

  constructor(options: HedgeOptions) {
    super();
    checkKeys('hedge', options as unknown as Record<string, unknown>, [
      'delay',
      'maxHedges',
      'handle',
      'enabled',
      'name',
      'registry',
      'clock',
    ]);
    this.name = checkString('hedge.name', options.name, 'hedge');
    const enabled = options.enabled;
    if (enabled !== undefined && typeof enabled !== 'boolean' && typeof enabled !== 'function') {
      throw new ConfigError('hedge.enabled', 'a boolean or a function (ctx) => boolean', enabled);
    }
    this.enabled = enabled ?? true;
    this.clock = clockOf(options.clock, 'hedge.clock');
    const d = options.delay;
    if (typeof d === 'number') {
      this.fixedDelay = checkNumber('hedge.delay', d, rules.atLeast(0));
      this.pct = null;
      this.window = null;
    } else if (typeof d === 'object' && d !== null) {
      const o = checkObject('hedge.delay', d);
      checkKeys('hedge.delay', o, ['quantile', 'initialMs', 'minMs', 'maxMs', 'windowMs', 'minSamples']);
      const minMs = optNumber('hedge.delay.minMs', o.minMs, rules.finite(0), 1);
      const maxMs = optNumber('hedge.delay.maxMs', o.maxMs, rules.atLeast(minMs), Number.POSITIVE_INFINITY);
      this.pct = {
        quantile: checkNumber('hedge.delay.quantile', o.quantile, rules.ratio),
        initialMs: optNumber('hedge.delay.initialMs', o.initialMs, rules.atLeast(0), 100),
        minMs,
        maxMs,
        minSamples: optNumber('hedge.delay.minSamples', o.minSamples, rules.int(1), 20),
      };
      this.fixedDelay = -1;
      this.window = new QuantileSketch(
        optNumber('hedge.delay.windowMs', o.windowMs, rules.positive, 5_000),
        this.clock,
      );
    } else {
      throw new ConfigError('hedge.delay', 'a number of ms >= 0 or { quantile: 0.95, … }', d);
    }
    this.maxHedges = optNumber('hedge.maxHedges', options.maxHedges, rules.int(1), 1);
    if (options.handle !== undefined && !Handler.is(options.handle)) {
      throw new ConfigError('hedge.handle', 'a handler, e.g. handle.transient()', options.handle);
    }
    this.handler = options.handle ?? null;
    this.queues = new DeadlineQueues<HedgeCall>(this.clock, (call) => this.onDelay(call));
    this._join('hedge', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    return {
      state: this._off ? 'off' : 'ready',
      gauges: { delayMs: this.currentDelay() },
      counters: { ...this.counts },
    };
  }

  /**
   * A hedge made with `enabled: false` leaves pipelines altogether: switched off, it costs a
   * pipeline nothing. @internal
   */
  override _flatten(): readonly Runnable[] {
    return this.enabled === false ? [] : [this];
  }

  /** Counters since creation: executions, extra attempts started, calls won by an extra attempt. */
  get stats(): { readonly executions: number; readonly hedges: number; readonly hedgeWins: number } {
    return { ...this.counts };
  }

  /** The delay a call starting now would wait before its first extra attempt, in ms. */
  get delayMs(): number {
    return this.currentDelay();
  }

  private currentDelay(): number {
    if (this.pct === null) return this.fixedDelay;
    const p = this.window!.cachedQuantile(this.pct.quantile, this.pct.minSamples);
    if (Number.isNaN(p)) return this.pct.initialMs;
    return Math.min(this.pct.maxMs, Math.max(this.pct.minMs, Math.ceil(p)));
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
    const enabled = this.enabled;
    if (enabled !== true) {
      let on: unknown;
      try {
        on = enabled !== false && enabled(ctx as unknown as Context);
      } catch (error) {
        return Promise.reject(error); // execute() never throws synchronously
      }
      if (typeof on !== 'boolean') {
        return Promise.reject(new ConfigError('hedge.enabled(ctx)', 'a boolean', on));
      }
      if (!on) return start(ctx, next);
    }
    this.counts.executions++;
    const delay = this.currentDelay();
    const queue = delay === Number.POSITIVE_INFINITY || delay === 0 ? null : this.queues.for(delay);
    const call = new HedgeCall(this, ctx, next, queue, delay, this.maxHedges);
    return new Promise((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
      if (ctx._canAbort) {
        const onAbort = () => this.finish(call, null, false, ctx._abortReason, ctx._abortReason);
        call.onAbort = onAbort;
        ctx._watch(onAbort);
      }
      this.attempt(call);
      if (call.settled) return;
      if (delay === 0) {
        while (call.hedgesLeft > 0 && !call.settled) this.hedgeNow(call, 'delay');
      } else if (queue !== null) {
        queue.add(call);
      }
    });
  }

  private attempt(call: HedgeCall): void {
    const child = call.ctx.child();
    child.attempt = call.ctx.attempt + call.attempts;
    if (call.first === null) call.first = child;
    else if (call.more === null) call.more = [child];
    else call.more.push(child);
    call.attempts++;
    if (this.window !== null) {
      if (call.started === null) call.started = [this.clock.now()];
      else call.started.push(this.clock.now());
    }
    call.running++;
    start(child, call.next).then(
      (value) => this.settleSafely(call, () => this.onOk(call, child, value)),
      (error: unknown) => this.settleSafely(call, () => this.onError(call, child, error)),
    );
  }

  /** Runs an attempt's outcome handler; a throw in it (a predicate, say) fails the call. */
  private settleSafely(call: HedgeCall, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      if (!call.settled) this.finish(call, null, false, error, CANCELLED);
    }
  }

  private hedgeNow(call: HedgeCall, reason: 'delay' | 'error'): void {
    call.hedgesLeft--;
    this.counts.hedges++;
    if (this.emitter.wants('hedge')) {
      const ctx = call.ctx;
      this.emitter.emit({
        kind: 'hedge',
        event: 'hedge',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt + call.attempts,
        reason,
        delayMs: call.delayMs,
      });
    }
    this.attempt(call);
  }

  private onDelay(call: HedgeCall): void {
    if (call.settled || call.hedgesLeft === 0) return;
    this.hedgeNow(call, 'delay');
    if (!call.settled && call.hedgesLeft > 0 && call.queue !== null) call.queue.add(call);
  }

  private onOk(call: HedgeCall, child: ChildContext, value: unknown): void {
    call.running--;
    if (call.settled) return;
    if (this.handler !== null && this.handler.handlesResult(value)) {
      this.failed(call, false, value);
      return;
    }
    const i = child === call.first ? 0 : 1 + call.more!.indexOf(child);
    if (i > 0) this.counts.hedgeWins++;
    if (this.window !== null) {
      const now = this.clock.now();
      this.window.record(now - call.started![i]!, now);
    }
    this.finish(call, child, true, value, CANCELLED);
  }

  private onError(call: HedgeCall, child: ChildContext, error: unknown): void {
    call.running--;
    if (call.settled) return;
    const handled =
      !call.ctx._isAborted &&
      (this.handler === null ? !isAbortError(error) : this.handler.handlesError(error));
    if (!handled) {
      this.finish(call, child, false, error, CANCELLED);
      return;
    }
    this.failed(call, true, error);
  }

  /** An attempt failed in a handled way: hedge at once, or end when nothing is left. */
  private failed(call: HedgeCall, isError: boolean, outcome: unknown): void {
    call.hasLast = true;
    call.lastFailed = isError;
    call.last = outcome;
    if (call.hedgesLeft > 0) {
      if (call.queue !== null) call.queue.remove(call);
      this.hedgeNow(call, 'error');
      if (!call.settled && call.hedgesLeft > 0 && call.queue !== null) call.queue.add(call);
      return;
    }
    if (call.running === 0) this.finish(call, null, !isError, outcome, CANCELLED);
  }

  private finish(
    call: HedgeCall,
    winner: ChildContext | null,
    ok: boolean,
    outcome: unknown,
    reason: unknown,
  ): void {
    if (call.settled) return;
    call.settled = true;
    if (call.queue !== null) call.queue.remove(call);
    if (call.onAbort !== null) {
      call.ctx._unwatch(call.onAbort);
      call.onAbort = null;
    }
    const first = call.first;
    if (first !== null) {
      if (first !== winner) first._abort(reason);
      first._finish();
    }
    const more = call.more;
    if (more !== null) {
      for (let i = 0; i < more.length; i++) {
        const c = more[i]!;
        if (c !== winner) c._abort(reason);
        c._finish();
      }
    }
    if (ok) call.resolve(outcome);
    else call.reject(outcome);
  }
}

/**
 * Makes a hedging policy: `hedge({ delay: 50 })`, or
 * `hedge({ delay: { quantile: 0.95 }, maxHedges: 2 })`.
 *
 * @example
 * ```ts nocheck
 * import { hedge } from 'bulwark';
 * const h = hedge({ delay: { quantile: 0.95, minMs: 10 }, maxHedges: 1 });
 * const res = await h.execute(({ signal }) => fetch('https://replica.example/item', { signal }));
 * ```
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(checkObject('hedge', options) as unknown as HedgeOptions);
}
