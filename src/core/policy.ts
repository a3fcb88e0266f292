/**
 * The policy contract and composition.
 *
 * A pipeline is built once into a linked chain of links, so an execution walks it with
 * no closure, no array and no extra promise per layer: each policy calls `invoke(ctx, next)`
 * to run the rest of the chain.
 */

import { callTime } from './call-time.js';
import { type Clock, systemClock } from './clock.js';
import {
  type ComponentDescriptor,
  defineDescriptor,
  descriptorOf,
  type Figures,
  type Snapshot,
} from './component.js';
import { type Context, type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { ConfigError, RejectedError, TimeoutError } from './errors.js';
import {
  type Disposer,
  type EventSelection,
  type Listener,
  makeDisposer,
  type PipelineEvent,
  PolicyEmitter,
  type PolicyEvent,
} from './events.js';
import { Histogram } from './histogram.js';
import { checkKeys, checkObject, checkRegistry, checkString } from './options.js';
import { joinRegistry, type Registry } from './registry.js';

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
  /** Subscribes to this policy's events (all, the named ones, or `'notable'`). Returns a disposer. */
  onEvent(listener: Listener<E>, only?: EventSelection): Disposer;
  /** The kind's descriptor: its states, gauges and counters (one frozen object per kind). */
  readonly descriptor: ComponentDescriptor;
  /** The policy's state and figures now (cheap: no I/O). */
  snapshot(): Snapshot;
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
  onEvent(listener: Listener<PolicyEvent>, only?: EventSelection): Disposer;
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

  onEvent(listener: Listener<E>, only?: EventSelection): Disposer {
    return this.emitter.on(listener, only as readonly E['event'][] | 'notable' | undefined);
  }

  /** The kind's descriptor: the one `defineDescriptor` made for `kind` (generic when none). */
  get descriptor(): ComponentDescriptor {
    return descriptorOf(this.kind);
  }

  /** The policy's state and figures now (see `_figures`). */
  snapshot(): Snapshot {
    const f = this._figures();
    return {
      kind: this.kind,
      name: this.name,
      state: f.state ?? 'ready',
      gauges: f.gauges ?? {},
      counters: f.counters ?? {},
      ...(f.histograms !== undefined ? { histograms: f.histograms } : {}),
      ...(f.details !== undefined ? { details: f.details } : {}),
    };
  }

  /** The figures of `snapshot()`; each built-in policy overrides it. @internal */
  protected _figures(): Figures {
    return {};
  }

  /** The policies this one consists of (itself, for a single policy). @internal */
  _flatten(): readonly Runnable[] {
    return [this];
  }

  /** Validates the `registry` option (`path.registry` in errors) and joins it. Call last in a constructor. @internal */
  protected _join(path: string, registry: unknown): void {
    joinRegistry(checkRegistry(`${path}.registry`, registry), this);
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

/** Options of `pipeline()`, given before the policies: `pipeline({ name: 'orders' }, retry(), timeout(1_000))`. */
export interface PipelineOptions {
  /** Name in events, snapshots and metrics. Default: the policies' names joined by ` > `. */
  name?: string;
  /** A registry to join at creation. */
  registry?: Registry;
  /** The clock that times executions (shared with the policies that read the same clock). Default `systemClock`. */
  clock?: Clock;
  /**
   * Time executions into the `durationSeconds` histogram: `'auto'` (default) while something
   * reads the durations — a metrics reader of a registry the pipeline is in (`createMetrics`, the
   * control plane), a latency SLO over it (`readDurations`), a listener of its `execution`
   * events — and then EVERY execution; `true` always; `false` only while a listener of its
   * `execution` events needs each call's duration. Timing costs one clock read at the start,
   * shared with the policies that need the time (a timeout's deadline), and one at the end; an
   * untimed pipeline reads no clock beyond what its policies need.
   */
  timing?: boolean | 'auto';
}

const PIPELINE_DESCRIPTOR = defineDescriptor({
  kind: 'pipeline',
  help: 'A composition of policies: counts every execution by outcome and times it while durations are read.',
  states: ['ready'],
  gauges: { inFlight: 'Executions running now.' },
  counters: {
    successes: 'Executions that returned a value (a fallback value included).',
    failures: 'Executions that failed with an error other than a refusal or a timeout.',
    rejections:
      'Executions refused by a policy (a RejectedError: breaker open, bulkhead full, rate limited, shed, …).',
    timeouts: 'Executions that failed with a TimeoutError.',
  },
  histograms: {
    durationSeconds: 'Duration of executions, in seconds (while timed: when something reads durations).',
  },
});

class PipelineEmitterView {
  constructor(
    private readonly own: PolicyEmitter<PipelineEvent>,
    private readonly policies: readonly Runnable[],
  ) {}
  on(listener: Listener<PolicyEvent>, only?: EventSelection): Disposer {
    const sel = only as readonly PipelineEvent['event'][] | 'notable' | undefined;
    const disposers = [this.own.on(listener, sel), ...this.policies.map((p) => p.onEvent(listener, only))];
    return makeDisposer(() => {
      for (const x of disposers) x();
    });
  }
}

/** An execution's outcome, as counted by a pipeline. */
type Outcome = 'success' | 'failure' | 'rejected' | 'timeout';

/**
 * A pipeline: policies applied outermost first. Built once; nested pipelines are flattened.
 * A component (kind `pipeline`): counts every execution's outcome (`successes`, `failures`,
 * `rejections` by reason, `timeouts`) and, while something reads durations (`timing`), times it
 * (`durationSeconds`).
 */
export class PipelinePolicy<Alt, E extends PolicyEvent> implements Policy<Alt, E | PipelineEvent> {
  /** Type-level only (see `Policy._alt`). */
  declare readonly _alt?: () => Alt;
  readonly kind = 'pipeline';
  readonly name: string;
  /** The policies, outermost first. */
  readonly policies: readonly Runnable[];
  private _timing: boolean | 'auto';
  /** Readers of this pipeline's durations (registries with a reader, `readDurations`). */
  private durationReaders = 0;
  /** Whether executions are timed now (from `timing` and the readers; the hot path's check). */
  private timedNow: boolean;
  private head: Link | null = null;
  private readonly view: PipelineEmitterView;
  private readonly clock: Clock;
  /** @internal */
  readonly emitter = new PolicyEmitter<PipelineEvent>();
  private inFlight = 0;
  private successes = 0;
  private failures = 0;
  private rejections = 0;
  private timeouts = 0;
  private readonly reasons = new Map<string, number>();
  private readonly histogram = new Histogram();

  constructor(policies: readonly Runnable[], options: PipelineOptions = {}) {
    const o = checkObject('pipeline', options);
    checkKeys('pipeline', o, ['name', 'registry', 'clock', 'timing']);
    this.policies = Object.freeze([...policies]);
    this.name = checkString('pipeline.name', o.name, policies.map((p) => p.name).join(' > ') || 'noop');
    this.clock = clockOf(o.clock as Clock | undefined, 'pipeline.clock');
    this._timing = checkTiming(o.timing);
    this.timedNow = this._timing === true;
    this.view = new PipelineEmitterView(this.emitter, this.policies);
    this._rebuild();
    for (const p of this.policies) p._register?.(this);
    joinRegistry(checkRegistry('pipeline.registry', o.registry), this);
  }

  get descriptor(): ComponentDescriptor {
    return PIPELINE_DESCRIPTOR;
  }

  /**
   * How executions are timed (see `PipelineOptions.timing`): `'auto'`, `true` or `false`. May be
   * switched at any time.
   */
  get timing(): boolean | 'auto' {
    return this._timing;
  }

  set timing(value: boolean | 'auto') {
    this._timing = checkTiming(value);
    this.retime();
  }

  /** True while every execution is timed (`timing` true, or `'auto'` with a reader of durations). */
  get timed(): boolean {
    return this.timedNow;
  }

  /** @internal One more or one fewer reader of the durations (see durations.ts). */
  _durationReaders(delta: 1 | -1): void {
    this.durationReaders = Math.max(0, this.durationReaders + delta);
    this.retime();
  }

  private retime(): void {
    this.timedNow = this._timing === true || (this._timing === 'auto' && this.durationReaders !== 0);
  }

  snapshot(): Snapshot {
    return {
      kind: 'pipeline',
      name: this.name,
      state: 'ready',
      gauges: { inFlight: this.inFlight },
      counters: {
        successes: this.successes,
        failures: this.failures,
        rejections: this.rejections,
        timeouts: this.timeouts,
      },
      histograms: { durationSeconds: this.histogram.snapshot() },
      details: {
        policies: this.policies.map((p) => ({ kind: (p as { kind?: string }).kind, name: p.name })),
        rejectionReasons: Object.fromEntries(this.reasons),
        timing: this._timing,
        timed: this.timedNow,
      },
    };
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
    this.inFlight++;
    // Timed while something reads durations (a listener of `execution` events gets them too).
    if (this.timedNow || this.emitter.wantsPerCall('execution')) return this.run(ctx) as Promise<T | Alt>;
    const head = this.head;
    const p = head === null ? start(ctx, null) : head.policy._run(ctx, head.next);
    return p.then(this.onOk, this.onError) as Promise<T | Alt>;
  }

  private readonly onOk = (value: unknown): unknown => {
    this.inFlight--;
    this.successes++;
    return value;
  };

  private readonly onError = (error: unknown): never => {
    this.inFlight--;
    this.count(error);
    throw error;
  };

  /** Counts a failed execution by its error's class. */
  private count(error: unknown): Outcome {
    if (error instanceof RejectedError) {
      this.rejections++;
      this.reasons.set(error.reason, (this.reasons.get(error.reason) ?? 0) + 1);
      return 'rejected';
    }
    if (error instanceof TimeoutError) {
      this.timeouts++;
      return 'timeout';
    }
    this.failures++;
    return 'failure';
  }

  /**
   * An execution timed: one clock read at the start, published to the policies for the
   * synchronous first pass (see call-time.ts), and one at the end.
   */
  private run(ctx: ExecutionContext): Promise<unknown> {
    const clock = this.clock;
    const t0 = clock.now();
    callTime.clock = clock;
    callTime.ms = t0;
    let p: Promise<unknown>;
    try {
      const head = this.head;
      p = head === null ? start(ctx, null) : head.policy._run(ctx, head.next);
    } finally {
      // Cleared, not restored: a pipeline run inside another's first pass leaves the outer
      // pipeline's remaining policies to read the clock themselves (still "now").
      callTime.clock = null;
    }
    return p.then(
      (value) => {
        this.inFlight--;
        this.successes++;
        this.observe(ctx, t0, 'success', undefined);
        return value;
      },
      (error: unknown) => {
        this.inFlight--;
        this.observe(ctx, t0, this.count(error), error);
        throw error;
      },
    );
  }

  private observe(ctx: ExecutionContext, t0: number, outcome: Outcome, error: unknown): void {
    const ms = this.clock.now() - t0;
    this.histogram.observeMs(ms);
    if (!this.emitter.wantsPerCall('execution')) return;
    const base = {
      kind: 'pipeline',
      event: 'execution',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      outcome,
      durationMs: ms,
    } as const;
    this.emitter.emit(
      outcome === 'success'
        ? base
        : outcome === 'rejected'
          ? { ...base, reason: (error as RejectedError).reason, error }
          : { ...base, error },
    );
  }

  onEvent(listener: Listener<E | PipelineEvent>, only?: EventSelection): Disposer {
    return this.view.on(listener as Listener<PolicyEvent>, only);
  }

  /** @internal */
  _flatten(): readonly Runnable[] {
    return this.policies;
  }
}

function checkTiming(value: unknown): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (typeof value !== 'boolean' && value !== 'auto')
    throw new ConfigError('pipeline.timing', "true, false or 'auto'", value);
  return value;
}

function isPolicyLike(value: unknown): boolean {
  return typeof (value as { _flatten?: unknown } | null)?._flatten === 'function';
}

/**
 * Composes policies, outermost first: `pipeline(timeout(10_000), retry(), circuitBreaker(), timeout(2_000))`
 * puts one timeout around everything and another around each attempt. A pipeline is itself
 * a policy and may be nested in another pipeline. Options (name, registry, clock, timing) may
 * come first. A pipeline counts every execution's outcome and, while something reads its durations
 * (metrics over its registry, `timing: true`), times it (`snapshot()`).
 *
 * @example
 * ```ts
 * import { pipeline, retry, circuitBreaker, timeout, bulkhead, backoff, handle, createRegistry } from 'bulwark';
 * const registry = createRegistry();
 * const policy = pipeline(
 *   { name: 'example-api', registry },
 *   timeout(10_000),
 *   retry({ maxAttempts: 4, backoff: backoff.exponential({ initialMs: 100, maxMs: 5_000 }), handle: handle.transient() }),
 *   circuitBreaker({ breaker: { kind: 'consecutive', threshold: 5 }, halfOpenAfterMs: 15_000 }),
 *   timeout({ timeoutMs: 2_000, strategy: 'abandon' }),
 *   bulkhead({ limit: 10, queue: 100 }),
 * );
 * const res = await policy.execute(({ signal }) => fetch('https://example.org', { signal }));
 * console.log(policy.snapshot().counters); // { successes: 1, failures: 0, rejections: 0, timeouts: 0 }
 * ```
 */
export function pipeline<const Ps extends readonly Policy<unknown, PolicyEvent>[]>(
  ...policies: Ps
): PipelinePolicy<AltOf<Ps>, EventOf<Ps>>;
export function pipeline<const Ps extends readonly Policy<unknown, PolicyEvent>[]>(
  options: PipelineOptions,
  ...policies: Ps
): PipelinePolicy<AltOf<Ps>, EventOf<Ps>>;
export function pipeline(...args: unknown[]): PipelinePolicy<unknown, PolicyEvent> {
  const first = args[0] as { execute?: unknown } | null | undefined;
  const options =
    typeof first === 'object' && first !== null && typeof first.execute !== 'function' ? first : undefined;
  const flat: Runnable[] = [];
  for (const p of options === undefined ? args : args.slice(1)) {
    if (!isPolicyLike(p)) {
      throw new TypeError(
        'pipeline() accepts only Bulwark policies (retry, circuitBreaker, timeout, …), optionally after an options object',
      );
    }
    flat.push(...(p as { _flatten(): readonly Runnable[] })._flatten());
  }
  return new PipelinePolicy(flat, options as PipelineOptions | undefined);
}

/** Options every policy accepts. */
export interface CommonOptions {
  /** Name used in events, errors and metrics. Default: the policy kind. */
  name?: string;
  /** Clock for timers and durations. Default `systemClock`. */
  clock?: Clock;
  /** A registry to join at creation (kind + name must be unique in it). */
  registry?: Registry;
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
