/**
 * Subject access (GDPR Art. 15/20) and erasure (Art. 17). Register each dataset with how to
 * find one data subject's rows (and, optionally, how to delete them); `subjectAccess` exports
 * everything about a subject in one bundle (every dataset plus the audit log's readable entries
 * about them); `eraseSubject` destroys the subject's data key (crypto-shredding: every payload
 * sealed with it becomes unreadable, in backups too), runs the datasets' own erase hooks, and
 * records the erasure. The audit chain still verifies afterwards.
 * @module
 */

import type { Writable } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { SubjectKeys } from '../keyring/subject-keys.js';
import { type BundleManifest, exportBundle } from './bundle.js';
import type { ExportFormat } from './formats.js';
import type { Column, ExportSource, Row } from './rows.js';
import { auditSource } from './sources.js';

/** A dataset that holds data about subjects. */
export interface SubjectDataset {
  readonly name: string;
  readonly columns?: readonly Column[];
  /** The subject's rows (rows whose payload can no longer be decrypted must be left out). */
  rows(subject: string): AsyncIterable<Row>;
  /** Deletes the subject's rows (optional: crypto-shredded datasets need not). Returns how many. */
  erase?(subject: string): Promise<number>;
}

/**
 * The datasets a service holds about subjects.
 *
 * @example
 * ```ts
 * import { subjectDatasets } from 'bulwark/export';
 * const datasets = subjectDatasets();
 * datasets.register({ name: 'profile', async *rows(subject) { yield { id: subject, plan: 'pro' }; } });
 * ```
 */
export class SubjectDatasets {
  readonly #list: SubjectDataset[] = [];

  /** Adds a dataset (names are unique). */
  register(dataset: SubjectDataset): this {
    if (this.#list.some((d) => d.name === dataset.name))
      throw new Error(`A dataset named "${dataset.name}" is already registered`);
    this.#list.push(dataset);
    return this;
  }

  list(): readonly SubjectDataset[] {
    return this.#list;
  }
}

/** Creates an empty set of subject datasets. */
export function subjectDatasets(): SubjectDatasets {
  return new SubjectDatasets();
}

/**
 * Exports everything about one subject as a ZIP bundle (JSON and CSV per dataset by default,
 * plus `audit.<log>` with the readable audit entries about them) and records the export.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { subjectAccess, subjectDatasets } from 'bulwark/export';
 * const datasets = subjectDatasets().register({ name: 'profile', async *rows(s) { yield { id: s } } });
 * const to = join(mkdtempSync(join(tmpdir(), 'sar-')), 'user-42.zip');
 * const m = await subjectAccess({ datasets, subject: 'user-42', to, requestedBy: 'dpo' });
 * console.log(m.files.map((f) => [f.path, f.rows])); // [ [ 'profile.json', 1 ], [ 'profile.csv', 1 ] ]
 * ```
 */
export async function subjectAccess(options: {
  datasets: SubjectDatasets;
  subject: string;
  to: string | Writable;
  requestedBy: string;
  audit?: AuditLog;
  formats?: readonly ExportFormat[];
}): Promise<BundleManifest> {
  const { subject } = options;
  const sources: ExportSource[] = options.datasets.list().map((d) => ({
    name: d.name,
    ...(d.columns === undefined ? {} : { columns: d.columns }),
    rows: () => d.rows(subject),
  }));
  if (options.audit !== undefined) sources.push(auditSource(options.audit, { subject, readableOnly: true }));
  return exportBundle({
    sources: sources.map((source) => ({ source, formats: options.formats ?? ['json', 'csv'] })),
    to: options.to,
    requestedBy: options.requestedBy,
    subject,
    ...(options.audit === undefined ? {} : { audit: options.audit }),
  });
}

/**
 * Erases a subject: destroys its data key, runs the datasets' erase hooks, and records the
 * erasure in the audit log (action `subject.erase`, tag `gdpr`).
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * import { eraseSubject, subjectDatasets } from 'bulwark/export';
 * import { memorySubjectKeyStore, subjectKeys } from 'bulwark/keyring';
 * const keys = subjectKeys({ keyring: keyring([{ id: 'k1', key: randomBytes(32) }]), store: memorySubjectKeyStore() });
 * await keys.ringFor('user-42', { create: true });
 * console.log(await eraseSubject({ subject: 'user-42', subjectKeys: keys, datasets: subjectDatasets(), actor: 'dpo', reason: 'Art. 17 request' }));
 * ```
 */
export async function eraseSubject(options: {
  subject: string;
  subjectKeys: SubjectKeys;
  datasets: SubjectDatasets;
  actor: string;
  reason: string;
  audit?: AuditLog;
}): Promise<{ keyDestroyed: boolean; deleted: Record<string, number> }> {
  const keyDestroyed = await options.subjectKeys.erase(options.subject);
  const deleted: Record<string, number> = {};
  for (const d of options.datasets.list())
    if (d.erase !== undefined) deleted[d.name] = await d.erase(options.subject);
  await options.audit?.append({
    actor: options.actor,
    action: 'subject.erase',
    resource: `subject:${options.subject}`,
    tags: ['gdpr'],
    payload: { reason: options.reason, keyDestroyed, deleted },
  });
  return { keyDestroyed, deleted };
}
