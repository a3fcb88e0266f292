/**
 * Built-in classification of transient failures: the ones worth retrying.
 */

import { isNonRetryable, TimeoutError } from './errors.js';

/** Node.js and undici error codes of network failures that usually pass. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENOTCONN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_HTTP2_STREAM_CANCEL',
  // MySQL (mysql2) lock wait timeout and deadlock, by name
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
]);

/** HTTP statuses that are worth retrying. */
const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** PostgreSQL SQLSTATEs: serialization failure, deadlock, lock not available, admin/crash shutdown, cannot connect now, too many connections. */
const TRANSIENT_SQLSTATE = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300']);

/** MySQL error numbers: lock wait timeout, deadlock. */
const TRANSIENT_MYSQL_ERRNO = new Set([1205, 1213]);

/** Redis error replies worth retrying (the first word of the reply). */
const TRANSIENT_REDIS = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN)\b/;

/**
 * True for an HTTP status worth retrying: 408, 425, 429, 500, 502, 503, 504.
 *
 * @example
 * ```ts
 * import { isTransientStatus } from 'bulwark';
 * isTransientStatus(503); // true
 * ```
 */
export function isTransientStatus(status: number): boolean {
  return TRANSIENT_STATUS.has(status);
}

/** True for something shaped like a fetch `Response` (or another client's response). */
export function isResponseLike(value: unknown): value is { status: number; headers?: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { status?: unknown }).status === 'number' &&
    ('headers' in value || 'ok' in value || 'statusText' in value)
  );
}

function statusOf(err: object): number | undefined {
  const e = err as {
    status?: unknown;
    statusCode?: unknown;
    response?: { status?: unknown; statusCode?: unknown } | null;
  };
  if (typeof e.status === 'number') return e.status;
  if (typeof e.statusCode === 'number') return e.statusCode;
  const r = e.response;
  if (typeof r === 'object' && r !== null) {
    if (typeof r.status === 'number') return r.status;
    if (typeof r.statusCode === 'number') return r.statusCode;
  }
  return undefined;
}

/** True for an abort (an error named `AbortError`, as `signal.reason` and fetch produce). @internal */
export function isAbortError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

function errorIsTransient(err: object): boolean {
  // Ours, and the platform's (a DOMException named TimeoutError, e.g. from AbortSignal.timeout()).
  if (err instanceof TimeoutError || (err as { name?: unknown }).name === 'TimeoutError') return true;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  const code = e.code;
  if (typeof code === 'string') {
    if (TRANSIENT_CODES.has(code)) return true;
    // PostgreSQL SQLSTATE (pg, postgres.js): five characters
    if (code.length === 5 && (TRANSIENT_SQLSTATE.has(code) || code.startsWith('08'))) return true;
  }
  if (typeof e.errno === 'number' && TRANSIENT_MYSQL_ERRNO.has(e.errno)) return true;
  if (typeof e.message === 'string' && TRANSIENT_REDIS.test(e.message)) return true;
  const status = statusOf(err);
  if (status !== undefined && TRANSIENT_STATUS.has(status)) return true;
  return false;
}

/**
 * True when an error or a result is a transient failure worth retrying:
 * - Node network errors (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE, EAI_AGAIN, …) and
 *   undici's socket and timeout errors (`UND_ERR_*`), also when they are the `cause` of
 *   fetch's `TypeError: fetch failed`;
 * - HTTP 408, 425, 429, 500, 502, 503, 504 on a Response-like result or on an error
 *   carrying `status`, `statusCode` or `response.status`;
 * - PostgreSQL SQLSTATE 40001, 40P01, 55P03, 57P01–57P03, 53300 and class 08;
 * - Redis LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN replies;
 * - MySQL errors 1205 (lock wait timeout) and 1213 (deadlock);
 * - Bulwark's own `TimeoutError` and the platform's (a DOMException named `TimeoutError`, as
 *   `AbortSignal.timeout()` produces).
 *
 * Never transient: errors marked with `nonRetryable()`, aborts (`AbortError`), and values that
 * are neither an `Error` nor Response-like (a result such as a row is never a failure).
 * The `cause` chain (and an `AggregateError`'s errors) is followed a few levels deep.
 *
 * @example
 * ```ts
 * import { isTransient } from 'bulwark';
 * isTransient(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })); // true
 * isTransient(new Response(null, { status: 503 }));                                // true
 * isTransient(new Error('invalid input'));                                         // false
 * ```
 */
export function isTransient(errorOrResult: unknown): boolean {
  if (errorOrResult instanceof Error) return walk(errorOrResult, 0);
  return isTransientResult(errorOrResult);
}

/**
 * True for a result worth retrying: a Response-like value (an object with a numeric `status`
 * and `headers`, `ok` or `statusText`) whose status is 408, 425, 429, 500, 502, 503 or 504.
 * Any other result — a row, a plain object that happens to have a `code` or `message` — is
 * not a failure. (Errors are classified by `isTransient`.)
 *
 * @example
 * ```ts
 * import { isTransientResult } from 'bulwark';
 * isTransientResult(new Response(null, { status: 429 })); // true
 * isTransientResult({ id: 1, code: '08001' });           // false
 * ```
 */
export function isTransientResult(result: unknown): boolean {
  return isResponseLike(result) && !(result instanceof Error) && TRANSIENT_STATUS.has(result.status);
}

function walk(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null || depth > 4) return false;
  if (isNonRetryable(value) || isAbortError(value)) return false;
  if (errorIsTransient(value)) return true;
  if (value instanceof AggregateError) {
    for (const inner of value.errors) if (walk(inner, depth + 1)) return true;
  }
  const cause = (value as { cause?: unknown }).cause;
  return cause !== undefined && cause !== value && walk(cause, depth + 1);
}
