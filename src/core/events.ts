/**
 * Telemetry: typed events from every policy, on the policy itself (`policy.onEvent`)
 * and on one process-wide bus (`telemetry.onEvent`). With no listener anywhere, emitting
 * costs two length checks and no allocation.
 */

import type { CircuitState } from './breaker/saved-state.js';

/** Fields common to every event. */
export interface EventBase {
  /** The policy's name (its `name` option, or its kind). */
  readonly name: string;
  /** The priority of the execution that caused the event (`normal` when none was given). */
  readonly priority: string;
  /** The operation name given to `execute(fn, { name })`, if any. */
  readonly operation: string | undefined;
  /** The attempt number (1-based) of the execution when the event happened. */
  readonly attempt: number;
}

/** Events of the retry policy. */
export type RetryEvent =
  | (EventBase & {
      readonly kind: 'retry';
      readonly event: 'retry';
      /** How long the policy waits before the next attempt. */
      readonly delayMs: number;
      /** The handled error or result that caused the retry. */
      readonly error?: unknown;
      readonly result?: unknown;
    })
  | (EventBase & {
      readonly kind: 'retry';
      readonly event: 'giveUp';
      /** Why no further attempt is made. */
      readonly reason: 'maxAttempts' | 'maxDuration' | 'nonRetryable' | 'aborted' | 'budget';
      readonly error?: unknown;
      readonly result?: unknown;
    })
  | (EventBase & { readonly kind: 'retry'; readonly event: 'success'; readonly durationMs: number });

/** Events of the circuit breaker. */
export type CircuitBreakerEvent =
  | (EventBase & {
      readonly kind: 'circuitBreaker';
      readonly event: 'stateChange';
      readonly from: CircuitState;
      readonly to: CircuitState;
      /** For a change to `open`: why it opened. */
      readonly reason?: string;
      /** For a change to `open`: how long until it half-opens. */
      readonly breakMs?: number;
    })
  | (EventBase & {
      readonly kind: 'circuitBreaker';
      readonly event: 'reject';
      readonly state: CircuitState;
      readonly retryAfterMs: number;
    })
  | (EventBase & {
      readonly kind: 'circuitBreaker';
      readonly event: 'bypass';
      readonly state: CircuitState;
    })
  | (EventBase & {
      readonly kind: 'circuitBreaker';
      readonly event: 'success' | 'failure' | 'excluded';
      readonly durationMs: number;
      readonly slow: boolean;
      readonly error?: unknown;
    });

/** Events of the timeout policy. */
export type TimeoutEvent = EventBase & {
  readonly kind: 'timeout';
  readonly event: 'timeout';
  readonly timeoutMs: number;
  readonly strategy: 'cooperative' | 'abandon';
};

/** Events of the bulkhead. */
export type BulkheadEvent =
  | (EventBase & {
      readonly kind: 'bulkhead';
      readonly event: 'reject';
      readonly reason: 'full' | 'queueTimeout';
      /** Calls running now (holding a slot). */
      readonly inFlight: number;
      readonly queued: number;
    })
  | (EventBase & {
      readonly kind: 'bulkhead';
      readonly event: 'queued' | 'dequeued' | 'bypass';
      readonly inFlight: number;
      readonly queued: number;
    });

/** Events of the fallback policy. */
export type FallbackEvent = EventBase & {
  readonly kind: 'fallback';
  readonly event: 'fallback';
  readonly error?: unknown;
  readonly result?: unknown;
};

/**
 * The event of a pipeline: one per execution, with its outcome (`rejected` carries the
 * `RejectedError`'s `reason`) and its duration. Emitted only when someone listens.
 */
export type PipelineEvent = EventBase & {
  readonly kind: 'pipeline';
  readonly event: 'execution';
  readonly outcome: 'success' | 'failure' | 'rejected' | 'timeout';
  /** For `rejected`: the refusal's reason, e.g. `bulkheadFull`. */
  readonly reason?: string;
  readonly durationMs: number;
  readonly error?: unknown;
};

/**
 * The events of each policy kind, keyed by kind. Other modules add their kinds by module
 * augmentation, so the union below grows without this file changing:
 *
 * ```ts nocheck
 * declare module '../core/events.js' {
 *   interface PolicyEventMap { rateLimit: RateLimitEvent }
 * }
 * ```
 */
export interface PolicyEventMap {
  retry: RetryEvent;
  circuitBreaker: CircuitBreakerEvent;
  timeout: TimeoutEvent;
  bulkhead: BulkheadEvent;
  fallback: FallbackEvent;
  pipeline: PipelineEvent;
}

/**
 * Every event any policy emits: a discriminated union on `policy` and `event`.
 */
export type PolicyEvent = PolicyEventMap[keyof PolicyEventMap];

/** A listener for events of type `E`. */
export type Listener<E> = (event: E) => void;

/**
 * Returned by every `on…` subscription: call it (or `.dispose()` it, or let a `using`
 * declaration dispose it) to unsubscribe.
 */
export interface Disposer {
  (): void;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** `Symbol.dispose`, or Node's well-known stand-in where the runtime lacks it. @internal */
export const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

/** Makes an idempotent disposer (callable, `.dispose()`, `using`) around `fn`. @internal */
export function makeDisposer(fn: () => void): Disposer {
  let done = false;
  const d = (() => {
    if (done) return;
    done = true;
    fn();
  }) as Disposer;
  d.dispose = d;
  d[disposeSymbol] = d;
  return d;
}

/**
 * Reports an error that must not break a call (a throwing listener or predicate) as a process
 * warning named `BulwarkListenerError`, with the original error as `cause`. @internal
 */
export function reportError(what: string, error: unknown): void {
  const proc = (globalThis as { process?: { emitWarning?: (w: Error) => void } }).process;
  if (proc?.emitWarning === undefined) return;
  const message = error instanceof Error ? error.message : String(error);
  const warning = new Error(`${what} threw: ${message}`, { cause: error });
  warning.name = 'BulwarkListenerError';
  proc.emitWarning(warning);
}

/**
 * Events that happen on (nearly) every call: outcomes (`success`, `failure`, `excluded`), the
 * pipeline's `execution`, a bulkhead's or limiter's `queued`/`dequeued`/`bypass`, a cache's
 * `hit`/`miss`, a coalescer's `join`. Their figures are in every snapshot's counters and
 * histograms already, so consumers of the whole registry (logs, the event stream, the control
 * plane) subscribe to the `'notable'` events — every event but these — and a policy builds none
 * of these objects unless a listener asked for them by name or for everything.
 */
export const PER_CALL_EVENTS: ReadonlySet<string> = new Set([
  'success',
  'failure',
  'excluded',
  'execution',
  'queued',
  'dequeued',
  'bypass',
  'hit',
  'miss',
  'join',
]);

/**
 * What a listener subscribes to: every event (omitted), the named events only, or `'notable'`
 * (every event but the per-call ones in {@link PER_CALL_EVENTS}).
 *
 * @example
 * ```ts
 * import { circuitBreaker } from 'bulwark';
 * const breaker = circuitBreaker();
 * breaker.onEvent((e) => console.log(e.event), 'notable'); // state changes, rejections: no per-call outcomes
 * ```
 */
export type EventSelection = readonly string[] | 'notable';

interface Registration<E> {
  readonly listener: Listener<E>;
  /** The events this registration wants, or null for all (or all notable ones). */
  readonly only: ReadonlySet<string> | null;
  /** True for a `'notable'` registration: every event but the per-call ones. */
  readonly notable: boolean;
}

const NONE: readonly never[] = Object.freeze([]);

/**
 * A list of listeners. Listeners are called synchronously in registration order; a
 * listener that throws is reported as a process warning and never breaks the policy.
 * A registration may ask for some event names only, so that a policy can tell which
 * events anyone wants (`wants`) and skip building the others.
 */
export class Emitter<E> {
  private list: readonly Registration<E>[] = NONE;
  /** Registrations that want every event. */
  private all = 0;
  /** Registrations that want every event but the per-call ones. */
  private notable = 0;
  /** For registrations that want some events: how many want each. */
  private some: Map<string, number> | null = null;

  /** How many listeners are registered. */
  get size(): number {
    return this.list.length;
  }

  /** True when some listener would receive an event named `event`. */
  wants(event: string): boolean {
    return (
      this.all !== 0 ||
      (this.some !== null && this.some.has(event)) ||
      (this.notable !== 0 && !PER_CALL_EVENTS.has(event))
    );
  }

  /**
   * `wants(event)` for an event of {@link PER_CALL_EVENTS}, without the set lookup (a hot path's
   * check: `'notable'` registrations never want these).
   */
  wantsPerCall(event: string): boolean {
    return this.all !== 0 || (this.some !== null && this.some.has(event));
  }

  /**
   * Registers `listener` for every event, for the named events only, or for the notable ones
   * (`'notable'`: all but {@link PER_CALL_EVENTS}); returns its disposer.
   */
  on(listener: Listener<E>, only?: EventSelection): Disposer {
    const notable = only === 'notable';
    const reg: Registration<E> = {
      listener,
      only: only === undefined || notable ? null : new Set(only),
      notable,
    };
    this.list = [...this.list, reg];
    this.count(reg, 1);
    return makeDisposer(() => {
      const i = this.list.indexOf(reg);
      if (i < 0) return;
      this.list = this.list.filter((_, j) => j !== i);
      this.count(reg, -1);
    });
  }

  private count(reg: Registration<E>, delta: number): void {
    if (reg.notable) {
      this.notable += delta;
      return;
    }
    if (reg.only === null) {
      this.all += delta;
      return;
    }
    const some = this.some ?? new Map<string, number>();
    for (const name of reg.only) {
      const n = (some.get(name) ?? 0) + delta;
      if (n === 0) some.delete(name);
      else some.set(name, n);
    }
    this.some = some.size === 0 ? null : some;
  }

  /** Calls every listener that wants `event`. */
  emit(event: E): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const reg = list[i]!;
      if (reg.only !== null && !reg.only.has((event as { event?: string }).event ?? '')) continue;
      if (reg.notable && PER_CALL_EVENTS.has((event as { event?: string }).event ?? '')) continue;
      try {
        reg.listener(event);
      } catch (error) {
        reportError('A Bulwark event listener', error);
      }
    }
  }
}

const bus = new Emitter<PolicyEvent>();

/**
 * The process-wide event bus: every event of every policy, for metrics, logs and alerts.
 *
 * @example
 * ```ts
 * import { telemetry } from 'bulwark';
 * const stop = telemetry.onEvent((e) => console.log(e.kind, e.name, e.event));
 * // later
 * stop();
 * ```
 */
export const telemetry = {
  /** Subscribes to every event of every policy. Returns a disposer. */
  onEvent(listener: Listener<PolicyEvent>): Disposer {
    return bus.on(listener);
  },
};

/**
 * A policy's own emitter, which also forwards to the process-wide bus.
 * `active` (anyone listening at all) and `wants(event)` (anyone listening to that event) are
 * the checks a hot path makes before building an event object.
 */
export class PolicyEmitter<E extends PolicyEvent> {
  private readonly local = new Emitter<E>();

  /** True when anyone (this policy's listeners or the bus) would receive some event. */
  get active(): boolean {
    return this.local.size !== 0 || bus.size !== 0;
  }

  /** True when anyone would receive an event named `event`. */
  wants(event: E['event']): boolean {
    return bus.size !== 0 || this.local.wants(event);
  }

  /** `wants(event)` for a per-call event ({@link PER_CALL_EVENTS}): the hot path's check. */
  wantsPerCall(event: E['event']): boolean {
    return bus.size !== 0 || this.local.wantsPerCall(event);
  }

  /** Registers a listener: every event, the named ones (`only`), or the notable ones (`'notable'`). */
  on(listener: Listener<E>, only?: readonly E['event'][] | 'notable'): Disposer {
    return this.local.on(listener, only);
  }

  emit(event: E): void {
    if (this.local.size !== 0) this.local.emit(event);
    if (bus.size !== 0) bus.emit(event);
  }
}
