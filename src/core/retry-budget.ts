/**
 * The retry-budget contract between the retry policy and budgets (implementations live in
 * src/limits/retry-budget.ts: ratio, tokens, ratioTokens). The core defines it so that
 * `retry()` needs nothing from src/limits.
 */

import { type Component, type ComponentDescriptor, defineDescriptor, type Snapshot } from './component.js';
import { type Disposer, makeDisposer } from './events.js';

const BUDGET_BRAND: unique symbol = Symbol.for('bulwark.retryBudget');

const DESCRIPTOR = defineDescriptor({
  kind: 'retryBudget',
  help: 'Caps the retries of the retry policies that share it.',
  category: 'limiter',
  states: ['ready'],
  gauges: {
    inFlight: 'Executions in flight in the retry policies sharing the budget.',
    retriesInFlight: 'Granted retries whose attempt has not ended (their backoff wait included).',
    capacity: 'The most the budget allows: retries in flight now (ratio), or tokens (tokens).',
    available: 'What is left now: retries that may start (ratio), or tokens in the bucket (tokens).',
  },
  counters: { granted: 'Retries granted.', refused: 'Retries refused.' },
});

const NO_EVENTS: Disposer = makeDisposer(() => {});

/**
 * A retry budget: pass the same one to several `retry({ budget })` policies. It is a
 * `Component` (kind `retryBudget`): give it a `name` and a `registry` to see it in metrics and
 * on the control plane. The underscored methods are the contract with the retry policy.
 * @internal for them.
 */
export abstract class RetryBudget implements Component {
  readonly kind = 'retryBudget';
  /** The budget's algorithm: `ratio` (Envoy) or `tokens` (AWS SDK quota, Brooker's ratioTokens). */
  abstract readonly algorithm: 'ratio' | 'tokens';
  constructor(readonly name: string) {}
  get descriptor(): ComponentDescriptor {
    return DESCRIPTOR;
  }
  /** Gauges `inFlight`, `retriesInFlight`, `capacity`, `available`; counters `granted`, `refused`. */
  snapshot(): Snapshot {
    const { granted, refused } = this.stats;
    return {
      kind: this.kind,
      name: this.name,
      state: 'ready',
      gauges: this._gauges(),
      counters: { granted, refused },
      details: { algorithm: this.algorithm },
    };
  }
  /** @internal The snapshot's gauges. */
  abstract _gauges(): {
    inFlight: number;
    retriesInFlight: number;
    capacity: number;
    available: number;
  };
  /** A budget emits no events (its figures are in `snapshot()`). */
  onEvent(): Disposer {
    return NO_EVENTS;
  }
  /** @internal */
  get [BUDGET_BRAND](): boolean {
    return true;
  }
  /** Recognises budgets across copies of the library. */
  static is(value: unknown): value is RetryBudget {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [BUDGET_BRAND]?: boolean })[BUDGET_BRAND] === true
    );
  }
  abstract get stats(): {
    readonly algorithm: 'ratio' | 'tokens';
    readonly granted: number;
    readonly refused: number;
  };
  /** @internal An execution starts. */
  abstract _begin(): void;
  /**
   * @internal An execution ends. `cost` is what its last granted retry cost (-1 when it made none).
   */
  abstract _end(success: boolean, cost: number): void;
  /** @internal Asks for one retry after `failure`: its cost (>= 0), or -1 when refused. */
  abstract _acquire(failure: unknown): number;
  /** @internal A granted retry's attempt ended (or its wait was aborted). */
  abstract _attemptEnd(): void;
}
