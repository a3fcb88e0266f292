/**
 * How a circuit breaker classifies the outcome of a call: a success, a failure, or neither
 * (excluded, cancelled by the caller, a bulkhead's rejection, a predicate that threw). One
 * classification for the core breaker and every breaker built on it (the Redis shared breaker).
 */

import type { ExecutionContext } from '../context.js';
import { BulkheadRejectedError, TimeoutError } from '../errors.js';
import { reportError } from '../events.js';
import type { Handler } from '../handle.js';

/** Outcomes of a call as a breaker counts them. @internal */
export const SUCCESS = 0;
/** @internal */
export const FAILURE = 1;
/** Counts neither way. @internal */
export const NEUTRAL = 2;

/** `SUCCESS`, `FAILURE` or `NEUTRAL`. @internal */
export type Outcome = typeof SUCCESS | typeof FAILURE | typeof NEUTRAL;

/**
 * Classifies a result for a breaker. A `handle`/`exclude` predicate that throws must not break the
 * call nor leak a probe slot: the outcome then counts neither way and the error is reported.
 * @internal
 */
export function classifyResult(
  handler: Handler,
  excluded: Handler | null,
  result: unknown,
  who: string,
): Outcome {
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
): Outcome {
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
