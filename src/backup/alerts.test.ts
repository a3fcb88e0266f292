import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFakeClock } from '../testing/fake-clock.js';
import { backupAlertRules } from './alerts.js';
import { createBackups } from './backups.js';

const dir = mkdtempSync(join(tmpdir(), 'bk-alerts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const evaluate = (rule: { expr: unknown }) =>
  (rule.expr as { evaluate: (c: unknown) => { value: number }[] }).evaluate({});

describe('backup age gauges and alert rules', () => {
  it('no backup: both age rules fire; after a backup and a verify they stop; time passing fires them again', async () => {
    const clock = createFakeClock();
    const backups = createBackups({ target: join(dir, 't'), clock });
    const [tooOld, verifyOld, failing] = backupAlertRules(backups, {
      maxBackupAgeMs: 3_600_000,
      maxVerifyAgeMs: 7_200_000,
    });
    expect(backups.snapshot().gauges.lastBackupAgeMs).toBe(-1);
    expect(evaluate(tooOld!)).toHaveLength(1);
    expect(evaluate(verifyOld!)).toHaveLength(1);
    writeFileSync(join(dir, 'a.conf'), 'x=1\n');
    const m = await backups.create(`files:${join(dir, 'a.conf')}`);
    expect((await backups.verify(m.id)).ok).toBe(true);
    expect(evaluate(tooOld!)).toHaveLength(0);
    expect(evaluate(verifyOld!)).toHaveLength(0);
    expect(evaluate(failing!)).toHaveLength(0);
    clock.tickSync(3_600_001);
    expect(backups.snapshot().gauges.lastBackupAgeMs).toBeGreaterThan(3_600_000);
    expect(evaluate(tooOld!)).toHaveLength(1);
    expect(evaluate(verifyOld!)).toHaveLength(0);
    await expect(backups.create(`files:${join(dir, 'missing.conf')}`)).rejects.toThrow(/Cannot back up/);
    expect(backups.snapshot().state).toBe('failing');
    expect(evaluate(failing!)).toHaveLength(1);
  });

  it('refresh() recovers the ages from the target after a restart', async () => {
    const backups = createBackups({ target: join(dir, 't') });
    await backups.refresh();
    expect(backups.snapshot().gauges.lastBackupAgeMs).toBeGreaterThanOrEqual(0);
    expect(backups.snapshot().gauges.lastVerifyAgeMs).toBeGreaterThanOrEqual(0);
    expect(backups.snapshot().gauges.backups).toBe(1);
  });
});
