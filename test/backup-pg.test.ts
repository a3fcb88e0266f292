/**
 * PostgreSQL backups on the real server: backup → destroy → restore → verify equal; a flipped
 * byte is caught by verify; an encrypted backup round-trips and needs its key; retention prunes.
 */

import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBackups } from '../src/backup/index.js';
import { withDatabase } from '../src/backup/pg-tools.js';
import { createRegistry } from '../src/core/registry.js';
import { keyring } from '../src/durable/encryption.js';
import { describePg, pgConnectionString, uniqueName } from './support/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-bk-pg-'));
const source = uniqueName('bw_bk_src');
const restored = uniqueName('bw_bk_dst');
let admin: pg.Client;
const url = (db: string) => withDatabase(pgConnectionString(), db);

async function q(db: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url(db) });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0x01;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
}

describePg('PostgreSQL backups (real server)', () => {
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: url('postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${source}`);
    await q(
      source,
      `CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(12,2), placed timestamptz DEFAULT now(), tags jsonb);
       INSERT INTO orders (customer, total, tags) SELECT 'c' || g, g * 1.5, jsonb_build_object('n', g) FROM generate_series(1, 5000) g;
       CREATE SCHEMA billing;
       CREATE TABLE billing.invoices (id int PRIMARY KEY, order_id bigint REFERENCES orders(id), body bytea);
       INSERT INTO billing.invoices SELECT g, g, decode(md5(g::text), 'hex') FROM generate_series(1, 700) g;
       CREATE TABLE empty_one (x int);`,
    );
  });
  afterAll(async () => {
    for (const db of [source, restored, `${restored}_2`])
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it('backup → destroy → restore → the restored database equals the original; verify passes', async () => {
    const registry = createRegistry();
    const backups = createBackups({ target: join(dir, 'plain'), registry });
    const phases: string[] = [];
    const m = await backups.create(url(source), { onProgress: (p) => phases.push(p.phase) });
    expect(m.kind).toBe('postgres');
    expect(m.files[0]).toMatchObject({ name: 'database.dump' });
    expect(m.files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.versions.server).toMatch(/^\d+\.\d+/);
    expect(m.tables.map((t) => [t.name, t.rows])).toEqual([
      ['billing.invoices', 700],
      ['public.empty_one', 0],
      ['public.orders', 5000],
    ]);
    expect(phases[0]).toMatch(/backing up postgres/);
    const snap = backups.snapshot();
    expect(snap.gauges.lastBackupAgeMs).toBeGreaterThanOrEqual(0);
    expect(registry.get('backups', 'backups')).toBe(backups);

    const before = (await q(source, "SELECT md5(string_agg(o::text, ',' ORDER BY id)) AS h FROM orders o"))
      .rows[0].h;
    await admin.query(`DROP DATABASE ${source} WITH (FORCE)`); // destroy
    await backups.restore(m.id, { to: url(restored), create: true });
    const after = (await q(restored, "SELECT md5(string_agg(o::text, ',' ORDER BY id)) AS h FROM orders o"))
      .rows[0].h;
    expect(after).toBe(before);
    await admin.query(`CREATE DATABASE ${source} TEMPLATE ${restored}`); // the source back, for later tests

    const report = await backups.verify(m.id, { scratchUrl: url('postgres') });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.tables.every((t) => t.ok)).toBe(true);
    expect(backups.snapshot().gauges.lastVerifyAgeMs).toBeGreaterThanOrEqual(0);
    // The scratch database is gone.
    const left = await admin.query(
      `SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'bw_verify_%'`,
    );
    expect(left.rows[0].n).toBe(0);
    // Restoring on top of a non-empty database is refused.
    await expect(backups.restore(m.id, { to: url(restored) })).rejects.toThrow(/is not empty/);
  });

  it('a flipped byte in the backup file is caught by verify (and refused by restore)', async () => {
    const backups = createBackups({ target: join(dir, 'flip') });
    const m = await backups.create(url(source));
    flipByte(join(dir, 'flip', m.id, 'database.dump'), Math.floor(m.files[0]!.bytes / 2));
    const report = await backups.verify(m.id);
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatch(/database\.dump: SHA-256 .* differs/);
    expect(backups.snapshot().counters.verifyFailures).toBe(1);
    await expect(backups.restore(m.id, { to: url(`${restored}_2`), create: true })).rejects.toMatchObject({
      code: 'BACKUP_CORRUPT',
    });
  });

  it('encrypted: the dump is unreadable without the key, verifies and restores with it', async () => {
    const ring = keyring([{ id: 'bk-2026', key: randomBytes(32) }]);
    const backups = createBackups({ target: join(dir, 'enc'), keyring: ring });
    const m = await backups.create(url(source), { tableStats: 'count' });
    expect(m.files[0]!.keyId).toBe('bk-2026');
    const head = Buffer.alloc(5);
    const fd = openSync(join(dir, 'enc', m.id, 'database.dump'), 'r');
    readSync(fd, head, 0, 5, 0);
    closeSync(fd);
    expect(head.toString()).toBe('BWBK1'); // not PGDMP
    expect((await backups.verify(m.id)).ok).toBe(true);
    const noKey = createBackups({ target: join(dir, 'enc') });
    const r = await noKey.verify(m.id);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/encrypted with key "bk-2026"/);
  });

  it('list and prune: keepLast keeps the newest', async () => {
    const backups = createBackups({ target: join(dir, 'plain') });
    await backups.create(url(source), { tableStats: 'none' });
    const all = await backups.list();
    expect(all.length).toBe(2);
    const dry = await backups.prune({ keepLast: 1 }, { dryRun: true });
    expect(dry.removed).toHaveLength(1);
    expect((await backups.list()).length).toBe(2);
    await backups.prune({ keepLast: 1 });
    expect((await backups.list()).map((b) => b.id)).toEqual([all[0]!.id]);
  });
});
