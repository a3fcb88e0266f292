/**
 * Circuit breaker: stops calling a dependency that keeps failing, lets a few probes through
 * after a break, and closes again when they succeed.
 *
 * States: `closed` (calls flow, outcomes counted) → `open` (calls rejected for the break
 * duration) → `half-open` (up to `halfOpen.probes` probes at once; `successThreshold`
 * successes close it, one failure re-opens it with a longer break when `halfOpenAfterMs` is a
 * backoff). Operators may `isolate()` (reference-counted), `forceOpen()`, `disable()` and
 * `reset()` (also through the control plane: `operations()`). The move from open to half-open
 * happens on the first call after the break.
 * Outcomes are counted only for the state in which the call was admitted (a generation
 * number), so a slow call admitted before the breaker opened cannot close it later.
 *
 * A breaker built on this one (the Redis shared breaker) passes `BreakerInternals`: its own
 * parsed settings, kind, emitter and hooks (see hooks.ts). */

import type { BackoffSequence } from '../backoff.js';
import type { Clock, RandomSource } from '../clock.js';
import type { ComponentOperation, Snapshot } from '../component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../context.js';
import { BrokenCircuitError } from '../errors.js';
import {
  type CircuitBreakerEvent,
  type Disposer,
  type Listener,
  PolicyEmitter,
  reportError,
} from '../events.js';
import type { Handler } from '../handle.js';
import { type Link, PolicyBase, start } from '../policy.js';
import { joinRegistry } from '../registry.js';
import {
  BreakerCounters,
  breakerSnapshot,
  CIRCUIT_BREAKER_DESCRIPTOR,
  SHARED_CIRCUIT_BREAKER_DESCRIPTOR,
} from './descriptor.js';
import type { BreakerHooks, BreakerInternals } from './hooks.js';
import { type IsolationHandle, isolationHandle } from './isolation.js';
import { breakerOperations } from './operations.js';
import { type BreakerConfig, type CircuitBreakerOptions, parseCircuitBreakerOptions } from './options.js';
import { classifyError, classifyResult, FAILURE, NEUTRAL, type Outcome, SUCCESS } from './outcome.js';
import { type CircuitState, readSavedState, type SavedCircuitState } from './saved-state.js';
import { createWindow, type FailureWindow, type WindowFigures } from './windows.js';

/** Counters and the current figures of a breaker (see also `snapshot()`). */
export interface CircuitBreakerStats extends WindowFigures {
  readonly state: CircuitState;
  readonly rejected: number;
  readonly bypassed: number;
  readonly opened: number;
  /** Ms until an open breaker admits a probe (0 when not open). */
  readonly retryAfterMs: number;
}

type StateChange = Extract<CircuitBreakerEvent, { event: 'stateChange' }>;

const NO_HOOKS: BreakerHooks = Object.freeze({});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter): the Component contract.
/**
 * A circuit breaker policy. See `circuitBreaker()`.
 */
export class CircuitBreakerPolicy extends PolicyBase<never, CircuitBreakerEvent> {
  readonly kind: 'circuitBreaker';
  readonly name: string;
  /** @internal */
  readonly emitter: PolicyEmitter<CircuitBreakerEvent>;
  private readonly config: BreakerConfig;
  private readonly hooks: BreakerHooks;
  private readonly window: FailureWindow;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly handler: Handler;
  private readonly excluded: Handler | null;
  /** How predicate errors name this breaker. */
  private readonly who: string;
  private readonly bypass: readonly string[];
  private readonly probes: number;
  private readonly successThreshold: number;
  private readonly counters = new BreakerCounters();

  private _state: CircuitState = 'closed';
  private gen = 0;
  private openUntil = 0;
  private openCount = 0;
  private breakSeq: BackoffSequence | null = null;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  private isolations = 0;
  /** The state `isolate()` interrupted, restored when the last isolation is released. */
  private beforeIsolation: CircuitState = 'closed';
  /** The last break duration computed (used if a backoff throws). */
  private lastBreakMs = 30_000;
  private isolationEpoch = 0;
  private lastChange: { from: CircuitState; to: CircuitState; at: number; reason?: string } | null = null;

  constructor(options: CircuitBreakerOptions = {}, internals?: BreakerInternals) {
    super();
    const config = internals?.config ?? parseCircuitBreakerOptions(options);
    this.config = config;
    this.kind = (internals?.kind ?? 'circuitBreaker') as 'circuitBreaker';
    this.emitter = internals?.emitter ?? new PolicyEmitter<CircuitBreakerEvent>();
    this.hooks = internals?.hooks ?? NO_HOOKS;
    this.window = createWindow(config.window);
    this.probes = config.probes;
    this.successThreshold = config.successThreshold;
    this.handler = config.handler;
    this.excluded = config.excluded;
    this.bypass = config.bypass;
    this.random = config.random;
    this.name = config.name;
    this.who = `${this.kind} "${this.name}"`;
    this.clock = config.clock;
    if (config.initialState !== undefined) this.restore(config.initialState);
    if (internals === undefined) joinRegistry(config.registry, this);
  }

  /** The kind's descriptor (states, gauges, counters). */
  override get descriptor() {
    return this.kind === 'circuitBreaker' ? CIRCUIT_BREAKER_DESCRIPTOR : SHARED_CIRCUIT_BREAKER_DESCRIPTOR;
  }

  /** The current state. (An open breaker whose break has passed turns half-open on the next call.) */
  get state(): CircuitState {
    return this._state;
  }

  /** Counters and current window figures. */
  get stats(): CircuitBreakerStats {
    const now = this.clock.now();
    return {
      state: this._state,
      ...this.window.figures(now),
      rejected: this.counters.rejections,
      bypassed: this.counters.bypasses,
      opened: this.counters.opens,
      retryAfterMs: this.retryAfter(now),
    };
  }

  private retryAfter(now: number): number {
    return this._state === 'open' ? Math.max(0, this.openUntil - now) : 0;
  }

  /**
   * The state, figures and settings, cheap to read (no I/O).
   *
   * @example
   * ```ts
   * import { circuitBreaker } from 'bulwark';
   * const breaker = circuitBreaker({ name: 'payments' });
   * const { state, gauges, counters } = breaker.snapshot();
   * console.log(state, gauges.failureRatio, counters.rejections);
   * ```
   */
  /** The control plane's actions on this breaker (see `breakerOperations`). */
  operations(): readonly ComponentOperation[] {
    return breakerOperations(this);
  }
  override snapshot(): Snapshot {
    const now = this.clock.now();
    const f = this.window.figures(now);
    const c = this.config;
    const hoa = c.halfOpenAfterMs;
    return breakerSnapshot({
      kind: this.kind,
      name: this.name,
      state: this._state,
      calls: f.calls,
      failures: f.failures,
      slow: f.slow,
      probes: this.probesInFlight,
      retryAfterMs: this.retryAfter(now),
      isolations: this.isolations,
      counters: this.counters,
      details: {
        window: c.window,
        halfOpenAfterMs: typeof hoa === 'number' ? hoa : 'backoff',
        probes: c.probes,
        successThreshold: c.successThreshold,
        openCount: this.openCount,
        lastStateChange: this.lastChange,
      },
    });
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
    // A caller that aborted before the call gets its reason at once (as every policy does).
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let probe = false;
    const state = this._state;
    if (state !== 'closed') {
      if (state === 'disabled') return start(ctx, next);
      let admitted: number;
      try {
        admitted = this.admit(ctx);
      } catch (error) {
        return Promise.reject(error);
      }
      if (admitted === 2) return start(ctx, next); // bypass: runs, counts nothing
      probe = admitted === 1;
    }
    const gen = this.gen;
    // NaN: not timed (no slow-call threshold, nobody listening to outcomes when the call started).
    const t0 =
      this.window.slowMs !== Number.POSITIVE_INFINITY || this.wantsOutcomes() ? this.clock.now() : Number.NaN;
    return start(ctx, next).then(
      (result) => {
        this.settle(
          gen,
          probe,
          classifyResult(this.handler, this.excluded, result, this.who),
          t0,
          ctx,
          undefined,
        );
        return result;
      },
      (error: unknown) => {
        this.settle(
          gen,
          probe,
          classifyError(this.handler, this.excluded, error, ctx, this.who),
          t0,
          ctx,
          error,
        );
        throw error;
      },
    );
  }

  /** True when someone listens to per-call outcome events. */
  private wantsOutcomes(): boolean {
    const e = this.emitter;
    return e.active && (e.wantsPerCall('success') || e.wantsPerCall('failure') || e.wantsPerCall('excluded'));
  }

  /** Admission outside `closed`: 1 = probe, 2 = bypass; throws when rejected. */
  private admit(ctx: ExecutionContext): number {
    const now = this.clock.now();
    if (this._state === 'open' && now >= this.openUntil)
      this.transition('half-open', ctx, undefined, undefined);
    const state = this._state;
    if (state === 'half-open' && this.probesInFlight < this.probes) {
      this.probesInFlight++;
      return 1;
    }
    const retryAfterMs =
      state === 'open' ? this.openUntil - now : state === 'half-open' ? 0 : Number.POSITIVE_INFINITY;
    return this._refuse(ctx, state, retryAfterMs) ? 2 : 0;
  }

  /**
   * A call the breaker does not admit in `state`: true when its priority bypasses the breaker
   * (counted and emitted; the caller runs it), else counts the rejection and throws
   * `BrokenCircuitError`. @internal (also used by the shared breaker)
   */
  _refuse(ctx: ExecutionContext, state: CircuitState, retryAfterMs: number): boolean {
    const e = this.emitter;
    if (
      (state === 'open' || state === 'half-open') &&
      this.bypass.length !== 0 &&
      this.bypass.includes(ctx.priority)
    ) {
      this.counters.bypasses++;
      if (e.wantsPerCall('bypass')) e.emit({ ...this.base(ctx), event: 'bypass', state });
      return true;
    }
    this.counters.rejections++;
    if (e.active) e.emit({ ...this.base(ctx), event: 'reject', state, retryAfterMs });
    throw new BrokenCircuitError(
      this.name,
      state as 'open' | 'half-open' | 'isolated' | 'forced-open',
      retryAfterMs,
    );
  }

  private base(ctx: ExecutionContext | null) {
    return {
      kind: this.kind,
      name: this.name,
      priority: ctx?.priority ?? 'normal',
      operation: ctx?.name,
      attempt: ctx?.attempt ?? 0,
    };
  }

  private settle(
    gen: number,
    probe: boolean,
    kind: Outcome,
    t0: number,
    ctx: ExecutionContext,
    error: unknown,
  ): void {
    const slowMs = this.window.slowMs;
    // The clock is read only when something needs it; otherwise `at` is undefined and a
    // transition reads it itself (a break must start now, not at time 0).
    const wanted = this.wantsOutcomes();
    const timed = slowMs !== Number.POSITIVE_INFINITY || wanted || this.window.kind === 'time';
    const now = timed ? this.clock.now() : 0;
    const at = timed ? now : undefined;
    const slow = slowMs !== Number.POSITIVE_INFINITY && now - t0 >= slowMs;
    const c = this.counters;
    if (kind === SUCCESS) c.successes++;
    else if (kind === FAILURE) c.failures++;
    else c.excluded++;
    if (slow) c.slowCalls++;
    if (wanted) {
      const event = kind === SUCCESS ? 'success' : kind === FAILURE ? 'failure' : 'excluded';
      this.emitter.emit({
        ...this.base(ctx),
        event,
        durationMs: Number.isNaN(t0) ? 0 : now - t0,
        slow,
        ...(error === undefined ? {} : { error }),
      });
    }
    if (gen !== this.gen) return; // admitted under an earlier state: its outcome no longer counts
    const hooks = this.hooks;
    if (probe) {
      this.probesInFlight--;
      if (hooks.probeSettled?.(kind, slow, ctx) === true || kind === NEUTRAL) return;
      if (kind === FAILURE || slow) {
        this.open(
          slow && kind !== FAILURE ? 'slow half-open probe' : 'half-open probe failed',
          ctx,
          at,
          true,
        );
      } else if (++this.probeSuccesses >= this.successThreshold) {
        this.transition('closed', ctx, undefined, at);
        hooks.closed?.();
      }
      return;
    }
    if (this._state !== 'closed' || kind === NEUTRAL) return;
    hooks.counted?.(kind, ctx);
    const reason = this.window.record(kind === FAILURE, slow, now);
    if (reason === null) return;
    if (hooks.tripping?.(reason) === false) this.window.reset();
    else this.open(reason, ctx, at, false);
  }

  /** Opens by the breaker's own decision, and tells the hooks. */
  private open(reason: string, ctx: ExecutionContext | null, at: number | undefined, probe: boolean): void {
    const breakMs = this.transition('open', ctx, reason, at);
    this.hooks.opened?.(reason, breakMs ?? 0, this.openCount, probe);
  }

  /** Moves to `to`; returns the break duration when `to` is `open`. */
  private transition(
    to: CircuitState,
    ctx: ExecutionContext | null,
    reason: string | undefined,
    nowOrUndefined: number | undefined,
    fixedBreakMs?: number,
    source?: 'local' | 'remote',
  ): number | undefined {
    const from = this._state;
    this._state = to;
    this.gen++;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    let breakMs: number | undefined;
    if (to === 'open') {
      const now = nowOrUndefined ?? this.clock.now();
      this.openCount++;
      this.counters.opens++;
      breakMs = fixedBreakMs ?? this.nextBreak();
      this.openUntil = now + breakMs;
    } else if (to === 'closed') {
      this.openCount = 0;
      this.breakSeq = null;
      this.window.reset();
    }
    // (reset() of a closed breaker forgets the counts but changes no state: no event.)
    if (from === to && !(to === 'open' && source === 'remote')) return breakMs;
    this.counters.stateChanges++;
    this.lastChange = { from, to, at: this.clock.date(), ...(reason === undefined ? {} : { reason }) };
    if (this.emitter.wants('stateChange')) {
      this.emitter.emit({
        ...this.base(ctx),
        event: 'stateChange',
        from,
        to,
        ...(reason === undefined ? {} : { reason }),
        ...(breakMs === undefined ? {} : { breakMs }),
        ...(source === undefined ? {} : { source }),
      });
    }
    return breakMs;
  }

  /**
   * The next break duration from the `halfOpenAfterMs` option: a number, or a backoff (called
   * with `openCount` already counting this open). A backoff that throws keeps the last duration
   * and is reported.
   */
  private nextBreak(): number {
    const hoa = this.config.halfOpenAfterMs;
    if (typeof hoa === 'number') return hoa;
    try {
      if (this.breakSeq === null) {
        this.breakSeq = hoa.start(undefined, this.random);
        // A restored breaker (openCount from initialState) resumes the growth where it was.
        for (let k = Math.min(this.openCount, 64); k > 1; k--) this.breakSeq.next();
      }
      const ms = this.breakSeq.next();
      this.lastBreakMs = ms;
      return ms;
    } catch (error) {
      reportError(`${this.who}: the halfOpenAfterMs backoff`, error);
      return this.lastBreakMs;
    }
  }

  /**
   * Takes a state decided elsewhere (another instance of a shared breaker, or the fleet's
   * counts) without calling the hooks: `open` for `remainingMs` (0: the next call probes) after
   * `openCount` opens, or `closed`, `forced-open`, `disabled`. The failure window is forgotten.
   * @internal
   */
  _adopt(
    to: 'open' | 'closed' | 'forced-open' | 'disabled',
    reason: string,
    remainingMs = 0,
    openCount = this.openCount,
    source: 'local' | 'remote' = 'remote',
  ): void {
    if (to !== 'open' && to === this._state) return;
    this.window.reset();
    this.transition(to, null, reason, undefined, Math.max(0, remainingMs), source);
    if (to === 'open') this.openCount = Math.max(1, openCount);
  }

  /** Moves an open breaker whose break is over to half-open; returns the state. @internal */
  _halfOpenIfDue(): CircuitState {
    if (this._state === 'open' && this.clock.now() >= this.openUntil)
      this.transition('half-open', null, undefined, undefined);
    return this._state;
  }

  /** Half-open probes running now. @internal */
  get _probes(): number {
    return this.probesInFlight;
  }

  /** Subscribes to every state change. */
  onStateChange(listener: Listener<StateChange>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'stateChange') listener(e);
      },
      ['stateChange'],
    );
  }

  /** Subscribes to the breaker opening. */
  onOpen(listener: Listener<StateChange>): Disposer {
    return this.onStateChange((e) => e.to === 'open' && listener(e));
  }

  /** Subscribes to the breaker closing. */
  onClose(listener: Listener<StateChange>): Disposer {
    return this.onStateChange((e) => e.to === 'closed' && listener(e));
  }

  /** Subscribes to the breaker turning half-open. */
  onHalfOpen(listener: Listener<StateChange>): Disposer {
    return this.onStateChange((e) => e.to === 'half-open' && listener(e));
  }

  /** Subscribes to rejected calls. */
  onReject(listener: Listener<Extract<CircuitBreakerEvent, { event: 'reject' }>>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'reject') listener(e);
      },
      ['reject'],
    );
  }

  /**
   * Holds the breaker open until every handle returned is released (reference-counted):
   * for maintenance windows or a dependency known to be down. Priorities in `bypass` do
   * NOT pass an isolated breaker.
   */
  isolate(): IsolationHandle {
    this.isolations++;
    if (this._state !== 'isolated' && this._state !== 'forced-open') {
      this.beforeIsolation = this._state;
      this.transition('isolated', null, 'isolated', undefined);
    }
    const epoch = this.isolationEpoch;
    let released = false;
    const release = () => {
      if (released || epoch !== this.isolationEpoch) return;
      released = true;
      if (--this.isolations === 0 && this._state === 'isolated') this.endIsolation();
    };
    return isolationHandle(release);
  }

  /**
   * Leaves isolation for the state it interrupted: closed and disabled come back as they were;
   * an open or half-open breaker comes back open, with its break already over, so the next call
   * is a probe (a dependency that was failing does not get full traffic at once).
   */
  private endIsolation(): void {
    const before = this.beforeIsolation;
    if (before === 'open' || before === 'half-open') {
      const openCount = this.openCount;
      this.transition('open', null, 'isolation released', undefined, 0);
      // Not one more open: the break resumes where the isolation interrupted it.
      this.openCount = openCount;
      this.counters.opens--;
    } else {
      this.transition(before === 'disabled' ? 'disabled' : 'closed', null, undefined, undefined);
    }
  }

  /** Opens the breaker until `reset()`, whatever the outcomes. */
  forceOpen(): void {
    if (this._state !== 'forced-open') this.transition('forced-open', null, 'forced open', undefined);
  }

  /** Lets every call through and counts nothing until `reset()`. */
  disable(): void {
    if (this._state !== 'disabled') this.transition('disabled', null, undefined, undefined);
  }

  /** Closes the breaker, forgets its counts and cancels isolation, forcing and disabling. */
  reset(): void {
    this.isolations = 0;
    this.isolationEpoch++;
    this.transition('closed', null, undefined, undefined);
  }

  /** The state to save (for example across a serverless cold start), for `initialState`. */
  toJSON(): SavedCircuitState {
    const now = this.clock.now();
    return {
      v: 1,
      state: this._state,
      savedAt: this.clock.date(),
      openRemainingMs: this.retryAfter(now),
      openCount: this.openCount,
      window: this.window.save(now),
    };
  }

  private restore(saved: unknown): void {
    const r = readSavedState(saved, `${this.kind}.initialState`, this.clock.date());
    const now = this.clock.now();
    this._state = r.state;
    this.openCount = r.openCount;
    this.openUntil = now + r.openRemainingMs;
    if (r.window !== null) this.window.restore(r.window, now);
  }
}

/**
 * Makes a circuit breaker.
 *
 * @example
 * ```ts
 * import { circuitBreaker, backoff, BrokenCircuitError, createRegistry } from 'bulwark';
 * const breaker = circuitBreaker({
 *   name: 'payments',
 *   breaker: { kind: 'time', windowMs: 30_000, minSamples: 20, failureRatio: 0.5 },
 *   halfOpenAfterMs: backoff.exponential({ initialMs: 5_000, maxMs: 60_000, jitter: 'none' }),
 *   bypass: ['critical'],
 *   registry: createRegistry(),
 * });
 * breaker.onOpen((e) => console.warn(`breaker opened: ${e.reason}`));
 * try {
 *   await breaker.execute(() => fetch('https://example.org'));
 * } catch (err) {
 *   if (err instanceof BrokenCircuitError) console.log(`retry in ${err.retryAfterMs} ms`);
 * }
 * console.log(breaker.snapshot().counters);
 * ```
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}
