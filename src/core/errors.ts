/**
 * Typed errors. Every error Bulwark throws is a `BulwarkError` with a stable `code`,
 * a message that says what to do, and the underlying `cause` chained where there is one.
 */

/**
 * Base class of every error Bulwark throws.
 *
 * @example
 * ```ts
 * import { BulwarkError } from 'bulwark';
 * try { await policy.execute(work); } catch (err) {
 *   if (err instanceof BulwarkError) console.log(err.code);
 * }
 * ```
 */
export class BulwarkError extends Error {
  /** A stable machine-readable code, e.g. `BREAKER_OPEN`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An option was missing, of the wrong type, out of range or unknown. Every subpath throws this
 * one class for every invalid option, when a component is constructed (or, for options given
 * as functions, when the function returns a bad value), and for bad configuration files.
 *
 * - `option`: the dotted path of the offending option, e.g. `retry.maxAttempts` or
 *   `routes[1].upstream`;
 * - `value`: what was given (`undefined` for a missing option);
 * - `rule`: what the option must be, e.g. `an integer >= 1`;
 * - `suggestion`: for an unknown key, the known key it most likely meant.
 *
 * @example
 * ```ts
 * import { ConfigError, retry } from 'bulwark';
 * try { retry({ maxAttempts: 0 }); } catch (err) {
 *   if (err instanceof ConfigError) console.log(err.option, err.rule); // 'retry.maxAttempts' 'an integer >= 1'
 * }
 * ```
 */
export class ConfigError extends BulwarkError {
  override readonly code: 'INVALID_OPTION' | 'UNKNOWN_OPTION';
  /** The dotted path of the offending option, e.g. `retry.maxAttempts`. */
  readonly option: string;
  /** The value that was given. */
  readonly value: unknown;
  /** What the option must be (the rule it broke), e.g. `an integer >= 1`. */
  readonly rule: string;
  /** For an unknown option: the known option it most likely meant, if any is close. */
  readonly suggestion: string | undefined;

  constructor(
    option: string,
    expectation: string,
    got: unknown,
    message?: string,
    extra?: { code?: 'INVALID_OPTION' | 'UNKNOWN_OPTION'; suggestion?: string | undefined },
  ) {
    super(
      extra?.code ?? 'INVALID_OPTION',
      message ?? `${option} must be ${expectation} (got ${describe(got)})`,
    );
    this.code = extra?.code ?? 'INVALID_OPTION';
    this.option = option;
    this.value = got;
    this.rule = expectation;
    this.suggestion = extra?.suggestion;
  }

  /** An option name the component does not know (usually a typo), with "did you mean". */
  static unknown(option: string, known: readonly string[]): ConfigError {
    const dot = option.lastIndexOf('.');
    const owner = dot < 0 ? option : option.slice(0, dot);
    const key = dot < 0 ? option : option.slice(dot + 1);
    const suggestion = closest(key, known);
    const hint = suggestion === undefined ? '' : `did you mean ${owner}.${suggestion}? `;
    return new ConfigError(
      option,
      `one of the known options (${known.join(', ')})`,
      key,
      `${option} is not an option of ${owner}; ${hint}the known options are ${known.join(', ')}`,
      { code: 'UNKNOWN_OPTION', suggestion },
    );
  }
}

/**
 * The known name closest to `name` (case-insensitive edit distance <= max(2, length / 3)), or
 * undefined when none is close. Used for "did you mean …" in errors. @internal
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  const a = name.toLowerCase();
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(a.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(a, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  // Damerau-Levenshtein (optimal string alignment): a swap of two letters counts as one edit.
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      }
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}

/**
 * The base class of every refusal: a component decided not to run the call (breaker open,
 * bulkhead full, rate limited, shed, throttled, …) as opposed to the call failing. Metrics,
 * logs and the gateway classify a call as `rejected` by this class alone, so no list of codes
 * is kept anywhere.
 *
 * @example
 * ```ts
 * import { RejectedError, bulkhead } from 'bulwark';
 * const policy = bulkhead({ limit: 1, queue: 0 });
 * try { await policy.execute(work); } catch (err) {
 *   if (err instanceof RejectedError) console.log(err.reason, err.retryAfterMs); // e.g. 'bulkheadFull'
 * }
 * ```
 */
export class RejectedError extends BulwarkError {
  /** Why the call was refused, as a short camelCase word, e.g. `breakerOpen`, `rateLimited`. */
  readonly reason: string;
  /** When a retry may succeed, in ms from now (`Infinity`: not before an operator acts; NaN: unknown). */
  readonly retryAfterMs: number;

  constructor(
    code: string,
    reason: string,
    retryAfterMs: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * A circuit breaker refused the call because it is open, isolated, or already running
 * its half-open probes. Retry after `retryAfterMs`, or serve a fallback.
 *
 * @example
 * ```ts
 * import { BrokenCircuitError } from 'bulwark';
 * try { await breaker.execute(work); } catch (err) {
 *   if (err instanceof BrokenCircuitError) console.log(`retry in ${err.retryAfterMs} ms`);
 * }
 * ```
 */
export class BrokenCircuitError extends RejectedError {
  /** The breaker's name. */
  readonly breaker: string;
  /** The breaker state that caused the rejection. */
  readonly state: 'open' | 'half-open' | 'isolated' | 'forced-open';

  constructor(
    breaker: string,
    state: 'open' | 'half-open' | 'isolated' | 'forced-open',
    retryAfterMs: number,
    cause?: unknown,
  ) {
    const why =
      state === 'isolated' || state === 'forced-open'
        ? `it was ${state === 'isolated' ? 'isolated' : 'forced open'} by an operator; release the isolation or call reset() to admit calls again`
        : state === 'half-open'
          ? 'it is half-open and its probe slots are taken; retry shortly'
          : `it opened after repeated failures; retry in ${Math.ceil(retryAfterMs)} ms or serve a fallback`;
    super(
      'BREAKER_OPEN',
      'breakerOpen',
      retryAfterMs,
      `Circuit breaker "${breaker}" rejected the call: ${why}`,
      {
        cause,
      },
    );
    this.breaker = breaker;
    this.state = state;
  }
}

/**
 * A timeout policy's deadline passed. With the `cooperative` strategy the signal was
 * aborted and the function failed; with `abandon` the call was abandoned at the deadline.
 *
 * @example
 * ```ts
 * import { TimeoutError } from 'bulwark';
 * try { await policy.execute(work); } catch (err) {
 *   if (err instanceof TimeoutError) console.log(`gave up after ${err.timeoutMs} ms`);
 * }
 * ```
 */
export class TimeoutError extends BulwarkError {
  /** The timeout that elapsed, in milliseconds. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, cause?: unknown) {
    super(
      'TIMEOUT',
      `The operation timed out after ${timeoutMs} ms; raise the timeout if the dependency is legitimately slow, or treat it as a failure`,
      { cause },
    );
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A bulkhead refused the call: its concurrency limit and queue were full
 * (`BULKHEAD_FULL`), or the call waited in the queue longer than `queueTimeoutMs`
 * (`BULKHEAD_QUEUE_TIMEOUT`).
 *
 * @example
 * ```ts
 * import { BulkheadRejectedError } from 'bulwark';
 * try { await policy.execute(work); } catch (err) {
 *   if (err instanceof BulkheadRejectedError) res.statusCode = 503;
 * }
 * ```
 */
export class BulkheadRejectedError extends RejectedError {
  override readonly code: 'BULKHEAD_FULL' | 'BULKHEAD_QUEUE_TIMEOUT';
  /** The bulkhead's name. */
  readonly bulkhead: string;
  /** Calls running when the call was rejected. */
  readonly inFlight: number;
  /** Calls queued when the call was rejected. */
  readonly queued: number;

  constructor(
    bulkhead: string,
    code: 'BULKHEAD_FULL' | 'BULKHEAD_QUEUE_TIMEOUT',
    inFlight: number,
    queued: number,
  ) {
    super(
      code,
      code === 'BULKHEAD_FULL' ? 'bulkheadFull' : 'queueTimeout',
      Number.NaN,
      code === 'BULKHEAD_FULL'
        ? `Bulkhead "${bulkhead}" is full (${inFlight} running, ${queued} queued); shed the call, retry later or raise limit/queue`
        : `Call waited too long in bulkhead "${bulkhead}"'s queue; retry later or raise queueTimeoutMs`,
    );
    this.code = code;
    this.bulkhead = bulkhead;
    this.inFlight = inFlight;
    this.queued = queued;
  }
}

/**
 * Wraps a non-object value passed to `nonRetryable()` so that it can carry the mark.
 *
 * @example
 * ```ts
 * import { NonRetryableError } from 'bulwark';
 * const err = new NonRetryableError('bad input');
 * ```
 */
export class NonRetryableError extends BulwarkError {
  constructor(cause: unknown) {
    super('NON_RETRYABLE', `A failure marked non-retryable: ${describe(cause)}`, { cause });
  }
}

const NON_RETRYABLE: unique symbol = Symbol.for('bulwark.nonRetryable');
/** Marked objects that cannot take the symbol property (frozen, sealed, non-extensible). */
const markedSealed = new WeakSet<object>();

/**
 * Marks an error so that no retry policy ever retries it (the error object itself is
 * returned, so its class and stack are kept). Non-objects are wrapped in `NonRetryableError`.
 *
 * @example
 * ```ts
 * import { nonRetryable } from 'bulwark';
 * if (res.status === 400) throw nonRetryable(new Error('invalid order'));
 * ```
 */
export function nonRetryable<E>(error: E): E extends object ? E : NonRetryableError {
  const target: object = typeof error === 'object' && error !== null ? error : new NonRetryableError(error);
  if (Object.isExtensible(target)) {
    Object.defineProperty(target, NON_RETRYABLE, { value: true, enumerable: false, configurable: true });
  } else {
    markedSealed.add(target);
  }
  return target as E extends object ? E : NonRetryableError;
}

/**
 * True when `error` was marked with `nonRetryable()` (or is a `NonRetryableError`).
 *
 * @example
 * ```ts
 * import { isNonRetryable, nonRetryable } from 'bulwark';
 * isNonRetryable(nonRetryable(new Error('x'))); // true
 * ```
 */
export function isNonRetryable(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    ((error as { [NON_RETRYABLE]?: boolean })[NON_RETRYABLE] === true ||
      error instanceof NonRetryableError ||
      markedSealed.has(error))
  );
}

/** A short, safe description of a value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return 'an object';
}
