/**
 * Retry: runs the function again after handled failures, waiting a backoff between attempts.
 */

import { type Backoff, backoff as backoffs, isBackoff } from './backoff.js';
import type { Clock } from './clock.js';
import { type RandomSource, systemRandom } from './clock.js';
import { defineDescriptor, type Figures } from './component.js';
import { type Context, type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { BrokenCircuitError, ConfigError, isNonRetryable } from './errors.js';
import { type Disposer, type Listener, PolicyEmitter, type RetryEvent } from './events.js';
import { Handler } from './handle.js';
// Deliberate repetition: the list of validators this file imports (import lists match by shape).
import {
  checkFunction,
  checkKeys,
  checkObject,
  checkString,
  type Dynamic,
  DynamicNumber,
  type NumberRule,
  optNumber,
  rules,
} from './options.js';
import { type CommonOptions, clockOf, invoke, type Link, PolicyBase, start } from './policy.js';
import { retryAfterOf } from './retry-after.js';
import { RetryBudget } from './retry-budget.js';
import { sleep } from './sleep.js';
import { isAbortError } from './transient.js';

/** Options of `retry()`. */
export interface RetryOptions extends CommonOptions {
  /** Total attempts, the first included (>= 1, or Infinity). Default 3. May be a function of the context. */
  maxAttempts?: Dynamic<number>;
  /** Delays between attempts. Default `backoff.exponential({ initialMs: 100, maxMs: 30_000, jitter: 'full' })`. */
  backoff?: Backoff;
  /**
   * Which errors and results are retried. Default: every error except aborts (the caller's
   * signal or an enclosing timeout), an open breaker's `BrokenCircuitError` (it exists to fail
   * fast) and errors marked `nonRetryable()`; no result.
   */
  handle?: Handler;
  /**
   * Longest total time in ms from the start of the first attempt: a retry whose delay would
   * end at or past it is not made. Default Infinity. May be a function of the context.
   */
  maxDurationMs?: Dynamic<number>;
  /**
   * Honour `Retry-After` (seconds or HTTP date) on a Response-like result, an error's
   * `headers`/`response.headers`, or an error's `retryAfterMs`: the delay becomes the larger
   * of the backoff and the server's ask, the latter capped at `maxMs`. Default
   * `{ maxMs: 60_000 }`; `false` ignores it.
   */
  retryAfter?: false | { maxMs?: number };
  /** Random source for jitter. Default `Math.random`. */
  random?: RandomSource;
  /**
   * A retry budget shared with other retry policies (`retryBudget.ratio()` or
   * `retryBudget.tokens()`): a retry it refuses is not made, and the execution gives up with
   * reason `budget`. Default: none.
   */
  budget?: RetryBudget;
}

/** Marks "no first failure yet" for the retry loop. */
const NO_FAILURE: unique symbol = Symbol('none');

const DEFAULT_BACKOFF = backoffs.exponential({ initialMs: 100, maxMs: 30_000, jitter: 'full' });

/** `maxAttempts`: an integer >= 1 or Infinity (the message keeps the documented wording). */
const ATTEMPTS_RULE: NumberRule = (v) =>
  (Number.isInteger(v) && v >= 1) || v === Number.POSITIVE_INFINITY ? null : 'an integer >= 1';

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'retry',
  help: 'Runs the function again after handled failures, waiting a backoff between attempts.',
  states: ['ready'],
  gauges: {},
  counters: {
    executions: 'Executions started.',
    retries: 'Retries made (attempts after the first).',
    giveUps: 'Executions that failed after the policy stopped retrying.',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A retry policy. See `retry()`.
 */
export class RetryPolicy extends PolicyBase<never, RetryEvent> {
  readonly kind = 'retry';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<RetryEvent>();
  private readonly maxAttempts: DynamicNumber;
  private readonly maxDuration: DynamicNumber;
  private readonly backoff: Backoff;
  private readonly handler: Handler | null;
  private readonly retryAfterMax: number;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly budget: RetryBudget | null;
  /** True when maxDuration is set, so the start time must be read. */
  private readonly timed: boolean;
  private counts = { executions: 0, retries: 0, giveUps: 0 };

  constructor(options: RetryOptions = {}) {
    super();
    checkKeys('retry', options as Record<string, unknown>, [
      'maxAttempts',
      'backoff',
      'handle',
      'maxDurationMs',
      'retryAfter',
      'random',
      'budget',
      'name',
      'clock',
      'registry',
    ]);
    if (options.budget !== undefined && !RetryBudget.is(options.budget)) {
      throw new ConfigError('retry.budget', 'a retry budget, e.g. retryBudget.ratio()', options.budget);
    }
    this.budget = options.budget ?? null;
    this.maxAttempts = DynamicNumber.of('retry.maxAttempts', options.maxAttempts, ATTEMPTS_RULE, 3);
    this.maxDuration = DynamicNumber.of(
      'retry.maxDurationMs',
      options.maxDurationMs,
      rules.atLeast(0),
      Number.POSITIVE_INFINITY,
    );
    this.timed = this.maxDuration.fn !== null || this.maxDuration.constant !== Number.POSITIVE_INFINITY;
    if (options.backoff !== undefined && !isBackoff(options.backoff)) {
      throw new ConfigError(
        'retry.backoff',
        'a backoff, e.g. backoff.exponential({ initialMs: 100 })',
        options.backoff,
      );
    }
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    if (options.handle !== undefined && !Handler.is(options.handle)) {
      throw new ConfigError('retry.handle', 'a handler, e.g. handle.transient()', options.handle);
    }
    this.handler = options.handle ?? null;
    if (options.retryAfter === false) this.retryAfterMax = 0;
    else {
      if (
        options.retryAfter !== undefined &&
        (typeof options.retryAfter !== 'object' || options.retryAfter === null)
      ) {
        throw new ConfigError(
          'retry.retryAfter',
          'false or an options object ({ maxMs })',
          options.retryAfter,
        );
      }
      const ra = checkObject('retry.retryAfter', options.retryAfter);
      checkKeys('retry.retryAfter', ra, ['maxMs']);
      this.retryAfterMax = optNumber('retry.retryAfter.maxMs', ra.maxMs, rules.atLeast(0), 60_000);
    }
    this.random = checkFunction<RandomSource>('retry.random', options.random) ?? systemRandom;
    this.name = checkString('retry.name', options.name, 'retry');
    this.clock = clockOf(options.clock, 'retry.clock');
    this._join('retry', options.registry);
  }

  protected override _figures(): Figures {
    return { state: 'ready', gauges: {}, counters: { ...this.counts } };
  }

  /** Counters since creation: executions, retries made, and executions that gave up. */
  get stats(): { readonly executions: number; readonly retries: number; readonly giveUps: number } {
    return { ...this.counts };
  }

  /** Subscribes to retries (one event before each wait). */
  onRetry(listener: Listener<Extract<RetryEvent, { event: 'retry' }>>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'retry') listener(e);
      },
      ['retry'],
    );
  }

  /** Subscribes to executions that end in failure after the policy stopped retrying. */
  onGiveUp(listener: Listener<Extract<RetryEvent, { event: 'giveUp' }>>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'giveUp') listener(e);
      },
      ['giveUp'],
    );
  }

  private handlesError(error: unknown, ctx: ExecutionContext): boolean {
    if (ctx._isAborted || isNonRetryable(error)) return false;
    // Default: not an abort, and not an open breaker (it exists to fail fast; handle it
    // explicitly to wait for its retryAfterMs).
    if (this.handler === null) return !isAbortError(error) && !(error instanceof BrokenCircuitError);
    return this.handler.handlesError(error);
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
    // A caller that aborted before the call gets its reason at once, like fetch does.
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let maxAttempts: number;
    try {
      maxAttempts = this.maxAttempts.get(ctx);
    } catch (error) {
      return Promise.reject(error); // a bad dynamic value rejects; execute() never throws synchronously
    }
    this.counts.executions++;
    if (this.budget !== null) return this.runBudgeted(ctx, next, maxAttempts, this.budget);
    if (this.timed || this.emitter.wantsPerCall('success'))
      return this.loop(ctx, next, maxAttempts, NO_FAILURE, true);
    // Fast path: the first attempt costs one promise reaction; the loop starts only on failure.
    ctx.attempt = 1;
    const handler = this.handler;
    return start(ctx, next).then(
      handler === null || handler.resultPredicate === null
        ? undefined
        : (result: unknown) =>
            // A predicate that throws rejects the execution (it is not the operation's failure).
            handler.handlesResult(result) ? this.loop(ctx, next, maxAttempts, result, false) : result,
      (error: unknown) => this.loop(ctx, next, maxAttempts, error, true),
    );
  }

  /** `_run` with a budget: the same fast path, plus the budget's count of executions. */
  private runBudgeted(
    ctx: ExecutionContext,
    next: Link | null,
    maxAttempts: number,
    budget: RetryBudget,
  ): Promise<unknown> {
    budget._begin();
    if (this.timed || this.emitter.wantsPerCall('success'))
      return this.loop(ctx, next, maxAttempts, NO_FAILURE, true);
    ctx.attempt = 1;
    const handler = this.handler;
    return start(ctx, next).then(
      (result: unknown) => {
        let retried: boolean;
        try {
          retried = handler !== null && handler.handlesResult(result);
        } catch (error) {
          budget._end(false, -1);
          throw error;
        }
        if (retried) return this.loop(ctx, next, maxAttempts, result, false);
        budget._end(true, -1);
        return result;
      },
      (error: unknown) => this.loop(ctx, next, maxAttempts, error, true),
    );
  }

  /**
   * The retry loop. `first` is the first attempt's failure (an error when `firstIsError`, else a
   * handled result) when the fast path already ran it, or NO_FAILURE to start from attempt 1.
   */
  private async loop(
    ctx: ExecutionContext,
    next: Link | null,
    maxAttempts: number,
    first: unknown,
    firstIsError: boolean,
  ): Promise<unknown> {
    const emitter = this.emitter;
    const startedAt = emitter.wantsPerCall('success') || this.timed ? this.clock.now() : 0;
    let attempt = 1;
    let delays: { next(): number } | null = null;
    let failure: unknown = first;
    let isError = firstIsError;
    let ran = first !== NO_FAILURE; // the first attempt already ran (on the fast path)
    const budget = this.budget;
    // With a budget: the cost of the last granted retry, whether its slot is still held, the outcome.
    let cost = -1; // the cost of the last granted retry; -1 while none was granted
    let holding = false;
    let succeeded = false;
    try {
      for (;;) {
        ctx.attempt = attempt;
        if (!ran) {
          let result: unknown;
          try {
            result = await invoke(ctx, next);
            isError = false;
          } catch (error) {
            failure = error;
            isError = true;
          }
          if (holding) {
            holding = false;
            budget?._attemptEnd();
          }
          // Outside the try: a result predicate that throws rejects the execution, unretried.
          if (!isError) {
            if (this.handler === null || !this.handler.handlesResult(result)) {
              if (emitter.wantsPerCall('success')) this.emitSuccess(ctx, attempt, startedAt);
              succeeded = true;
              return result;
            }
            failure = result;
          }
        }
        ran = false;
        if (isError && !this.handlesError(failure, ctx)) {
          if (isNonRetryable(failure)) this.giveUp(ctx, attempt, 'nonRetryable', failure, true, false);
          else if (ctx._isAborted) this.giveUp(ctx, attempt, 'aborted', failure, true, false);
          throw failure;
        }
        // (an aborted error is never handled; a handled result may still arrive after an abort)
        if (ctx._isAborted) {
          if (!isError) discardBody(failure);
          return this.giveUp(ctx, attempt, 'aborted', ctx._abortReason, true);
        }
        if (attempt >= maxAttempts) return this.giveUp(ctx, attempt, 'maxAttempts', failure, isError);
        if (delays === null) delays = this.backoff.start(ctx as unknown as Context, this.random);
        let delay = delays.next();
        if (this.retryAfterMax > 0) {
          const asked = retryAfterOf(failure, this.clock.date());
          if (asked !== undefined) delay = Math.max(delay, Math.min(asked, this.retryAfterMax));
        }
        const maxDuration = this.maxDuration.get(ctx);
        if (maxDuration !== Number.POSITIVE_INFINITY && this.clock.now() - startedAt + delay >= maxDuration) {
          return this.giveUp(ctx, attempt, 'maxDuration', failure, isError);
        }
        if (budget !== null) {
          const c = budget._acquire(failure);
          if (c < 0) return this.giveUp(ctx, attempt, 'budget', failure, isError);
          cost = c;
          holding = true;
        }
        this.counts.retries++;
        if (emitter.wants('retry')) {
          emitter.emit(
            isError
              ? retryEvent(this.name, ctx, attempt, delay, 'error', failure)
              : retryEvent(this.name, ctx, attempt, delay, 'result', failure),
          );
        }
        // A retried Response is thrown away: free its connection by cancelling its unread body.
        if (!isError) discardBody(failure);
        try {
          // Even a zero delay yields to the event loop, so that timers (an enclosing timeout) and
          // aborts can stop a retry loop that fails at once.
          await sleep(this.clock, delay, ctx);
        } catch (reason) {
          return this.giveUp(ctx, attempt, 'aborted', reason, true); // aborted during the wait
        }
        attempt++;
      }
    } finally {
      if (budget !== null) {
        if (holding) budget._attemptEnd();
        budget._end(succeeded, cost);
      }
    }
  }

  private emitSuccess(ctx: ExecutionContext, attempt: number, start: number): void {
    this.emitter.emit({
      kind: 'retry',
      event: 'success',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt,
      durationMs: this.clock.now() - start,
    });
  }

  /**
   * Records giving up. With `rethrow`, throws the failure when it is an error and returns it
   * when it is a result; without, only records (the caller throws).
   */
  private giveUp(
    ctx: ExecutionContext,
    attempt: number,
    reason: 'maxAttempts' | 'maxDuration' | 'nonRetryable' | 'aborted' | 'budget',
    failure: unknown,
    isError: boolean,
    rethrow = true,
  ): unknown {
    this.counts.giveUps++;
    if (this.emitter.wants('giveUp')) {
      const base = {
        kind: 'retry',
        event: 'giveUp',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt,
        reason,
      } as const;
      this.emitter.emit(isError ? { ...base, error: failure } : { ...base, result: failure });
    }
    if (rethrow && isError) throw failure;
    return failure;
  }
}

function retryEvent(
  name: string,
  ctx: ExecutionContext,
  attempt: number,
  delayMs: number,
  kind: 'error' | 'result',
  failure: unknown,
): RetryEvent {
  const base = {
    kind: 'retry',
    event: 'retry',
    name,
    priority: ctx.priority,
    operation: ctx.name,
    attempt,
    delayMs,
  } as const;
  return kind === 'error' ? { ...base, error: failure } : { ...base, result: failure };
}

/** Cancels the unread body of a fetch-style Response (so its socket is released). */
function discardBody(result: unknown): void {
  if (typeof result !== 'object' || result === null) return;
  const r = result as { bodyUsed?: unknown; body?: { cancel?: unknown } | null };
  const body = r.body;
  if (
    r.bodyUsed === false &&
    typeof body === 'object' &&
    body !== null &&
    typeof body.cancel === 'function'
  ) {
    try {
      const p = (body.cancel as () => unknown).call(body);
      if (p instanceof Promise) p.catch(() => {});
    } catch {
      // a body that cannot be cancelled is left to the garbage collector
    }
  }
}

/**
 * Makes a retry policy.
 *
 * @example
 * ```ts
 * import { retry, backoff, handle } from 'bulwark';
 * const policy = retry({
 *   maxAttempts: 4,
 *   backoff: backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'full' }),
 *   handle: handle.transient(),
 * });
 * policy.onRetry((e) => console.log(`attempt ${e.attempt} failed; retrying in ${e.delayMs} ms`));
 * const res = await policy.execute(({ signal }) => fetch('https://example.org', { signal }));
 * ```
 */
export function retry(options: RetryOptions = {}): RetryPolicy {
  return new RetryPolicy(checkObject('retry', options) as RetryOptions);
}
