/**
 * How a failed attempt is recorded: the error as JSON text (without stack paths to files the
 * package does not ship) and whether the item retries or dead-letters.
 * @module
 */

import { isNonRetryable } from '../core/errors.js';
import { BulwarkDurableError } from './errors.js';
import type { ClaimedItem, FailAction } from './store.js';

/**
 * Stack frames are kept only for the caller's own code: frames inside bulwark (its `dist/` or
 * `src/` files) and Node internals are dropped, so a stored stack never names a file the package
 * does not ship.
 */
function cleanStack(stack: string): string {
  const lines = stack.split('\n');
  const kept = lines.filter(
    (l, i) =>
      i === 0 ||
      !/^\s+at /.test(l) ||
      !/\(node:|\bnode:internal|[/\\]bulwark[/\\](dist|src)[/\\]|[/\\]src[/\\]durable[/\\]/.test(l),
  );
  return kept.join('\n').slice(0, 2000);
}

/**
 * Turns an error into the object stored (as JSON text) in `lastError`: name, message, code, the
 * caller's stack frames and the cause chain.
 *
 * @example
 * ```ts
 * import { serializeError } from 'bulwark/durable';
 * console.log(serializeError(new Error('boom', { cause: new Error('root') })).message); // boom
 * ```
 */
export function serializeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) {
    let message: string;
    try {
      message = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
    } catch {
      message = String(error);
    }
    return { message };
  }
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = String(code);
  if (error.stack !== undefined) out.stack = cleanStack(error.stack);
  if (error.cause !== undefined && depth < 5) out.cause = serializeError(error.cause, depth + 1);
  return out;
}

/** `lastError` text parsed back (a non-JSON text becomes `{ message }`); null stays null. */
export function parseError(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : { message: text };
  } catch {
    return { message: text };
  }
}

/** True when an item's last recorded error is the release of `worker.stop()` past its grace period. */
export function wasReleasedByStop(lastError: string | null): boolean {
  if (lastError === null || !lastError.includes('RELEASED')) return false;
  return parseError(lastError)?.code === 'RELEASED';
}

/**
 * What a failed attempt does: dead-letter (non-retryable, or the last attempt) or retry after
 * the backoff's delay for this attempt.
 */
export function failAction(
  item: ClaimedItem,
  error: unknown,
  now: number,
  retryDelayMs: (attempt: number) => number,
): { action: FailAction; delayMs: number } {
  const text = JSON.stringify(serializeError(error));
  if (isNonRetryable(error))
    return { action: { kind: 'dead', reason: 'non-retryable', error: text }, delayMs: 0 };
  if (item.attempts >= item.maxAttempts) {
    return { action: { kind: 'dead', reason: 'exhausted', error: text }, delayMs: 0 };
  }
  const delayMs = Math.ceil(retryDelayMs(item.attempts));
  return { action: { kind: 'retry', runAt: now + delayMs, error: text }, delayMs };
}

/**
 * For an item claimed with no attempt left (its last one was interrupted by a stop past its grace
 * period, or ended with an expired lease: a crashed or stalled worker), why it dead-letters.
 */
export function outOfAttempts(item: ClaimedItem): { reason: string; error: BulwarkDurableError } | null {
  if (item.attempts <= item.maxAttempts) return null;
  if (wasReleasedByStop(item.lastError)) {
    return {
      reason: 'stopped',
      error: new BulwarkDurableError(
        'CLOSED',
        `Item ${item.id} used its ${item.maxAttempts} attempts; the last was interrupted by worker.stop() after its grace period`,
      ),
    };
  }
  return {
    reason: 'lease-expired',
    error: new BulwarkDurableError(
      'LEASE_LOST',
      `Item ${item.id} used its ${item.maxAttempts} attempts without an ack (its leases expired: workers crashed or stalled)`,
    ),
  };
}
