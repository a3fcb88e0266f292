/**
 * Telemetry: typed events from every policy, on the policy itself (`policy.onEvent`)
 * and on one process-wide bus (`telemetry.onEvent`). With no listener anywhere, emitting
 * costs two length checks and no allocation.
 */

import type { CircuitState } from './circuit-breaker.js';

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
      readonly policy: 'retry';
      readonly event: 'retry';
      /** How long the policy waits before the next attempt. */
      readonly delayMs: number;
      /** The handled error or result that caused the retry. */
      readonly error?: unknown;
      readonly result?: unknown;
    })
  | (EventBase & {
      readonly policy: 'retry';
      readonly event: 'giveUp';
      /** Why no further attempt is made. */
      readonly reason: 'maxAttempts' | 'maxDuration' | 'nonRetryable' | 'aborted' | 'budget';
      readonly error?: unknown;
      readonly result?: unknown;
    })
  | (EventBase & { readonly policy: 'retry'; readonly event: 'success'; readonly durationMs: number });

/** Events of the circuit breaker. */
export type CircuitBreakerEvent =
  | (EventBase & {
      readonly policy: 'circuitBreaker';
      readonly event: 'stateChange';
      readonly from: CircuitState;
      readonly to: CircuitState;
      /** For a change to `open`: why it opened. */
      readonly reason?: string;
      /** For a change to `open`: how long until it half-opens. */
      readonly breakMs?: number;
    })
  | (EventBase & {
      readonly policy: 'circuitBreaker';
      readonly event: 'reject';
      readonly state: CircuitState;
      readonly retryAfterMs: number;
    })
  | (EventBase & {
      readonly policy: 'circuitBreaker';
      readonly event: 'bypass';
      readonly state: CircuitState;
    })
  | (EventBase & {
      readonly policy: 'circuitBreaker';
      readonly event: 'success' | 'failure' | 'excluded';
      readonly durationMs: number;
      readonly slow: boolean;
      readonly error?: unknown;
    });

/** Events of the timeout policy. */
export type TimeoutEvent = EventBase & {
  readonly policy: 'timeout';
  readonly event: 'timeout';
  readonly timeoutMs: number;
  readonly strategy: 'cooperative' | 'abandon';
};

/** Events of the bulkhead. */
export type BulkheadEvent =
  | (EventBase & {
      readonly policy: 'bulkhead';
      readonly event: 'reject';
      readonly reason: 'full' | 'queueTimeout';
      readonly active: number;
      readonly queued: number;
    })
  | (EventBase & {
      readonly policy: 'bulkhead';
      readonly event: 'queued' | 'dequeued' | 'bypass';
      readonly active: number;
      readonly queued: number;
    });

/** Events of the fallback policy. */
export type FallbackEvent = EventBase & {
  readonly policy: 'fallback';
  readonly event: 'fallback';
  readonly error?: unknown;
  readonly result?: unknown;
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

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

function makeDisposer(fn: () => void): Disposer {
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

const NONE: readonly never[] = Object.freeze([]);

function reportListenerError(error: unknown): void {
  const proc = (globalThis as { process?: { emitWarning?: (w: string | Error, type?: string) => void } })
    .process;
  const err = error instanceof Error ? error : new Error(String(error));
  if (proc?.emitWarning) proc.emitWarning(err, 'BulwarkListenerError');
}

/**
 * A list of listeners. Listeners are called synchronously in registration order; a
 * listener that throws is reported as a process warning and never breaks the policy.
 */
export class Emitter<E> {
  private list: readonly Listener<E>[] = NONE;

  /** True when at least one listener is registered. */
  get size(): number {
    return this.list.length;
  }

  /** Registers `listener`; returns its disposer. */
  on(listener: Listener<E>): Disposer {
    this.list = [...this.list, listener];
    return makeDisposer(() => {
      const i = this.list.indexOf(listener);
      if (i >= 0) this.list = this.list.filter((_, j) => j !== i);
    });
  }

  /** Calls every listener with `event`. */
  emit(event: E): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(event);
      } catch (error) {
        reportListenerError(error);
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
 * const stop = telemetry.onEvent((e) => console.log(e.policy, e.name, e.event));
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
 * `active` is the one check a hot path makes before building an event object.
 */
export class PolicyEmitter<E extends PolicyEvent> {
  private readonly local = new Emitter<E>();

  /** True when anyone (this policy's listeners or the bus) would receive an event. */
  get active(): boolean {
    return this.local.size !== 0 || bus.size !== 0;
  }

  on(listener: Listener<E>): Disposer {
    return this.local.on(listener);
  }

  emit(event: E): void {
    if (this.local.size !== 0) this.local.emit(event);
    if (bus.size !== 0) bus.emit(event);
  }
}
