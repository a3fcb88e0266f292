/**
 * Where resolved conflicts are recorded. `AuditSink` has exactly the shape of `bulwark/audit`'s
 * `append`, so an audit log can be passed as is (structural typing; this module does not import
 * it). `memoryAuditSink()` keeps entries in memory (tests, examples).
 * @module
 */

import type { AuditRecord, AuditSink } from '../core/audit-sink.js';
import type { ConflictReport } from './record.js';

/**
 * One audit entry (the shape `bulwark/audit` appends), and anything that appends them. The sync
 * server awaits `append` before it commits a push, so a conflict is never applied without its entry.
 */
export type { AuditSink } from '../core/audit-sink.js';
export type AuditEntry = AuditRecord;

/** The audit sink of conflicts (another name for `AuditSink`). */
export type ConflictLog = AuditSink;

/** The action of a conflict entry. */
export const CONFLICT_ACTION = 'sync.conflict';

/** The audit entry of a resolved conflict. @internal */
export function conflictEntry(c: ConflictReport): AuditEntry {
  return {
    actor: c.clientId,
    action: CONFLICT_ACTION,
    resource: `${c.entity}/${c.id}`,
    outcome: 'success',
    tags: ['sync', 'conflict', c.strategy],
    subject: c.opId,
    payload: {
      entity: c.entity,
      id: c.id,
      opId: c.opId,
      fields: c.fields,
      strategy: c.strategy,
      base: c.base,
      ours: c.ours,
      theirs: c.theirs,
      result: c.result,
    },
  };
}

/** An in-memory audit sink: `entries` holds what was appended. */
export interface MemoryAuditSink extends AuditSink {
  readonly entries: AuditEntry[];
}

/**
 * An audit sink that keeps entries in memory.
 *
 * @example
 * ```ts
 * import { memoryAuditSink } from 'bulwark/sync';
 * const audit = memoryAuditSink();
 * await audit.append({ actor: 'phone-1', action: 'sync.conflict', resource: 'note/1' });
 * console.log(audit.entries.length); // 1
 * ```
 */
export function memoryAuditSink(): MemoryAuditSink {
  const entries: AuditEntry[] = [];
  return {
    entries,
    append(entry: AuditEntry) {
      entries.push(entry);
      return Promise.resolve(entries.length);
    },
  };
}
