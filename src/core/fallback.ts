/**
 * Fallback: answers with a value (or a function of the outcome) when the operation fails —
 * on handled errors and results, including rejections by other policies (breaker open,
 * bulkhead full, timeout).
 */

import { defineDescriptor, type Figures } from './component.js';
import { type Context, type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { ConfigError } from './errors.js';
import { type FallbackEvent, PolicyEmitter } from './events.js';
import { Handler, handle as handlers } from './handle.js';
import { checkKeys, checkObject, checkString } from './options.js';
import { type CommonOptions, type Link, PolicyBase, start } from './policy.js';

/** The failure a fallback answers: a handled error, or a handled result. */
export type FallbackOutcome = { readonly error: unknown } | { readonly result: unknown };

/** Options of `fallback()`. */
export interface FallbackOptions extends Omit<CommonOptions, 'clock'> {
  /**
   * Which errors and results get the fallback. Default: every error (except the caller's
   * own abort); no result.
   */
  handle?: Handler;
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'fallback',
  help: 'Answers with a value (or a function of the outcome) when the operation fails.',
  states: ['ready'],
  gauges: {},
  counters: { fallbacks: 'Executions answered by the fallback.' },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A fallback policy. See `fallback()`.
 */
export class FallbackPolicy<R> extends PolicyBase<R, FallbackEvent> {
  readonly kind = 'fallback';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<FallbackEvent>();
  private readonly handler: Handler;
  private readonly produce: (outcome: FallbackOutcome, ctx: Context) => R | PromiseLike<R>;
  private fallbacks = 0;

  constructor(
    valueOrFn: R | ((outcome: FallbackOutcome, ctx: Context) => R | PromiseLike<R>),
    options: FallbackOptions,
  ) {
    super();
    checkKeys('fallback', options as Record<string, unknown>, ['handle', 'name', 'registry']);
    if (options.handle !== undefined && !Handler.is(options.handle)) {
      throw new ConfigError('fallback.handle', 'a handler, e.g. handle.all()', options.handle);
    }
    this.handler = options.handle ?? handlers.all();
    this.name = checkString('fallback.name', options.name, 'fallback');
    this.produce =
      typeof valueOrFn === 'function'
        ? (valueOrFn as (outcome: FallbackOutcome, ctx: Context) => R | PromiseLike<R>)
        : () => valueOrFn;
    this._join('fallback', options.registry);
  }

  protected override _figures(): Figures {
    const counters = { fallbacks: this.fallbacks };
    return { state: 'ready', gauges: {}, counters };
  }

  /** How many executions were answered by the fallback. */
  get stats(): { readonly fallbacks: number } {
    return { fallbacks: this.fallbacks };
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | R> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | R>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    // A caller that aborted before the call gets its reason at once (as every policy does).
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    return start(ctx, next).then(
      this.handler.resultPredicate === null
        ? undefined
        : (result: unknown) => (this.handler.handlesResult(result) ? this.answer({ result }, ctx) : result),
      (error: unknown) => {
        // The caller (or an enclosing timeout) cancelled this scope: it wants no answer at all.
        if (ctx._isAborted && ctx._abortReason === error) throw error;
        if (!this.handler.handlesError(error)) throw error;
        return this.answer({ error }, ctx);
      },
    );
  }

  private answer(outcome: FallbackOutcome, ctx: ExecutionContext): R | PromiseLike<R> {
    this.fallbacks++;
    if (this.emitter.active) {
      this.emitter.emit({
        kind: 'fallback',
        event: 'fallback',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        ...outcome,
      });
    }
    return this.produce(outcome, ctx);
  }
}

/**
 * Makes a fallback: a value, or a function of the outcome (`{ error }` or `{ result }`) and
 * the context. Put it outermost to answer every failure of the policies inside it.
 *
 * @example
 * ```ts
 * import { fallback, pipeline, circuitBreaker, handle } from 'bulwark';
 * const cachedPrice = 9.99;
 * const policy = pipeline(
 *   fallback((outcome) => ('error' in outcome ? cachedPrice : 0)),
 *   circuitBreaker({ breaker: { kind: 'consecutive', threshold: 3 } }),
 * );
 * const price: number = await policy.execute(() => 10.5);
 * const orEmpty = fallback([], { handle: handle.transient() });
 * ```
 */
export function fallback<R>(
  fn: (outcome: FallbackOutcome, ctx: Context) => R | PromiseLike<R>,
  options?: FallbackOptions,
): FallbackPolicy<Awaited<R>>;
export function fallback<const R>(value: R, options?: FallbackOptions): FallbackPolicy<R>;
export function fallback<R>(
  valueOrFn: R | ((outcome: FallbackOutcome, ctx: Context) => R | PromiseLike<R>),
  options: FallbackOptions = {},
): FallbackPolicy<R> {
  return new FallbackPolicy<R>(valueOrFn, checkObject('fallback', options) as FallbackOptions);
}
