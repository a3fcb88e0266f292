/**
 * Migrations on SQLite: racing `bulwark migrate up` processes apply each migration once (the
 * write lock is the migration lock), an edited applied migration is refused, `down` restores the
 * previous schema, a failing migration leaves the earlier ones applied.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createMigrator, MigrationError, parseMigration } from '../src/postgres/index.js';
import { runCli } from './support/cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-mig-sqlite-'));
const db = join(dir, 'app.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const schemaOf = () => {
  const d = new Database(db, { readonly: true });
  try {
    return d
      .prepare(
        `SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'bulwark_%' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
      )
      .all();
  } finally {
    d.close();
  }
};

describe('bulwark migrate (SQLite)', () => {
  it('parses files: up/down parts, transaction:false, checksum of the up part only', () => {
    const a = parseMigration(
      '0001_x.sql',
      '-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n',
    );
    const b = parseMigration(
      '0001_x.sql',
      '-- migrate:up\r\nCREATE TABLE t (id int);\r\n-- migrate:down\r\nDROP TABLE t; -- fixed\r\n',
    );
    expect(a.checksum).toBe(b.checksum);
    expect(
      parseMigration('0002_i.sql', '-- migrate:up\nCREATE INDEX CONCURRENTLY i ON t (id);').upInTransaction,
    ).toBe(false);
    expect(parseMigration('0003_j.sql', '-- migrate:up transaction:false\nSELECT 1;').upInTransaction).toBe(
      false,
    );
    expect(() => parseMigration('x.sql', '')).toThrow(/<version>_<name>\.sql/);
    expect(() => parseMigration('0004_y.sql', 'SELECT 1;')).toThrow(/no up part/);
  });

  it('racing processes apply each migration once; down restores the schema; an edit is refused', async () => {
    writeFileSync(
      join(dir, '0001_notes.sql'),
      "-- migrate:up\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nCREATE TABLE log (v TEXT);\nINSERT INTO log VALUES ('0001');\n-- migrate:down\nDROP TABLE notes;\nDROP TABLE log;\n",
    );
    writeFileSync(
      join(dir, '0002_tags.sql'),
      "-- migrate:up\nALTER TABLE notes ADD COLUMN tag TEXT;\nINSERT INTO log VALUES ('0002');\n-- migrate:down\nALTER TABLE notes DROP COLUMN tag;\nDELETE FROM log WHERE v = '0002';\n",
    );
    const runs = await Promise.all(
      Array.from({ length: 4 }, () =>
        runCli(['migrate', 'up', '--db', `sqlite:${db}`, '--dir', dir, '--json']),
      ),
    );
    for (const r of runs) expect(r.code, r.err).toBe(0);
    expect(
      runs.flatMap((r) => (JSON.parse(r.out) as { steps: { id: string }[] }).steps.map((s) => s.id)).sort(),
    ).toEqual(['0001_notes', '0002_tags']);
    const d = new Database(db);
    expect(d.prepare('SELECT v FROM log ORDER BY v').all()).toEqual([{ v: '0001' }, { v: '0002' }]);
    d.close();

    const migrator = createMigrator({ db: `sqlite:${db}`, dir });
    await migrator.down();
    const after1 = schemaOf();
    await migrator.up();
    await migrator.down();
    expect(schemaOf()).toEqual(after1);
    await migrator.up();

    writeFileSync(
      join(dir, '0001_notes.sql'),
      '-- migrate:up\nCREATE TABLE notes (id INTEGER PRIMARY KEY);\n',
    );
    const err = await migrator.up().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('MIGRATION_CHECKSUM_MISMATCH');
  }, 60_000);

  it('a failing migration rolls back alone; the ones before it stay applied', async () => {
    const d2 = mkdtempSync(join(tmpdir(), 'bulwark-mig-sqlite-'));
    writeFileSync(join(d2, '0001_a.sql'), '-- migrate:up\nCREATE TABLE a (id INTEGER);\n');
    writeFileSync(
      join(d2, '0002_b.sql'),
      '-- migrate:up\nCREATE TABLE b (id INTEGER);\nINSERT INTO nope VALUES (1);\n',
    );
    const migrator = createMigrator({ db: `sqlite:${join(d2, 'x.db')}`, dir: d2 });
    await expect(migrator.up()).rejects.toMatchObject({ code: 'MIGRATION_FAILED', migration: '0002_b' });
    const status = await migrator.status();
    expect(status.map((m) => m.state)).toEqual(['applied', 'pending']);
    rmSync(d2, { recursive: true, force: true });
  });

  it('--json: a usage error and a failure are JSON on stdout, with exit codes 2 and 1', async () => {
    const usage = await runCli(['migrate', 'status', '--json'], { DATABASE_URL: '' });
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.out)).toEqual({
      error: { code: 'USAGE', message: '--db is required (or set DATABASE_URL)' },
    });
    const unknown = await runCli(['migrate', 'status', '--json', '--nope']);
    expect(unknown.code).toBe(2);
    expect((JSON.parse(unknown.out) as { error: { message: string } }).error.message).toContain('--nope');
    const failed = await runCli([
      'migrate',
      'status',
      '--json',
      '--db',
      `sqlite:${db}`,
      '--dir',
      join(dir, 'no-such-dir'),
    ]);
    expect(failed.code).toBe(1);
    const body = JSON.parse(failed.out) as { error: { code: string; message: string } };
    expect(body.error.code).toMatch(/^[A-Z_]+$/);
    expect(body.error.message.length).toBeGreaterThan(0);
  });
});
