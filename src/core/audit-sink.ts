/**
 * The shape every Bulwark capability records audit entries in: `bulwark/audit`'s log has exactly
 * this `append`, so it can be passed as is, while the capabilities that record (the control plane,
 * the sync server) need not import it.
 * @module
 */

/** One audit entry, as appended (the log adds its sequence number, time and hash chain). */
export interface AuditRecord {
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  readonly outcome?: 'success' | 'failure' | 'denied';
  readonly tags?: readonly string[];
  readonly subject?: string;
  readonly payload?: unknown;
}

/**
 * Anything that appends audit entries: `bulwark/audit`'s log, or your own.
 *
 * @example
 * ```ts
 * import type { AuditSink } from 'bulwark/server';
 * const entries: unknown[] = [];
 * const sink: AuditSink = { append: async (e) => void entries.push(e) };
 * await sink.append({ actor: 'ops', action: 'breaker.forceOpen', resource: 'circuitBreaker/payments' });
 * console.log(entries.length); // 1
 * ```
 */
export interface AuditSink {
  append(entry: AuditRecord): Promise<unknown>;
}
