/**
 * Circuit breaker: stops calling a dependency that keeps failing, lets a few probes through
 * after a break, and closes again when they succeed.
 *
 * States: `closed` (calls flow, outcomes counted) → `open` (calls rejected for the break
 * duration) → `half-open` (up to `halfOpen.probes` probes at once; `successThreshold`
 * successes close it, one failure re-opens it with a longer break when `halfOpenAfter` is a
 * backoff). Operators may `isolate()` (reference-counted), `forceOpen()`, `disable()` and
 * `reset()`. The move from open to half-open happens on the first call after the break.
 *
 * Outcomes are counted only for the state in which the call was admitted (a generation
 * number), so a slow call admitted before the breaker opened cannot close it later.
 */

import { type Backoff, type BackoffSequence, isBackoff } from './backoff.js';
import {
  type BreakerOptions,
  createWindow,
  type FailureWindow,
  type WindowFigures,
} from './breaker-window.js';
import type { Clock } from './clock.js';
import { type RandomSource, systemRandom } from './clock.js';
import type { Priority } from './context.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from './context.js';
import { BrokenCircuitError, BulkheadRejectedError, ConfigError, TimeoutError } from './errors.js';
import {
  type CircuitBreakerEvent,
  type Disposer,
  disposeSymbol,
  type Listener,
  PolicyEmitter,
  reportError,
} from './events.js';
import { DEFAULT_FAILURES, Handler } from './handle.js';
import {
  checkFunction,
  checkKeys,
  checkObject,
  checkPriorities,
  checkString,
  optNumber,
  rules,
} from './options.js';
import { type CommonOptions, clockOf, type Link, PolicyBase, start } from './policy.js';

/** The states of a circuit breaker. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated' | 'forced-open' | 'disabled';

/** What `toJSON()` returns and `initialState` accepts. */
export interface SavedCircuitState {
  readonly v: 1;
  readonly state: CircuitState;
  /** Wall-clock ms when the state was saved. */
  readonly savedAt: number;
  /** For `open`: ms of the break left when saved. */
  readonly openRemainingMs: number;
  /** Opens since the last close (drives a growing break duration). */
  readonly openCount: number;
  /** The failure window's counts. */
  readonly window: unknown;
}

/** Options of `circuitBreaker()`. */
export interface CircuitBreakerOptions extends CommonOptions {
  /** How failures are counted. Default `{ kind: 'consecutive', threshold: 5 }`. */
  breaker?: BreakerOptions;
  /**
   * How long the breaker stays open before admitting probes, in ms, or a backoff whose
   * delays grow with each re-open and reset on close. Default 30 000.
   */
  halfOpenAfter?: number | Backoff;
  /** Half-open admission: `probes` at once (default 1); `successThreshold` successes close (default `probes`). */
  halfOpen?: { probes?: number; successThreshold?: number };
  /**
   * Which errors and results are failures. Default: every error except a bulkhead's
   * rejection; no result. Errors not handled count as successes (the dependency answered).
   */
  handle?: Handler;
  /** Errors and results that count neither way (e.g. a 404, or a validation error). */
  exclude?: Handler;
  /** Priorities that pass while the breaker is open or half-open (counted and emitted, never silent). */
  bypass?: readonly Priority[];
  /** A state saved by `toJSON()` to start from. */
  initialState?: SavedCircuitState;
  /** Random source for a jittered `halfOpenAfter` backoff. Default `Math.random`. */
  random?: RandomSource;
}

/** Outcomes of a call as a breaker counts them. @internal */
export const SUCCESS = 0;
/** @internal */
export const FAILURE = 1;
/** Counts neither way. @internal */
export const NEUTRAL = 2;

/**
 * Classifies a result for a breaker. A `handle`/`exclude` predicate that throws must not break the
 * call nor leak a probe slot: the outcome then counts neither way and the error is reported.
 * @internal (shared with the Redis shared breaker)
 */
export function classifyResult(
  handler: Handler,
  excluded: Handler | null,
  result: unknown,
  who: string,
): number {
  try {
    if (excluded !== null && excluded.handlesResult(result)) return NEUTRAL;
    return handler.handlesResult(result) ? FAILURE : SUCCESS;
  } catch (predicateError) {
    reportError(`${who}: a handle/exclude predicate`, predicateError);
    return NEUTRAL;
  }
}

/** Classifies an error for a breaker (see `classifyResult`). @internal */
export function classifyError(
  handler: Handler,
  excluded: Handler | null,
  error: unknown,
  ctx: ExecutionContext,
  who: string,
): number {
  try {
    if (excluded !== null && excluded.handlesError(error)) return NEUTRAL;
    // Cancelled by the caller: says nothing about the dependency. (An enclosing timeout does.)
    if (ctx._isAborted && !(ctx._abortReason instanceof TimeoutError)) return NEUTRAL;
    if (handler.handlesError(error)) return FAILURE;
    // An unhandled error means the dependency answered, except a bulkhead's rejection:
    // the call never reached the dependency, so it says nothing either way.
    return error instanceof BulkheadRejectedError ? NEUTRAL : SUCCESS;
  } catch (predicateError) {
    reportError(`${who}: a handle/exclude predicate`, predicateError);
    return NEUTRAL;
  }
}
const STATES: readonly CircuitState[] = [
  'closed',
  'open',
  'half-open',
  'isolated',
  'forced-open',
  'disabled',
];

/** A handle returned by `isolate()`: release it to let calls through again. */
export interface IsolationHandle {
  /** Releases this isolation (idempotent). The breaker closes when the last one is released. */
  release(): void;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Counters and the current figures of a breaker. */
export interface CircuitBreakerStats extends WindowFigures {
  readonly state: CircuitState;
  readonly rejected: number;
  readonly bypassed: number;
  readonly opened: number;
  /** Ms until an open breaker admits a probe (0 when not open). */
  readonly retryAfterMs: number;
}

/**
 * A circuit breaker policy. See `circuitBreaker()`.
 */
export class CircuitBreakerPolicy extends PolicyBase<never, CircuitBreakerEvent> {
  readonly kind = 'circuitBreaker';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<CircuitBreakerEvent>();
  private readonly window: FailureWindow;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly handler: Handler;
  private readonly excluded: Handler | null;
  /** How predicate errors name this breaker. */
  private readonly who: string;
  private readonly bypass: readonly string[];
  private readonly breakFixed: number;
  private readonly breakBackoff: Backoff | null;
  private readonly probes: number;
  private readonly successThreshold: number;

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
  private rejected = 0;
  private bypassed = 0;
  private opened = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    super();
    checkKeys('circuitBreaker', options as Record<string, unknown>, [
      'breaker',
      'halfOpenAfter',
      'halfOpen',
      'handle',
      'exclude',
      'bypass',
      'initialState',
      'random',
      'name',
      'clock',
    ]);
    this.window = createWindow(options.breaker);
    const hoa = options.halfOpenAfter;
    if (isBackoff(hoa)) {
      this.breakBackoff = hoa;
      this.breakFixed = 0;
    } else {
      this.breakBackoff = null;
      this.breakFixed = optNumber('circuitBreaker.halfOpenAfter', hoa, rules.finite(0), 30_000);
    }
    const ho = checkObject('circuitBreaker.halfOpen', options.halfOpen);
    checkKeys('circuitBreaker.halfOpen', ho, ['probes', 'successThreshold']);
    this.probes = optNumber('circuitBreaker.halfOpen.probes', ho.probes, rules.int(1), 1);
    this.successThreshold = optNumber(
      'circuitBreaker.halfOpen.successThreshold',
      ho.successThreshold,
      rules.int(1),
      this.probes,
    );
    if (options.handle !== undefined && !Handler.is(options.handle)) {
      throw new ConfigError('circuitBreaker.handle', 'a handler, e.g. handle.transient()', options.handle);
    }
    if (options.exclude !== undefined && !Handler.is(options.exclude)) {
      throw new ConfigError(
        'circuitBreaker.exclude',
        'a handler, e.g. handle.errors(NotFoundError)',
        options.exclude,
      );
    }
    this.handler = options.handle ?? DEFAULT_FAILURES;
    this.excluded = options.exclude ?? null;
    this.bypass = checkPriorities('circuitBreaker.bypass', options.bypass);
    this.random = checkFunction<RandomSource>('circuitBreaker.random', options.random) ?? systemRandom;
    this.name = checkString('circuitBreaker.name', options.name, 'circuitBreaker');
    this.who = `circuitBreaker "${this.name}"`;
    this.clock = clockOf(options.clock, 'circuitBreaker.clock');
    if (options.initialState !== undefined) this.restore(options.initialState);
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
      rejected: this.rejected,
      bypassed: this.bypassed,
      opened: this.opened,
      retryAfterMs: this._state === 'open' ? Math.max(0, this.openUntil - now) : 0,
    };
  }

  /**
   * Runs `fn` under this policy. (Defined on each policy class, not only on the base, so that
   * the call into `_run` stays monomorphic: a measurable saving on the hot path.)
   */
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
    return e.active && (e.wants('success') || e.wants('failure') || e.wants('excluded'));
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
    if (
      (state === 'open' || state === 'half-open') &&
      this.bypass.length !== 0 &&
      this.bypass.includes(ctx.priority)
    ) {
      this.bypassed++;
      if (this.emitter.active) {
        this.emitter.emit({
          kind: 'circuitBreaker',
          event: 'bypass',
          name: this.name,
          priority: ctx.priority,
          operation: ctx.name,
          attempt: ctx.attempt,
          state,
        });
      }
      return 2;
    }
    this.rejected++;
    if (this.emitter.active) {
      this.emitter.emit({
        kind: 'circuitBreaker',
        event: 'reject',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        state,
        retryAfterMs,
      });
    }
    throw new BrokenCircuitError(
      this.name,
      state as 'open' | 'half-open' | 'isolated' | 'forced-open',
      retryAfterMs,
    );
  }

  private settle(
    gen: number,
    probe: boolean,
    kind: number,
    t0: number,
    ctx: ExecutionContext,
    error: unknown,
  ): void {
    const emitter = this.emitter;
    const slowMs = this.window.slowMs;
    // The clock is read only when something needs it; otherwise `at` is undefined and a
    // transition reads it itself (a break must start now, not at time 0).
    const wanted = this.wantsOutcomes();
    const timed = slowMs !== Number.POSITIVE_INFINITY || wanted || this.window.kind === 'time';
    const now = timed ? this.clock.now() : 0;
    const at = timed ? now : undefined;
    const slow = slowMs !== Number.POSITIVE_INFINITY && now - t0 >= slowMs;
    if (wanted) {
      const event = kind === SUCCESS ? 'success' : kind === FAILURE ? 'failure' : 'excluded';
      emitter.emit({
        kind: 'circuitBreaker',
        event,
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        durationMs: Number.isNaN(t0) ? 0 : now - t0,
        slow,
        ...(error === undefined ? {} : { error }),
      });
    }
    if (gen !== this.gen) return; // admitted under an earlier state: its outcome no longer counts
    if (probe) {
      this.probesInFlight--;
      if (kind === NEUTRAL) return;
      if (kind === FAILURE || slow) {
        this.transition(
          'open',
          ctx,
          slow && kind !== FAILURE ? 'slow half-open probe' : 'half-open probe failed',
          at,
        );
      } else if (++this.probeSuccesses >= this.successThreshold) {
        this.transition('closed', ctx, undefined, at);
      }
      return;
    }
    if (this._state !== 'closed' || kind === NEUTRAL) return;
    const reason = this.window.record(kind === FAILURE, slow, now);
    if (reason !== null) this.transition('open', ctx, reason, at);
  }

  private transition(
    to: CircuitState,
    ctx: ExecutionContext | null,
    reason: string | undefined,
    nowOrUndefined: number | undefined,
  ): void {
    const from = this._state;
    this._state = to;
    this.gen++;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    let breakMs: number | undefined;
    if (to === 'open') {
      const now = nowOrUndefined ?? this.clock.now();
      this.openCount++;
      this.opened++;
      if (this.breakBackoff !== null) {
        breakMs = this.nextBreak();
      } else {
        breakMs = this.breakFixed;
      }
      this.openUntil = now + breakMs;
    } else if (to === 'closed') {
      this.openCount = 0;
      this.breakSeq = null;
      this.window.reset();
    }
    // (reset() of a closed breaker forgets the counts but changes no state: no event.)
    if (from !== to && this.emitter.wants('stateChange')) {
      this.emitter.emit({
        kind: 'circuitBreaker',
        event: 'stateChange',
        name: this.name,
        priority: ctx?.priority ?? 'normal',
        operation: ctx?.name,
        attempt: ctx?.attempt ?? 0,
        from,
        to,
        ...(reason === undefined ? {} : { reason }),
        ...(breakMs === undefined ? {} : { breakMs }),
      });
    }
  }

  /**
   * The next break duration from the `halfOpenAfter` backoff (called with `openCount` already
   * counting this open). A backoff that throws keeps the last duration and is reported.
   */
  private nextBreak(): number {
    try {
      if (this.breakSeq === null) {
        this.breakSeq = this.breakBackoff!.start(undefined, this.random);
        // A restored breaker (openCount from initialState) resumes the growth where it was.
        for (let k = Math.min(this.openCount, 64); k > 1; k--) this.breakSeq.next();
      }
      const ms = this.breakSeq.next();
      this.lastBreakMs = ms;
      return ms;
    } catch (error) {
      reportError(`circuitBreaker "${this.name}": the halfOpenAfter backoff`, error);
      return this.lastBreakMs;
    }
  }

  /** Subscribes to every state change. */
  onStateChange(listener: Listener<Extract<CircuitBreakerEvent, { event: 'stateChange' }>>): Disposer {
    return this.emitter.on(
      (e) => {
        if (e.event === 'stateChange') listener(e);
      },
      ['stateChange'],
    );
  }

  /** Subscribes to the breaker opening. */
  onOpen(listener: Listener<Extract<CircuitBreakerEvent, { event: 'stateChange' }>>): Disposer {
    return this.onStateChange((e) => {
      if (e.to === 'open') listener(e);
    });
  }

  /** Subscribes to the breaker closing. */
  onClose(listener: Listener<Extract<CircuitBreakerEvent, { event: 'stateChange' }>>): Disposer {
    return this.onStateChange((e) => {
      if (e.to === 'closed') listener(e);
    });
  }

  /** Subscribes to the breaker turning half-open. */
  onHalfOpen(listener: Listener<Extract<CircuitBreakerEvent, { event: 'stateChange' }>>): Disposer {
    return this.onStateChange((e) => {
      if (e.to === 'half-open') listener(e);
    });
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
    return { release, dispose: release, [disposeSymbol]: release } as IsolationHandle;
  }

  /**
   * Leaves isolation for the state it interrupted: closed and disabled come back as they were;
   * an open or half-open breaker comes back open, with its break already over, so the next call
   * is a probe (a dependency that was failing does not get full traffic at once).
   */
  private endIsolation(): void {
    const before = this.beforeIsolation;
    if (before === 'open' || before === 'half-open') {
      const now = this.clock.now();
      const openCount = this.openCount;
      this._state = 'open'; // through `transition` it would count as one more open
      this.gen++;
      this.openUntil = now;
      this.openCount = openCount;
      if (this.emitter.wants('stateChange')) {
        this.emitter.emit({
          kind: 'circuitBreaker',
          event: 'stateChange',
          name: this.name,
          priority: 'normal',
          operation: undefined,
          attempt: 0,
          from: 'isolated',
          to: 'open',
          reason: 'isolation released',
          breakMs: 0,
        });
      }
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
      openRemainingMs: this._state === 'open' ? Math.max(0, this.openUntil - now) : 0,
      openCount: this.openCount,
      window: this.window.save(now),
    };
  }

  private restore(saved: SavedCircuitState): void {
    const s = checkObject('circuitBreaker.initialState', saved);
    if (s.v !== 1 || typeof s.state !== 'string' || !STATES.includes(s.state as CircuitState)) {
      throw new ConfigError('circuitBreaker.initialState', 'a value returned by toJSON() (v: 1)', saved);
    }
    const now = this.clock.now();
    // Fields a toJSON() could not have produced (NaN, Infinity) are ignored, so that a
    // corrupt saved state can never hold the breaker open forever.
    const age = isFiniteNumber(s.savedAt) ? Math.max(0, this.clock.date() - s.savedAt) : 0;
    const state = s.state as CircuitState;
    this.openCount = isFiniteNumber(s.openCount) && s.openCount >= 0 ? Math.floor(s.openCount) : 0;
    if (state === 'open' || state === 'half-open') {
      this._state = 'open';
      const left = state === 'open' && isFiniteNumber(s.openRemainingMs) ? s.openRemainingMs - age : 0;
      this.openUntil = now + Math.max(0, left);
    } else if (state === 'isolated') {
      // Isolation handles do not survive a restart: restore as forced open (reset() releases it).
      this._state = 'forced-open';
    } else {
      this._state = state;
    }
    if (typeof s.window === 'object' && s.window !== null) {
      this.window.restore({ ...(s.window as object), ageMs: age }, now);
    }
  }
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * Makes a circuit breaker.
 *
 * @example
 * ```ts
 * import { circuitBreaker, backoff, BrokenCircuitError } from 'bulwark';
 * const breaker = circuitBreaker({
 *   breaker: { kind: 'time', windowMs: 30_000, minimumThroughput: 20, failureRateThreshold: 0.5 },
 *   halfOpenAfter: backoff.exponential({ initialMs: 5_000, maxMs: 60_000, jitter: 'none' }),
 *   bypass: ['critical'],
 * });
 * breaker.onOpen((e) => console.warn(`breaker opened: ${e.reason}`));
 * try {
 *   await breaker.execute(() => fetch('https://example.org'));
 * } catch (err) {
 *   if (err instanceof BrokenCircuitError) console.log(`retry in ${err.retryAfterMs} ms`);
 * }
 * ```
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(checkObject('circuitBreaker', options) as CircuitBreakerOptions);
}
