/**
 * Events of audit logs, on `log.onEvent` and the process-wide bus (kind `auditLog`).
 * @module
 */

import type { EventBase } from '../core/events.js';
import type { VerifyIssue } from './verify.js';

interface AuditBase extends EventBase {
  readonly kind: 'auditLog';
}

/**
 * - `appended`: a batch was committed (`count` entries, the last being `seq`).
 * - `verified`: a verification ended (`ok`, the first issue).
 * - `checkpoint`: a signed tree head was made (`treeSize`).
 * - `purged`: payloads were purged (`count`; `held` were kept by legal holds).
 * - `error`: a background operation (automatic checkpoint) failed.
 */
export type AuditLogEvent =
  | (AuditBase & { readonly event: 'appended'; readonly seq: number; readonly count: number })
  | (AuditBase & {
      readonly event: 'verified';
      readonly ok: boolean;
      readonly firstBad: VerifyIssue | undefined;
    })
  | (AuditBase & { readonly event: 'checkpoint'; readonly treeSize: number })
  | (AuditBase & { readonly event: 'purged'; readonly count: number; readonly held: number })
  | (AuditBase & { readonly event: 'error'; readonly operation: string; readonly error: unknown });

declare module '../core/events.js' {
  interface PolicyEventMap {
    auditLog: AuditLogEvent;
  }
}
