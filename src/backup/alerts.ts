/**
 * The default alert rules for backups (for bulwark/metrics' alert manager): the last good backup
 * is too old (or there is none), the last good verify is too old, and the last backup failed.
 * They read the backup manager's snapshot directly, so they need no exporter.
 * @module
 */

import { s } from '../core/schema.js';
import type { AlertRule } from '../metrics/manager.js';
import type { Backups } from './backups.js';

/** Options of `backupAlertRules()`. */
export interface BackupAlertOptions {
  /** Fire when the last good backup is older (or none is known). Default 26 h (a nightly backup plus slack). */
  maxBackupAgeMs?: number;
  /** Fire when the last successful verify is older (or none). Default 8 days (a weekly restore drill plus slack). */
  maxVerifyAgeMs?: number;
}

/**
 * Alert rules watching a backup manager: `BackupTooOld` (critical), `BackupVerifyTooOld`
 * (warning), `BackupFailing` (critical). Call `backups.refresh()` at startup so ages survive a restart.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { backupAlertRules, createBackups } from 'bulwark/backup';
 * const backups = createBackups({ target: mkdtempSync(join(tmpdir(), 'bk-')) });
 * const rules = backupAlertRules(backups, { maxBackupAgeMs: 26 * 3_600_000 });
 * console.log(rules.map((r) => r.name)); // ['BackupTooOld', 'BackupVerifyTooOld', 'BackupFailing']
 * ```
 */
export function backupAlertRules(backups: Backups, options: BackupAlertOptions = {}): AlertRule[] {
  const o = s
    .object({
      maxBackupAgeMs: s.optional(s.duration({ positive: true }), 26 * 3_600_000),
      maxVerifyAgeMs: s.optional(s.duration({ positive: true }), 8 * 86_400_000),
    })
    .parse(options, 'backupAlertRules');
  const labels = () => ({ kind: 'backups', name: backups.name });
  const tooOld = (gauge: 'lastBackupAgeMs' | 'lastVerifyAgeMs', max: number) => () => {
    const age = backups.snapshot().gauges[gauge] ?? -1;
    return age < 0 || age > max
      ? [{ labels: labels(), value: age < 0 ? Number.POSITIVE_INFINITY : age / 1000 }]
      : [];
  };
  return [
    {
      name: 'BackupTooOld',
      expr: { kind: 'custom', evaluate: tooOld('lastBackupAgeMs', o.maxBackupAgeMs) },
      forMs: 300_000,
      severity: 'critical',
      annotations: {
        summary: 'The last good backup of {{ $labels.name }} is {{ $value }} s old (or there is none)',
        runbook: 'docs/backup.md#the-last-backup-is-too-old',
      },
    },
    {
      name: 'BackupVerifyTooOld',
      expr: { kind: 'custom', evaluate: tooOld('lastVerifyAgeMs', o.maxVerifyAgeMs) },
      forMs: 300_000,
      severity: 'warning',
      annotations: {
        summary: 'No backup of {{ $labels.name }} was verified by a restore for {{ $value }} s',
        runbook: 'docs/backup.md#verify-a-backup',
      },
    },
    {
      name: 'BackupFailing',
      expr: {
        kind: 'custom',
        evaluate: () => (backups.snapshot().state === 'failing' ? [{ labels: labels(), value: 1 }] : []),
      },
      severity: 'critical',
      annotations: {
        summary: 'The last backup of {{ $labels.name }} failed',
        runbook: 'docs/backup.md#a-backup-failed',
      },
    },
  ];
}
