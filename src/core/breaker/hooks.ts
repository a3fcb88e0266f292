/**
 * The points where a breaker built on the core one (the Redis shared breaker) plugs in: it keeps
 * the core's options, state machine and outcome classification, and only decides what the
 * fleet decides — when a window trips, how probes are admitted and counted, and who hears of a
 * state change.
 */

import type { ExecutionContext } from '../context.js';
import type { PolicyEmitter } from '../events.js';
import type { BreakerConfig } from './options.js';
import type { Outcome } from './outcome.js';

/** Hooks of a circuit breaker. Every hook is optional and called synchronously. @internal */
export interface BreakerHooks {
  /** An outcome counted while closed (`SUCCESS` or `FAILURE`), before the window sees it. */
  counted?(outcome: Outcome, ctx: ExecutionContext): void;
  /** The window tripped: return false to stay closed (the window is then forgotten). */
  tripping?(reason: string): boolean;
  /**
   * A half-open probe settled (any outcome; `slow` for a slow success). Return true to take the
   * decision over: the core then only frees the probe's slot (a failure still opens it unless
   * taken over).
   */
  probeSettled?(outcome: Outcome, slow: boolean, ctx: ExecutionContext): boolean;
  /** The breaker opened by its own decision: a window tripped, or (`probe`) a half-open probe failed. */
  opened?(reason: string, breakMs: number, openCount: number, probe: boolean): void;
  /** The breaker closed by its own decision (enough half-open probes succeeded). */
  closed?(): void;
}

/** How a breaker built on the core one makes its core. @internal */
export interface BreakerInternals {
  /** Its settings, parsed by the outer breaker. */
  readonly config: BreakerConfig;
  /** The component kind in events and snapshots, e.g. `sharedCircuitBreaker`. */
  readonly kind: string;
  /** The outer breaker's emitter: the core emits on it. */
  // biome-ignore lint/suspicious/noExplicitAny: the outer breaker's event type extends the core's with its own kind
  readonly emitter: PolicyEmitter<any>;
  readonly hooks: BreakerHooks;
}
