/**
 * The policy contract and composition.
 *
 * A pipeline is built once into a linked chain of links, so an execution walks it with
 * no closure, no array and no extra promise per layer: each policy calls `invoke(ctx, next)`
 * to run the rest of the chain.
 */

import { type Clock, systemClock } from './clock.js';
import { type Context, type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { ConfigError } from './errors.js';
import {
  type Disposer,
  type Listener,
  makeDisposer,
  type PolicyEmitter,
  type PolicyEvent,
} from './events.js';

/**
 * A resilience policy: anything with `execute`. Every policy works alone, and so does a
 * pipeline of them. `Alt` is the type a policy may return instead of the function's own
 * result (a fallback's value).
 *
 * @example
 * ```ts
 * import { retry, type Policy } from 'bulwark';
 * const policy: Policy = retry({ maxAttempts: 3 });
 * const value = await policy.execute(() => 42);
 * ```
 */
export interface Policy<Alt = never, E extends PolicyEvent = PolicyEvent> {
  /** The policy kind, e.g. `retry`. */
  readonly kind: string;
  /** The policy's name, used in events, errors and metrics. */
  readonly name: string;
  /**
   * Runs `fn` under this policy. `fn` receives the execution context (signal, attempt,
   * priority, name, props) and may return a value or a promise.
   */
  execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | Alt>;
  /** Subscribes to this policy's events. Returns a disposer. */
  onEvent(listener: Listener<E>): Disposer;
  /**
   * Type-level only, never set at run time: carries `Alt` so that `pipeline()` can infer the
   * union of its members' alternatives (it cannot be read back from the generic `execute`).
   */
  readonly _alt?: () => Alt;
}

/** Something that holds a built chain (a pipeline) and rebuilds it on request. @internal */
export interface ChainHolder {
  _rebuild(): void;
}

/** What a chain needs of a policy. @internal */
export interface Runnable {
  readonly name: string;
  /** True while the policy is switched off: chains leave it out. (Read only when building.) */
  readonly _off?: boolean;
  /** Tells the policy that `holder`'s chain includes it (so it can ask for rebuilds). */
  _register?(holder: ChainHolder): void;
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown>;
  onEvent(listener: Listener<PolicyEvent>): Disposer;
}

/** One step of a built chain. @internal */
export interface Link {
  readonly policy: Runnable;
  readonly next: Link | null;
}

/**
 * Runs the rest of the chain: the next policy, or the user's function at the end.
 * May throw synchronously (a function that throws); callers are async and turn it into a
 * rejection. @internal
 */
export function invoke(ctx: ExecutionContext, next: Link | null): unknown {
  return next === null ? ctx._fn(ctx) : next.policy._run(ctx, next.next);
}

/**
 * Runs the rest of the chain and returns its outcome as a native promise (a synchronous
 * throw becomes a rejection; a plain value or foreign thenable is adopted). Policies attach
 * `.then` handlers to it rather than awaiting in an async function: that halves the cost
 * of a layer on the success path. @internal
 */
export function start(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
  let r: unknown;
  try {
    r = next === null ? ctx._fn(ctx) : next.policy._run(ctx, next.next);
  } catch (error) {
    return Promise.reject(error);
  }
  return r instanceof Promise ? r : Promise.resolve(r);
}

/**
 * Base class of the built-in policies. @internal
 */
export abstract class PolicyBase<Alt, E extends PolicyEvent> implements Policy<Alt, E> {
  /** Type-level only (see `Policy._alt`). */
  declare readonly _alt?: () => Alt;
  abstract readonly kind: string;
  abstract readonly name: string;
  /** @internal */
  abstract readonly emitter: PolicyEmitter<E>;

  /** @internal Runs this policy around the rest of the chain. */
  abstract _run(ctx: ExecutionContext, next: Link | null): Promise<unknown>;

  execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | Alt> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | Alt>;
  }

  onEvent(listener: Listener<E>): Disposer {
    return this.emitter.on(listener);
  }

  /** The policies this one consists of (itself, for a single policy). @internal */
  _flatten(): readonly Runnable[] {
    return [this];
  }

  /**
   * True while the policy is switched off (a policy with an on/off switch overrides this): the
   * pipelines that hold it leave it out of their chain, so a policy switched off costs nothing.
   * @internal
   */
  get _off(): boolean {
    return false;
  }

  /** Pipelines whose chain includes this policy (weakly held). @internal */
  private _holders: WeakRef<ChainHolder>[] | null = null;

  /** @internal */
  _register(holder: ChainHolder): void {
    const holders = this._holders ?? [];
    if (holders.length >= 32) {
      // Forget pipelines that were collected.
      for (let i = holders.length - 1; i >= 0; i--)
        if (holders[i]!.deref() === undefined) holders.splice(i, 1);
    }
    holders.push(new WeakRef(holder));
    this._holders = holders;
  }

  /** Call when `_off` changes: the pipelines holding this policy rebuild their chains. @internal */
  protected _offChanged(): void {
    const holders = this._holders;
    if (holders === null) return;
    for (const ref of holders) ref.deref()?._rebuild();
  }
}

/** Alternative result types of a list of policies. */
export type AltOf<Ps extends readonly Policy<unknown, PolicyEvent>[]> = {
  [K in keyof Ps]: Ps[K] extends { readonly _alt?: () => infer A } ? A : never;
}[number];

/** Event types of a list of policies. */
export type EventOf<Ps extends readonly Policy<unknown, PolicyEvent>[]> = {
  [K in keyof Ps]: Ps[K] extends Policy<unknown, infer E> ? E : never;
}[number];

class PipelineEmitterView {
  constructor(private readonly policies: readonly Runnable[]) {}
  on(listener: Listener<PolicyEvent>): Disposer {
    const disposers = this.policies.map((p) => p.onEvent(listener));
    return makeDisposer(() => {
      for (const x of disposers) x();
    });
  }
}

/**
 * A pipeline: policies applied outermost first. Built once; nested pipelines are flattened.
 * @internal
 */
export class Pipeline<Alt, E extends PolicyEvent> implements Policy<Alt, E> {
  /** Type-level only (see `Policy._alt`). */
  declare readonly _alt?: () => Alt;
  readonly kind = 'pipeline';
  readonly name: string;
  /** The policies, outermost first. */
  readonly policies: readonly Runnable[];
  private head: Link | null = null;
  private readonly view: PipelineEmitterView;

  constructor(policies: readonly Runnable[]) {
    this.policies = Object.freeze([...policies]);
    this.name = policies.map((p) => p.name).join(' > ') || 'noop';
    this.view = new PipelineEmitterView(this.policies);
    this._rebuild();
    for (const p of this.policies) p._register?.(this);
  }

  /** Builds the chain from the policies that are not switched off. @internal */
  _rebuild(): void {
    let link: Link | null = null;
    const policies = this.policies;
    for (let i = policies.length - 1; i >= 0; i--) {
      const p = policies[i]!;
      if (p._off !== true) link = { policy: p, next: link };
    }
    this.head = link;
  }

  execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | Alt> {
    const ctx = ExecutionContext.root(fn, options);
    const head = this.head;
    if (head === null) return start(ctx, null) as Promise<T | Alt>;
    return head.policy._run(ctx, head.next) as Promise<T | Alt>;
  }

  onEvent(listener: Listener<E>): Disposer {
    return this.view.on(listener as Listener<PolicyEvent>);
  }

  /** @internal */
  _flatten(): readonly Runnable[] {
    return this.policies;
  }
}

/**
 * Composes policies, outermost first: `pipeline(timeout(10_000), retry(), circuitBreaker(), timeout(2_000))`
 * puts one timeout around everything and another around each attempt. A pipeline is itself
 * a policy and may be nested in another pipeline.
 *
 * @example
 * ```ts
 * import { pipeline, retry, circuitBreaker, timeout, bulkhead, backoff, handle } from 'bulwark';
 * const policy = pipeline(
 *   timeout(10_000),
 *   retry({ maxAttempts: 4, backoff: backoff.exponential({ initial: 100, max: 5_000 }), handle: handle.transient() }),
 *   circuitBreaker({ breaker: { kind: 'consecutive', threshold: 5 }, halfOpenAfterMs: 15_000 }),
 *   timeout({ ms: 2_000, strategy: 'abandon' }),
 *   bulkhead({ limit: 10, queue: 100 }),
 * );
 * const res = await policy.execute(({ signal }) => fetch('https://example.org', { signal }));
 * ```
 */
export function pipeline<const Ps extends readonly Policy<unknown, PolicyEvent>[]>(
  ...policies: Ps
): Policy<AltOf<Ps>, EventOf<Ps>> {
  const flat: Runnable[] = [];
  for (const p of policies) {
    const f = (p as unknown as { _flatten?: () => readonly Runnable[] })._flatten;
    if (typeof f !== 'function') {
      throw new TypeError('pipeline() accepts only Bulwark policies (retry, circuitBreaker, timeout, …)');
    }
    flat.push(...f.call(p));
  }
  return new Pipeline<AltOf<Ps>, EventOf<Ps>>(flat);
}

/** Options every policy accepts. */
export interface CommonOptions {
  /** Name used in events, errors and metrics. Default: the policy kind. */
  name?: string;
  /** Clock for timers and durations. Default `systemClock`. */
  clock?: Clock;
}

/** Validates and resolves the clock option (`path` names it in errors). @internal */
export function clockOf(clock: Clock | undefined, path = 'clock'): Clock {
  if (clock === undefined) return systemClock;
  const c = clock as Partial<Record<keyof Clock, unknown>> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.date !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function'
  ) {
    throw new ConfigError(
      path,
      'a Clock (now, date, setTimeout, clearTimeout), e.g. createFakeClock()',
      clock,
    );
  }
  return clock;
}

export type { Context, ExecuteOptions, Operation };
