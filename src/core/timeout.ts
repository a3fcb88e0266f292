/**
 * Timeout: bounds how long an execution (or, inside a retry, each attempt) may take.
 *
 * - `cooperative` (default): at the deadline the context's signal is aborted with a
 *   `TimeoutError`; the policy waits for the function to settle. A function that then fails
 *   fails with `TimeoutError` (its own error as `cause`); one that still returns a value
 *   returns it.
 * - `abandon`: at the deadline the signal is aborted AND the call rejects with `TimeoutError`
 *   at once, even if the function ignores its signal (it keeps running; its outcome is
 *   observed and dropped, so it never becomes an unhandled rejection).
 *
 * No timer is created per call: see `deadline-queue.ts`.
 */

import { nowOf } from './call-time.js';
import type { Clock } from './clock.js';
import { defineDescriptor, type Figures } from './component.js';
import { type ChildContext, type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { type DeadlineQueue, DeadlineQueues } from './deadline-queue.js';
import { ConfigError, TimeoutError } from './errors.js';
import { PolicyEmitter, type TimeoutEvent } from './events.js';
import {
  checkEnum,
  checkKeys,
  checkObject,
  checkString,
  type Dynamic,
  DynamicNumber,
  type NumberRule,
} from './options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from './policy.js';

/** `timeout.timeoutMs`: a number > 0 (Infinity allowed; NaN and 0 refused). */
const positiveMs: NumberRule = (v) => (v > 0 ? null : 'a number of milliseconds > 0 (or Infinity)');

/** Options of `timeout()`. */
export interface TimeoutOptions extends CommonOptions {
  /** The timeout in ms (> 0; `Infinity` disables it). May be a function of the context. */
  timeoutMs: Dynamic<number>;
  /** `cooperative` (default) or `abandon`. */
  strategy?: 'cooperative' | 'abandon';
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'timeout',
  help: 'Bounds how long an execution (or each attempt) may take.',
  states: ['ready'],
  gauges: {},
  counters: { timeouts: 'Executions this timeout timed out.' },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A timeout policy. See `timeout()`.
 */
export class TimeoutPolicy extends PolicyBase<never, TimeoutEvent> {
  readonly kind = 'timeout';
  readonly name: string;
  readonly strategy: 'cooperative' | 'abandon';
  /** @internal */
  readonly emitter = new PolicyEmitter<TimeoutEvent>();
  private readonly ms: DynamicNumber;
  private readonly clock: Clock;
  private readonly queues: DeadlineQueues<ChildContext>;
  private timeouts = 0;

  // Deliberate repetition: every policy constructor opens the same way (super(), then checkKeys with its
  // own option names) — the shape of option validation, not shared logic.
  constructor(options: TimeoutOptions) {
    super();
    checkKeys('timeout', options as unknown as Record<string, unknown>, [
      'timeoutMs',
      'strategy',
      'name',
      'clock',
      'registry',
    ]);
    if (options.timeoutMs === undefined)
      throw new ConfigError('timeout.timeoutMs', 'a number of milliseconds > 0', undefined);
    this.ms = DynamicNumber.of('timeout.timeoutMs', options.timeoutMs, positiveMs, 0);
    this.strategy = checkEnum(
      'timeout.strategy',
      options.strategy,
      ['cooperative', 'abandon'],
      'cooperative',
    );
    this.name = checkString('timeout.name', options.name, 'timeout');
    this.clock = clockOf(options.clock, 'timeout.clock');
    this.queues = new DeadlineQueues<ChildContext>(this.clock, (ctx) => this.onExpire(ctx));
    this._join('timeout', options.registry);
  }

  protected override _figures(): Figures {
    return {
      state: 'ready',
      gauges: {},
      counters: { timeouts: this.timeouts },
      details: { timeoutMs: this.ms.fn === null ? this.ms.constant : 'dynamic', strategy: this.strategy },
    };
  }

  /** How many executions this policy has timed out. */
  get stats(): { readonly timeouts: number } {
    return { timeouts: this.timeouts };
  }

  private onExpire(child: ChildContext): void {
    // Already aborted from outside (the caller, an enclosing timeout): not this timeout's doing.
    if (child._aborted) return;
    const ms = child._timeoutMs;
    this.timeouts++;
    child._abort(new TimeoutError(ms));
    if (this.emitter.active) {
      this.emitter.emit({
        kind: 'timeout',
        event: 'timeout',
        name: this.name,
        priority: child.priority,
        operation: child.name,
        attempt: child.attempt,
        timeoutMs: ms,
        strategy: this.strategy,
      });
    }
    const onExpire = child._onExpire;
    if (onExpire !== null) onExpire(child);
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
    // A caller that aborted before the call gets its reason at once (as retry and fetch do).
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let ms: number;
    try {
      ms = this.ms.get(ctx);
    } catch (error) {
      // A bad (or throwing) dynamic `ms`: execute() must reject, never throw.
      return Promise.reject(error);
    }
    if (ms === Number.POSITIVE_INFINITY) return start(ctx, next);
    const child = ctx.child();
    child._timeoutMs = ms;
    const queue = this.queues.for(ms);
    return this.strategy === 'cooperative'
      ? cooperative(child, next, queue, nowOf(this.clock))
      : abandon(ctx, child, next, queue, nowOf(this.clock));
  }
}

function timeoutFailure(child: ChildContext, error: unknown): unknown {
  const reason = child._reason;
  if (!child._aborted || !(reason instanceof TimeoutError)) return error;
  if (error instanceof TimeoutError) return error;
  return new TimeoutError(reason.timeoutMs, error);
}

function cooperative(
  child: ChildContext,
  next: Link | null,
  queue: DeadlineQueue<ChildContext>,
  now: number,
): Promise<unknown> {
  queue.add(child, now);
  return start(child, next).then(
    (value) => {
      queue.remove(child);
      child._finish();
      return value;
    },
    (error: unknown) => {
      queue.remove(child);
      child._finish();
      throw timeoutFailure(child, error);
    },
  );
}

function abandon(
  parent: ExecutionContext,
  child: ChildContext,
  next: Link | null,
  queue: DeadlineQueue<ChildContext>,
  now: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let onAbort: (() => void) | null = null;
    const finish = () => {
      settled = true;
      queue.remove(child);
      child._finish();
      if (onAbort !== null) parent._unwatch(onAbort);
    };
    child._onExpire = () => {
      if (settled) return;
      finish();
      reject(child._reason);
    };
    if (parent._canAbort) {
      // Watched without an AbortController: only the function's read of ctx.signal makes one.
      onAbort = () => {
        if (settled) return;
        const reason = parent._abortReason;
        child._abort(reason);
        finish();
        reject(reason);
      };
      parent._watch(onAbort);
    }
    queue.add(child, now);
    // `start` adopts any outcome (a value, a sync throw, a foreign thenable) as a native promise.
    start(child, next).then(
      (value) => {
        if (settled) return;
        finish();
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        finish();
        reject(timeoutFailure(child, error));
      },
    );
  });
}

/**
 * Makes a timeout policy: `timeout(2_000)` or `timeout({ timeoutMs: 2_000, strategy: 'abandon' })`.
 * Placed outside a retry it bounds the whole operation; inside, each attempt.
 *
 * @example
 * ```ts
 * import { timeout } from 'bulwark';
 * const t = timeout({ timeoutMs: 2_000, strategy: 'abandon' });
 * const res = await t.execute(({ signal }) => fetch('https://example.org', { signal }));
 * ```
 */
export function timeout(msOrOptions: Dynamic<number> | TimeoutOptions): TimeoutPolicy {
  if (typeof msOrOptions === 'number' || typeof msOrOptions === 'function') {
    return new TimeoutPolicy({ timeoutMs: msOrOptions });
  }
  return new TimeoutPolicy(checkObject('timeout', msOrOptions) as unknown as TimeoutOptions);
}
