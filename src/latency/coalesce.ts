/**
 * Coalescing (single-flight): concurrent calls with the same key share one execution. The
 * first caller's function runs; every caller gets its result or error. A caller that aborts
 * stops waiting at once; the shared execution is aborted only when every waiter has.
 */

import { defineDescriptor, type Figures } from '../core/component.js';
import { ChildContext, type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
import { checkKeys, checkObject, checkString } from '../core/options.js';
import { type Context, type Link, PolicyBase, start } from '../core/policy.js';
import { callKey, checkKeyFunction, type KeyFunction } from './call-key.js';

/** Options of `coalesce()`. */
export interface CoalesceOptions {
  /** The key of a call: calls in flight with the same key share one execution. */
  key: (ctx: Context) => string;
  /** Name used in events. Default `coalesce`. */
  name?: string;
}

/** Events of the coalescing policy. */
export type CoalesceEvent = EventBase & {
  readonly kind: 'coalesce';
  /** `join`: a call joined an execution in flight; `cancel`: every waiter aborted, so it was aborted. */
  readonly event: 'join' | 'cancel';
  readonly key: string;
  /** Callers waiting on the shared execution, this one included. */
  readonly waiters: number;
};

declare module '../core/events.js' {
  interface PolicyEventMap {
    coalesce: CoalesceEvent;
  }
}

/** One shared execution. */
class Flight {
  waiters = 0;
  done = false;
  constructor(
    readonly key: string,
    /** The shared execution's own context, or null when it cannot be cancelled. */
    readonly ctx: ChildContext | null,
    public promise: Promise<unknown>,
  ) {}
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'coalesce',
  help: 'Concurrent calls with the same key share one execution.',
  states: ['ready'],
  gauges: { inFlight: 'Shared executions running now.' },
  counters: {
    executions: 'Executions run.',
    joined: 'Calls that joined a running execution.',
    cancelled: 'Shared executions cancelled (every caller left).',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A coalescing policy. See `coalesce()`.
 */
export class CoalescePolicy extends PolicyBase<never, CoalesceEvent> {
  readonly kind = 'coalesce';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<CoalesceEvent>();
  private readonly key: KeyFunction;
  private readonly flights = new Map<string, Flight>();
  private counts = { executions: 0, joined: 0, cancelled: 0 };

  constructor(options: CoalesceOptions) {
    super();
    checkKeys('coalesce', options as unknown as Record<string, unknown>, ['key', 'name', 'registry']);
    this.key = checkKeyFunction('coalesce.key', options.key);
    this.name = checkString('coalesce.name', options.name, 'coalesce');
    this._join('coalesce', (options as { registry?: unknown }).registry);
  }

  protected override _figures(): Figures {
    return {
      state: 'ready',
      gauges: { inFlight: this.flights.size },
      counters: { ...this.counts },
    };
  }

  /** Executions in flight now, and counters since creation. */
  get stats(): {
    readonly inFlight: number;
    readonly executions: number;
    readonly joined: number;
    readonly cancelled: number;
  } {
    return { inFlight: this.flights.size, ...this.counts };
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
    let key: string;
    try {
      key = callKey(this.key, ctx, 'coalesce.key(ctx)');
    } catch (error) {
      return Promise.reject(error);
    }
    let flight = this.flights.get(key);
    if (flight === undefined) {
      // The shared execution does not hang on the first caller's signal: it runs in a context
      // of its own, aborted only when every waiter has gone. A first caller that cannot abort
      // never leaves, so the execution can never be cancelled: it runs in the caller's context.
      let shared: ChildContext | null = null;
      let run: ExecutionContext = ctx;
      if (ctx._canAbort) {
        const root = new ExecutionContext(ctx._fn, null, ctx.priority, ctx.name, ctx.props);
        root.attempt = ctx.attempt;
        shared = new ChildContext(root);
        shared.attempt = ctx.attempt;
        run = shared;
      }
      this.counts.executions++;
      const f: Flight = new Flight(key, shared, null as unknown as Promise<unknown>);
      f.promise = start(run, next).then(
        (value) => {
          this.land(f);
          return value;
        },
        (error: unknown) => {
          this.land(f);
          throw error;
        },
      );
      flight = f;
      this.flights.set(key, f);
    } else {
      this.counts.joined++;
      if (this.emitter.wantsPerCall('join')) this.emit('join', ctx, flight, flight.waiters + 1);
    }
    flight.waiters++;
    if (!ctx._canAbort) return flight.promise;
    return this.wait(ctx, flight);
  }

  /** The shared execution settled. */
  private land(f: Flight): void {
    f.done = true;
    f.ctx?._finish();
    if (this.flights.get(f.key) === f) this.flights.delete(f.key);
  }

  private wait(ctx: ExecutionContext, flight: Flight): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let waiting = true;
      const onAbort = () => {
        if (!waiting) return;
        waiting = false;
        reject(ctx._abortReason);
        flight.waiters--;
        if (flight.waiters === 0 && !flight.done) {
          this.counts.cancelled++;
          if (this.flights.get(flight.key) === flight) this.flights.delete(flight.key);
          if (this.emitter.wants('cancel')) this.emit('cancel', ctx, flight, 0);
          flight.ctx?._abort(ctx._abortReason);
        }
      };
      ctx._watch(onAbort);
      flight.promise.then(
        (value) => {
          if (!waiting) return;
          waiting = false;
          ctx._unwatch(onAbort);
          resolve(value);
        },
        (error: unknown) => {
          if (!waiting) return;
          waiting = false;
          ctx._unwatch(onAbort);
          reject(error);
        },
      );
    });
  }

  private emit(event: 'join' | 'cancel', ctx: ExecutionContext, flight: Flight, waiters: number): void {
    this.emitter.emit({
      kind: 'coalesce',
      event,
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      key: flight.key,
      waiters,
    });
  }
}

/**
 * Makes a coalescing (single-flight) policy.
 *
 * @example
 * ```ts nocheck
 * import { coalesce } from 'bulwark';
 * const sf = coalesce({ key: (ctx) => `user:${ctx.props.id}` });
 * const [a, b] = await Promise.all([
 *   sf.execute(loadUser, { props: { id: 1 } }),
 *   sf.execute(loadUser, { props: { id: 1 } }), // shares the first call's execution
 * ]);
 * ```
 */
export function coalesce(options: CoalesceOptions): CoalescePolicy {
  return new CoalescePolicy(checkObject('coalesce', options) as unknown as CoalesceOptions);
}
