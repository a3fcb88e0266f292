/**
 * Migrations on the real PostgreSQL: ten racing `bulwark migrate up` processes apply each
 * migration exactly once; an edited applied migration is refused; `down` restores the previous
 * schema; dry-run changes nothing.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMigrator, MigrationError } from '../src/postgres/index.js';
import { runCli } from './support/cli-process.js';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName } from './support/postgres.js';

const schema = uniqueName('bw_mig');
const dir = mkdtempSync(join(tmpdir(), 'bulwark-mig-'));
let pool: pg.Pool;

const FILES: Record<string, string> = {
  '0001_log.sql': `-- migrate:up
CREATE TABLE applied_log (version text NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO applied_log (version) VALUES ('0001');
-- migrate:down
DROP TABLE applied_log;
`,
  '0002_users.sql': `-- migrate:up
CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);
INSERT INTO applied_log (version) VALUES ('0002');
-- migrate:down
DROP TABLE users;
DELETE FROM applied_log WHERE version = '0002';
`,
  '0003_users_email.sql': `-- migrate:up
ALTER TABLE users ADD COLUMN email text;
CREATE UNIQUE INDEX users_email ON users (email);
INSERT INTO applied_log (version) VALUES ('0003');
-- migrate:down
DROP INDEX users_email;
ALTER TABLE users DROP COLUMN email;
DELETE FROM applied_log WHERE version = '0003';
`,
};

const cli = (...argv: string[]) => runCli(argv);

async function columns(): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT table_name || '.' || column_name || ':' || data_type AS c FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1`,
    [schema],
  );
  const idx = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`, [schema]);
  return [...rows.map((r) => r.c as string), ...idx.rows.map((r) => `index ${r.indexname}`)];
}

describePg('bulwark migrate (real PostgreSQL)', () => {
  beforeAll(() => {
    pool = pgPool();
    for (const [f, text] of Object.entries(FILES)) writeFileSync(join(dir, f), text);
  });
  afterAll(async () => {
    await pool.end();
    await dropSchema(schema);
    rmSync(dir, { recursive: true, force: true });
  });

  it('dry-run prints the plan and changes nothing', async () => {
    const r = await cli(
      'migrate',
      'up',
      '--db',
      pgConnectionString(),
      '--dir',
      dir,
      '--schema',
      schema,
      '--dry-run',
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('-- would apply 0001_log');
    expect(r.out).toContain('CREATE TABLE users');
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'bulwark_migrations'`,
      [schema],
    );
    expect(rows[0].n).toBe(0);
  });

  it('ten racing `bulwark migrate up` processes: every migration applied exactly once', async () => {
    const runs = await Promise.all(
      Array.from({ length: 10 }, () =>
        cli('migrate', 'up', '--db', pgConnectionString(), '--dir', dir, '--schema', schema, '--json'),
      ),
    );
    for (const r of runs) expect(r.code, r.err).toBe(0);
    const appliedBy = runs.map((r) =>
      (JSON.parse(r.out) as { steps: { id: string }[] }).steps.map((s) => s.id),
    );
    expect(appliedBy.flat().sort()).toEqual(['0001_log', '0002_users', '0003_users_email']);
    const { rows } = await pool.query(
      `SELECT version, count(*)::int AS n FROM ${schema}.applied_log GROUP BY 1 ORDER BY 1`,
    );
    expect(rows).toEqual([
      { version: '0001', n: 1 },
      { version: '0002', n: 1 },
      { version: '0003', n: 1 },
    ]);
    const status = await cli(
      'migrate',
      'status',
      '--db',
      pgConnectionString(),
      '--dir',
      dir,
      '--schema',
      schema,
    );
    expect(status.code).toBe(0);
    expect(status.out.match(/^applied /gm)).toHaveLength(3);
  }, 120_000);

  it('down restores the previous schema; up again re-applies', async () => {
    const migrator = createMigrator({ db: pgConnectionString(), dir, schema });
    await migrator.down(); // 0003 out
    await migrator.down(); // 0002 out
    const before = await columns(); // schema after 0001 only
    await migrator.up({ to: '0002' });
    const with2 = await columns();
    expect(with2).toContain('users.name:text');
    await migrator.down();
    expect(await columns()).toEqual(before);
    const r = await migrator.up();
    expect(r.steps.map((s) => s.id)).toEqual(['0002_users', '0003_users_email']);
    expect(await columns()).toContain('users.email:text');
    expect(migrator.snapshot().counters).toMatchObject({ applied: 3, rolledBack: 3 });
  });

  it('an edited applied migration is refused (nothing runs); status reports it changed', async () => {
    writeFileSync(
      join(dir, '0004_more.sql'),
      '-- migrate:up\nCREATE TABLE more (id int);\n-- migrate:down\nDROP TABLE more;\n',
    );
    writeFileSync(
      join(dir, '0002_users.sql'),
      FILES['0002_users.sql']!.replace('name text', 'full_name text'),
    );
    const migrator = createMigrator({ db: pgConnectionString(), dir, schema });
    const err = await migrator.up().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('MIGRATION_CHECKSUM_MISMATCH');
    expect((err as Error).message).toMatch(/0002_users .*must not be edited/);
    const { rows } = await pool.query(`SELECT to_regclass($1) AS t`, [`${schema}.more`]);
    expect(rows[0].t).toBeNull();
    const r = await cli('migrate', 'up', '--db', pgConnectionString(), '--dir', dir, '--schema', schema);
    expect(r.code).toBe(1);
    expect(r.err).toContain('MIGRATION_CHECKSUM_MISMATCH');
    const st = await cli(
      'migrate',
      'status',
      '--db',
      pgConnectionString(),
      '--dir',
      dir,
      '--schema',
      schema,
      '--json',
    );
    expect(st.code).toBe(1);
    expect(JSON.parse(st.out)).toContainEqual(expect.objectContaining({ version: '0002', state: 'changed' }));
    writeFileSync(join(dir, '0002_users.sql'), FILES['0002_users.sql']!); // restored: accepted again
    expect((await migrator.up()).steps.map((s) => s.id)).toEqual(['0004_more']);
  });

  it('a failing migration is rolled back (its transaction) and reported', async () => {
    writeFileSync(
      join(dir, '0005_bad.sql'),
      '-- migrate:up\nCREATE TABLE half (id int);\nSELECT * FROM no_such_table;\n',
    );
    const migrator = createMigrator({ db: pgConnectionString(), dir, schema });
    const err = await migrator.up().catch((e: unknown) => e);
    expect((err as MigrationError).code).toBe('MIGRATION_FAILED');
    expect((err as Error).message).toMatch(/rolled back/);
    const { rows } = await pool.query(`SELECT to_regclass($1) AS t`, [`${schema}.half`]);
    expect(rows[0].t).toBeNull();
    expect(migrator.snapshot().state).toBe('failed');
    rmSync(join(dir, '0005_bad.sql'));
  });
});
