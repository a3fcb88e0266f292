/**
 * Export history: every export recorded in the audit log (who, when, what, format, size,
 * digest) and listed back from it.
 * @module
 */

import type { AuditLog } from '../audit/log.js';

/** One recorded export. */
export interface ExportRecord {
  readonly seq: number;
  readonly time: number;
  readonly actor: string;
  readonly what: string;
  readonly format: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly subject: string | null;
}

/**
 * Records an export in the audit log (action `export.create`, tag `export`).
 *
 * @example
 * ```ts
 * import { openAuditLog } from 'bulwark/audit';
 * import { exportHistory, recordExport } from 'bulwark/export';
 * const log = openAuditLog({ store: 'sqlite::memory:' });
 * await recordExport(log, { actor: 'alice', what: 'orders', format: 'csv', rows: 10, bytes: 200, sha256: 'ab' });
 * console.log((await exportHistory(log))[0]?.what); // orders
 * await log.close();
 * ```
 */
export async function recordExport(
  log: AuditLog,
  e: {
    actor: string;
    what: string;
    format: string;
    rows: number;
    bytes: number;
    sha256: string;
    subject?: string;
  },
): Promise<void> {
  await log.append({
    actor: e.actor,
    action: 'export.create',
    resource: `export:${e.what}`.slice(0, 1024),
    tags: ['export', ...(e.subject === undefined ? [] : ['gdpr'])],
    ...(e.subject === undefined ? {} : { subject: e.subject }),
    payload: { what: e.what, format: e.format, rows: e.rows, bytes: e.bytes, sha256: e.sha256 },
  });
}

/**
 * The recorded exports, newest first.
 *
 * @example
 * ```ts
 * import { openAuditLog } from 'bulwark/audit';
 * import { exportHistory } from 'bulwark/export';
 * const log = openAuditLog({ store: 'sqlite::memory:' });
 * console.log(await exportHistory(log, { limit: 20 })); // []
 * await log.close();
 * ```
 */
export async function exportHistory(
  log: AuditLog,
  options: { limit?: number; actor?: string } = {},
): Promise<ExportRecord[]> {
  const entries = await log.list({
    action: 'export.create',
    order: 'desc',
    limit: options.limit ?? 100,
    payloads: true,
    ...(options.actor === undefined ? {} : { actor: options.actor }),
  });
  return entries.map((e) => {
    const p = (e.payload ?? {}) as Partial<ExportRecord>;
    return {
      seq: e.seq,
      time: e.time,
      actor: e.actor,
      what: p.what ?? e.resource,
      format: p.format ?? '?',
      rows: p.rows ?? 0,
      bytes: p.bytes ?? 0,
      sha256: p.sha256 ?? '',
      subject: e.subject,
    };
  });
}
