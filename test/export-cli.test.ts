/** `bulwark export` and `bulwark audit` through the CLI entry point: exit codes, --json, history. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';

const dir = mkdtempSync(join(tmpdir(), 'export-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('bulwark export / audit CLI', () => {
  it('exports a SQLite query to CSV, records it, lists the history; the audit commands work on that log', async () => {
    const dbPath = join(dir, 'app.db');
    const db = new Database(dbPath);
    db.exec("CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'Ada'), (2, '=cmd')");
    db.close();
    const audit = `sqlite:${join(dir, 'audit.db')}`;
    const out = join(dir, 'users.csv');
    const r = await cli(
      'export',
      '--format',
      'csv',
      '--sqlite',
      dbPath,
      '--query',
      'SELECT * FROM users ORDER BY id',
      '--table',
      'users',
      '--out',
      out,
      '--record-in',
      audit,
      '--actor',
      'alice',
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ rows: 2, format: 'csv' });
    expect(readFileSync(out, 'utf8')).toBe("id,name\r\n1,Ada\r\n2,'=cmd\r\n");

    const h = await cli('export', 'history', '--audit', audit, '--json');
    expect(h.code).toBe(0);
    expect(JSON.parse(h.out)[0]).toMatchObject({ actor: 'alice', what: 'users', format: 'csv', rows: 2 });

    expect((await cli('audit', 'tail', '--store', audit)).out).toContain('export.create');
    const p = await cli('audit', 'proof', '--store', audit, '--seq', '1', '--json');
    expect(JSON.parse(p.out)).toMatchObject({ seq: 1, treeSize: 1 });
    expect((await cli('audit', 'verify', '--store', audit)).code).toBe(0);
  });

  it('usage errors exit 2, failures exit 1', async () => {
    expect((await cli('export', '--format', 'xml', '--sqlite', 'x.db', '--query', 'q')).code).toBe(2);
    expect((await cli('export', '--format', 'csv')).code).toBe(2);
    expect(
      (
        await cli(
          'audit',
          'purge',
          '--store',
          'sqlite::memory:',
          '--tag',
          'x',
          '--actor',
          'a',
          '--reason',
          'r',
        )
      ).code,
    ).toBe(2);
    expect((await cli('audit', 'verify')).code).toBe(2);
    expect((await cli('audit', 'verify', '--store', 'nonsense')).code).toBe(1);
    expect(
      (await cli('export', '--format', 'csv', '--sqlite', join(dir, 'missing.db'), '--query', 'SELECT 1'))
        .code,
    ).toBe(1);
  });
});
