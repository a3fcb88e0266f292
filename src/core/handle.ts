/**
 * What counts as a failure: errors by class or predicate, results by predicate, or the
 * built-in transient classification. Handlers combine with `or…` and narrow with `except`.
 */

import { BulkheadRejectedError, ConfigError } from './errors.js';
import { isTransient, isTransientResult } from './transient.js';

/** An error class (any constructor whose instances are errors). */
// biome-ignore lint/suspicious/noExplicitAny: constructor parameter lists are arbitrary
export type ErrorClass = abstract new (...args: any[]) => unknown;

/** A predicate on an error. */
export type ErrorPredicate = (error: unknown) => boolean;

/** A class to match with `instanceof`: an Error subclass, or any `class` (which cannot be called as a predicate). */
function isErrorClass(x: unknown): x is ErrorClass {
  if (typeof x !== 'function') return false;
  const proto = (x as { prototype?: unknown }).prototype;
  if (typeof proto !== 'object' || proto === null) return false;
  return proto instanceof Error || x === Error || /^class[\s{]/.test(Function.prototype.toString.call(x));
}

function toPredicate(path: string, matchers: readonly (ErrorClass | ErrorPredicate)[]): ErrorPredicate {
  if (matchers.length === 0) return () => true;
  const preds = matchers.map((m): ErrorPredicate => {
    if (isErrorClass(m)) return (e) => e instanceof m;
    if (typeof m === 'function') return m as ErrorPredicate;
    throw new ConfigError(path, 'error classes or predicates (error) => boolean', m);
  });
  return preds.length === 1 ? preds[0]! : (e) => preds.some((p) => p(e));
}

function checkResultPredicate<R>(path: string, predicate: (result: R) => boolean): (r: unknown) => boolean {
  if (typeof predicate !== 'function')
    throw new ConfigError(path, 'a predicate (result) => boolean', predicate);
  return predicate as (r: unknown) => boolean;
}

/**
 * Decides which errors and results a policy treats as failures. Immutable: every method
 * returns a new handler.
 *
 * @example
 * ```ts
 * import { handle } from 'bulwark';
 * const h = handle.errors(TypeError).orResults((r: Response) => r.status >= 500).except((e) => e instanceof RangeError);
 * h.handlesError(new TypeError('x')); // true
 * ```
 */
const HANDLER_BRAND: unique symbol = Symbol.for('bulwark.handler');

export class Handler {
  /** Recognises handlers across copies of the library (instanceof would not). */
  static is(value: unknown): value is Handler {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [HANDLER_BRAND]?: boolean })[HANDLER_BRAND] === true
    );
  }

  /** @internal */
  get [HANDLER_BRAND](): boolean {
    return true;
  }

  constructor(
    /** Predicate for errors, or null when no error is handled. */
    readonly errorPredicate: ErrorPredicate | null,
    /** Predicate for results, or null when no result is a failure. */
    readonly resultPredicate: ((result: unknown) => boolean) | null,
  ) {}

  /** True when `error` counts as a failure. */
  handlesError(error: unknown): boolean {
    return this.errorPredicate !== null && this.errorPredicate(error);
  }

  /** True when `result` counts as a failure. */
  handlesResult(result: unknown): boolean {
    return this.resultPredicate !== null && this.resultPredicate(result);
  }

  /** Also handle errors of these classes or matching these predicates. */
  orErrors(...matchers: (ErrorClass | ErrorPredicate)[]): Handler {
    return this.or(new Handler(toPredicate('handle.orErrors', matchers), null));
  }

  /** Also handle results matching `predicate`. */
  orResults<R = unknown>(predicate: (result: R) => boolean): Handler {
    return this.or(new Handler(null, checkResultPredicate('handle.orResults', predicate)));
  }

  /** Also handle what `other` handles. */
  or(other: Handler): Handler {
    const a = this.errorPredicate;
    const b = other.errorPredicate;
    const ra = this.resultPredicate;
    const rb = other.resultPredicate;
    return new Handler(
      a === null ? b : b === null ? a : (e) => a(e) || b(e),
      ra === null ? rb : rb === null ? ra : (r) => ra(r) || rb(r),
    );
  }

  /** Never handle errors of these classes or matching these predicates. */
  except(...matchers: (ErrorClass | ErrorPredicate)[]): Handler {
    const a = this.errorPredicate;
    if (matchers.length === 0) return new Handler(a, this.resultPredicate); // except nothing
    const not = toPredicate('handle.except', matchers);
    return new Handler(a === null ? null : (e) => a(e) && !not(e), this.resultPredicate);
  }
}

/**
 * Builders for handlers.
 *
 * @example
 * ```ts
 * import { handle, retry } from 'bulwark';
 * retry({ handle: handle.transient() });
 * retry({ handle: handle.errors(TypeError, (e) => (e as { code?: string }).code === 'EBUSY') });
 * retry({ handle: handle.results((r: Response) => r.status === 503) });
 * retry({ handle: handle.transient().orErrors(MyFlakyError) });
 * ```
 */
export const handle = {
  /** Every error; no result. */
  all(): Handler {
    return new Handler(() => true, null);
  },
  /** Errors of these classes or matching these predicates (every error when none is given). */
  errors(...matchers: (ErrorClass | ErrorPredicate)[]): Handler {
    return new Handler(toPredicate('handle.errors', matchers), null);
  },
  /** Results matching `predicate` (e.g. a Response with status 503). */
  results<R = unknown>(predicate: (result: R) => boolean): Handler {
    return new Handler(null, checkResultPredicate('handle.results', predicate));
  },
  /** Transient errors and results, as classified by `isTransient`. */
  transient(): Handler {
    return new Handler(isTransient, isTransientResult);
  },
  /** Nothing at all. */
  none(): Handler {
    return new Handler(null, null);
  },
};

/** Default for breakers: every error except a bulkhead's own rejection (local overload, not a dependency failure). */
export const DEFAULT_FAILURES: Handler = handle.all().except(BulkheadRejectedError);
