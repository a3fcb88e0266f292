/**
 * The retry-budget contract between the retry policy and budgets (implementations live in
 * src/limits/retry-budget.ts: ratio, tokens, ratioTokens). The core defines it so that
 * `retry()` needs nothing from src/limits.
 */

const BUDGET_BRAND: unique symbol = Symbol.for('bulwark.retryBudget');

/**
 * A retry budget: pass the same one to several `retry({ budget })` policies.
 * The underscored methods are the contract with the retry policy. @internal for them.
 */
export abstract class RetryBudget {
  abstract readonly kind: 'ratio' | 'tokens';
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
    readonly kind: 'ratio' | 'tokens';
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
