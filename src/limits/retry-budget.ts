/**
 * Retry budgets: one budget shared by many retry policies caps how much extra load retries
 * may add, whatever each policy's `maxAttempts`.
 *
 * - `retryBudget.ratio()` (Envoy): retries in flight <= max(ratio × executions in flight,
 *   minRetriesConcurrent).
 * - `retryBudget.tokens()` (AWS SDK retry quota): a bucket of `capacity` tokens; each retry
 *   withdraws a cost (`timeoutCost` for a timeout or network error, `retryCost` otherwise);
 *   a success refunds the cost of its last retry, or `noRetryIncrement` when it needed none.
 * - `retryBudget.ratioTokens()` (Marc Brooker's retry budget): each execution deposits `ratio`
 *   tokens into a bucket of `capacity` (empty at start); each retry costs 1; nothing is refunded.
 *   Retries granted <= ratio × executions + initial, at any load.
 */

import { registrySchema } from '../core/common-schemas.js';
import { ConfigError } from '../core/errors.js';
import { checkFunction, checkKeys, checkObject, optNumber, rules } from '../core/options.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { RetryBudget } from '../core/retry-budget.js';
import { s } from '../core/schema.js';
import { isTransient } from '../core/transient.js';

/** Figures of a ratio budget. */
export interface RatioBudgetStats {
  readonly algorithm: 'ratio';
  /** Executions in flight in the retry policies sharing the budget. */
  readonly inFlight: number;
  /** Retries in flight (from their grant until their attempt ends, the backoff wait included). */
  readonly retriesInFlight: number;
  /** Retries that may be in flight now: max(ratio × inFlight, minRetriesConcurrent). */
  readonly maxRetriesInFlight: number;
  /** Retries granted since creation. */
  readonly granted: number;
  /** Retries refused since creation. */
  readonly refused: number;
}

/** Figures of a token budget. */
export interface TokenBudgetStats {
  readonly algorithm: 'tokens';
  readonly capacity: number;
  /** Tokens in the bucket now. */
  readonly available: number;
  readonly granted: number;
  readonly refused: number;
}

/** Options every budget takes. */
export interface BudgetCommonOptions {
  /** The budget's name, as a component. Default `retryBudget`. */
  name?: string;
  /** Registers the budget (a `Component`) in this registry. */
  registry?: Registry;
}

/** Options of `retryBudget.ratio()`. */
export interface RatioBudgetOptions extends BudgetCommonOptions {
  /** Share of in-flight executions that may be retrying, in (0, 1]. Default 0.2 (Envoy's 20%). */
  ratio?: number;
  /** Retries always allowed in flight, whatever the ratio (integer >= 0). Default 3. */
  minRetriesConcurrent?: number;
}

export class RatioRetryBudget extends RetryBudget {
  readonly algorithm = 'ratio' as const;
  private active = 0;
  private retrying = 0;
  private granted = 0;
  private refused = 0;
  // Deliberate repetition: zeroed counter fields and a constructor taking its parameters, as in the
  // other windows and budgets: the same shape, other figures.
  constructor(
    name: string,
    private readonly ratio: number,
    private readonly min: number,
  ) {
    super(name);
  }
  private max(): number {
    return Math.max(this.ratio * this.active, this.min);
  }
  get stats(): RatioBudgetStats {
    return {
      algorithm: 'ratio',
      inFlight: this.active,
      retriesInFlight: this.retrying,
      maxRetriesInFlight: this.max(),
      granted: this.granted,
      refused: this.refused,
    };
  }
  _gauges() {
    const max = this.max();
    return {
      inFlight: this.active,
      retriesInFlight: this.retrying,
      capacity: max,
      available: Math.max(0, Math.floor(max - this.retrying)),
    };
  }
  _begin(): void {
    this.active++;
  }
  _end(_success: boolean, _cost: number): void {
    this.active--;
  }
  _acquire(_failure: unknown): number {
    // A retry is granted only if, once in flight, the number of retries stays within the cap.
    if (this.retrying + 1 > this.max()) {
      this.refused++;
      return -1;
    }
    this.retrying++;
    this.granted++;
    return 0;
  }
  _attemptEnd(): void {
    this.retrying--;
  }
}

/** Options of `retryBudget.tokens()` (AWS SDK quota; see `retryBudget.ratioTokens()` for Brooker's). */
export interface TokenBudgetOptions extends BudgetCommonOptions {
  /** Bucket size, and its content at start (> 0). Default 500. */
  capacity?: number;
  /** Cost of a retry after a failure that is not a timeout (throttling, 5xx, …). Default 5. */
  retryCost?: number;
  /** Cost of a retry after a timeout or network error. Default 10. */
  timeoutCost?: number;
  /** Tokens a success that needed no retry puts back. Default 1. */
  noRetryIncrement?: number;
  /**
   * Cost of a retry after `failure`, overriding `retryCost`/`timeoutCost`. Default: `timeoutCost`
   * for a `TimeoutError` or a transient error without an HTTP status (ECONNRESET, …), else `retryCost`.
   */
  costOf?: (failure: unknown) => number;
}

function nameOf(path: string, name: unknown): string {
  return s.optional(s.string({ minLength: 1 })).parse(name, `${path}.name`) ?? 'retryBudget';
}

function registryOf(path: string, registry: unknown): Registry | undefined {
  return s.optional(registrySchema).parse(registry, `${path}.registry`);
}

/** True for a timeout or a network error (what the AWS SDK calls TRANSIENT). */
export function isTimeoutLike(failure: unknown): boolean {
  if (!(failure instanceof Error)) return false;
  if (failure.name === 'TimeoutError') return true;
  const f = failure as { status?: unknown; statusCode?: unknown; response?: unknown };
  return (
    f.status === undefined && f.statusCode === undefined && f.response === undefined && isTransient(failure)
  );
}

/** Options of `retryBudget.ratioTokens()`. */
export interface RatioTokensBudgetOptions extends BudgetCommonOptions {
  /** Tokens each execution deposits, i.e. retries allowed per execution, in (0, 1]. Default 0.2. */
  ratio?: number;
  /** Most tokens the bucket holds: the largest burst of retries (finite, >= 1). Default 10. */
  capacity?: number;
  /** Tokens in the bucket at start, in [0, capacity]. Default 0 (empty). */
  initial?: number;
}

/**
 * A deposit that lands within this of a whole number of tokens is that number, so that
 * 10 × 0.1 tokens pay for one retry despite floating-point error.
 */
const TOKEN_EPSILON = 1e-9;

export class TokenRetryBudget extends RetryBudget {
  readonly algorithm = 'tokens' as const;
  private available: number;
  private inFlight = 0;
  private retrying = 0;
  private granted = 0;
  private refused = 0;
  // Deliberate repetition: zeroed counter fields and a constructor taking its parameters, as in the
  // other windows and budgets: the same shape, other figures.
  /**
   * @param deposit tokens each execution puts in when it starts (0: none, as the AWS quota).
   * @param refunds whether a success puts tokens back (the AWS quota) or not (`ratioTokens`).
   */
  constructor(
    name: string,
    private readonly capacity: number,
    private readonly retryCost: number,
    private readonly timeoutCost: number,
    private readonly increment: number,
    private readonly costOf: ((failure: unknown) => number) | undefined,
    private readonly deposit = 0,
    private readonly refunds = true,
    initial: number = capacity,
  ) {
    super(name);
    this.available = initial;
  }
  get stats(): TokenBudgetStats {
    return {
      algorithm: 'tokens',
      capacity: this.capacity,
      available: this.available,
      granted: this.granted,
      refused: this.refused,
    };
  }
  _gauges() {
    return {
      inFlight: this.inFlight,
      retriesInFlight: this.retrying,
      capacity: this.capacity,
      available: this.available,
    };
  }
  _begin(): void {
    this.inFlight++;
    if (this.deposit === 0) return;
    let v = this.available + this.deposit;
    const whole = Math.round(v);
    if (Math.abs(v - whole) < TOKEN_EPSILON) v = whole;
    this.available = v < this.capacity ? v : this.capacity;
  }
  _end(success: boolean, cost: number): void {
    this.inFlight--;
    if (!success || !this.refunds) return;
    // AWS SDK: a success refunds its last retry's cost (even 0), or `noRetryIncrement` without one.
    this.available = Math.min(this.capacity, this.available + (cost >= 0 ? cost : this.increment));
  }
  _acquire(failure: unknown): number {
    let cost: number;
    if (this.costOf !== undefined) {
      cost = this.costOf(failure);
      if (typeof cost !== 'number' || !(cost >= 0) || !Number.isFinite(cost)) {
        throw new ConfigError('retryBudget.tokens.costOf(failure)', 'a finite number >= 0', cost);
      }
    } else cost = isTimeoutLike(failure) ? this.timeoutCost : this.retryCost;
    if (this.available < cost) {
      this.refused++;
      return -1;
    }
    this.available -= cost;
    this.granted++;
    this.retrying++;
    return cost;
  }
  _attemptEnd(): void {
    this.retrying--;
  }
}

/**
 * Makes retry budgets.
 *
 * @example
 * ```ts
 * import { retry, retryBudget } from 'bulwark';
 * const budget = retryBudget.ratio({ ratio: 0.2, minRetriesConcurrent: 3 });
 * const a = retry({ maxAttempts: 3, budget });
 * const b = retry({ maxAttempts: 5, budget });
 * ```
 */
export const retryBudget = {
  /** Envoy-style: concurrent retries <= max(ratio × active executions, minRetriesConcurrent). */
  ratio(options: RatioBudgetOptions = {}): RatioRetryBudget {
    const o = checkObject('retryBudget.ratio', options);
    checkKeys('retryBudget.ratio', o, ['ratio', 'minRetriesConcurrent', 'name', 'registry']);
    return joinRegistry(
      registryOf('retryBudget.ratio', o.registry),
      new RatioRetryBudget(
        nameOf('retryBudget.ratio', o.name),
        optNumber('retryBudget.ratio.ratio', o.ratio, rules.ratio, 0.2),
        optNumber('retryBudget.ratio.minRetriesConcurrent', o.minRetriesConcurrent, rules.int(0), 3),
      ),
    );
  },
  /** AWS-SDK-style token quota: retries withdraw tokens, successes refund them. */
  tokens(options: TokenBudgetOptions = {}): TokenRetryBudget {
    const o = checkObject('retryBudget.tokens', options);
    checkKeys('retryBudget.tokens', o, [
      'capacity',
      'retryCost',
      'timeoutCost',
      'noRetryIncrement',
      'costOf',
      'name',
      'registry',
    ]);
    return joinRegistry(
      registryOf('retryBudget.tokens', o.registry),
      new TokenRetryBudget(
        nameOf('retryBudget.tokens', o.name),
        optNumber('retryBudget.tokens.capacity', o.capacity, rules.positive, 500),
        optNumber('retryBudget.tokens.retryCost', o.retryCost, rules.finite(0), 5),
        optNumber('retryBudget.tokens.timeoutCost', o.timeoutCost, rules.finite(0), 10),
        optNumber('retryBudget.tokens.noRetryIncrement', o.noRetryIncrement, rules.finite(0), 1),
        checkFunction<(failure: unknown) => number>('retryBudget.tokens.costOf', o.costOf),
      ),
    );
  },
  /**
   * Marc Brooker's retry budget: each execution deposits `ratio` tokens (up to `capacity`), each
   * retry costs 1, nothing is refunded. Retries <= ratio × executions + initial, whatever the load,
   * so under a dependency that always fails, attempts <= (1 + ratio) × executions + initial.
   */
  ratioTokens(options: RatioTokensBudgetOptions = {}): TokenRetryBudget {
    const o = checkObject('retryBudget.ratioTokens', options);
    checkKeys('retryBudget.ratioTokens', o, ['ratio', 'capacity', 'initial', 'name', 'registry']);
    const ratio = optNumber('retryBudget.ratioTokens.ratio', o.ratio, rules.ratio, 0.2);
    const capacity = optNumber('retryBudget.ratioTokens.capacity', o.capacity, rules.finite(1), 10);
    const initial = optNumber('retryBudget.ratioTokens.initial', o.initial, rules.finite(0), 0);
    if (initial > capacity) {
      throw new ConfigError('retryBudget.ratioTokens.initial', `a number <= capacity (${capacity})`, initial);
    }
    return joinRegistry(
      registryOf('retryBudget.ratioTokens', o.registry),
      new TokenRetryBudget(
        nameOf('retryBudget.ratioTokens', o.name),
        capacity,
        1,
        1,
        0,
        undefined,
        ratio,
        false,
        initial,
      ),
    );
  },
} as const;
