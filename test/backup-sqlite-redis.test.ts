/**
 * SQLite, Redis and configuration-file backups: backup → destroy → restore → equal; verify by
 * restore (SQLite integrity_check + per-table figures; Redis loaded into a throwaway
 * redis-server); a flipped byte is caught; `bulwark backup` CLI end to end.
 */

import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createBackups } from '../src/backup/index.js';
import { runCli } from './support/cli-process.js';
import { PrivateRedis } from './support/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-bk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0x80;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
}

function makeDb(path: string): void {
  const db = new Database(path);
  db.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, score REAL, blob BLOB);
           CREATE TABLE tags (note INTEGER, tag TEXT, PRIMARY KEY (note, tag)) WITHOUT ROWID;`);
  const ins = db.prepare('INSERT INTO notes (body, score, blob) VALUES (?, ?, ?)');
  const tag = db.prepare('INSERT INTO tags VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= 3000; i++) {
      ins.run(`note ${i}`, i / 7, Buffer.from([i % 256, 1, 2]));
      tag.run(i, i % 2 === 0 ? 'even' : 'odd');
    }
  })();
  db.close();
}

const dump = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return JSON.stringify([
      db.prepare('SELECT * FROM notes ORDER BY id').all(),
      db.prepare('SELECT * FROM tags ORDER BY 1, 2').all(),
    ]);
  } finally {
    db.close();
  }
};

describe('SQLite backups', () => {
  it('backup (online, while writing) → destroy → restore → equal; verify passes; a flipped byte fails it', async () => {
    const path = join(dir, 'app.db');
    makeDb(path);
    const backups = createBackups({ target: join(dir, 'sqlite-backups') });
    const writer = new Database(path);
    const m = await backups.create(`sqlite:${path}`);
    writer.prepare("INSERT INTO notes (body) VALUES ('after the backup')").run();
    writer.close();
    expect(m.tables.map((t) => [t.name, t.rows])).toEqual([
      ['notes', 3000],
      ['tags', 3000],
    ]);
    const original = dump(path);
    rmSync(path); // destroy
    await backups.restore(m.id, { to: path });
    expect(JSON.parse(dump(path))[0]).toHaveLength(3000); // the backup's state: without the later row
    expect(dump(path)).not.toBe(original);
    const report = await backups.verify(m.id);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    flipByte(join(dir, 'sqlite-backups', m.id, 'database.sqlite'), 4096 + 100);
    const bad = await backups.verify(m.id);
    expect(bad.ok).toBe(false);
    expect(bad.problems.join()).toMatch(/SHA-256/);
  });
});

describe('Redis and configuration-file backups', () => {
  it('Redis: an RDB snapshot over SYNC; verify loads it into a throwaway redis-server', async () => {
    // The private server runs in this process's cwd: a disk-based SYNC leaves its dump.rdb there.
    const hadDump = existsSync('dump.rdb');
    const redis = await PrivateRedis.start();
    const c = new Redis({ host: '127.0.0.1', port: redis.port });
    try {
      const pipe = c.pipeline();
      for (let i = 0; i < 2000; i++) pipe.set(`k:${i}`, `value-${i}`.repeat(10));
      pipe.hset('h', { a: '1', b: '2' });
      await pipe.exec();
      const backups = createBackups({ target: join(dir, 'redis-backups') });
      const m = await backups.create(`redis://127.0.0.1:${redis.port}`);
      expect(m.kind).toBe('redis');
      expect(m.tables[0]!.rows).toBe(2001);
      const rdb = join(dir, 'redis-backups', m.id, 'dump.rdb');
      expect(readFileSync(rdb).subarray(0, 5).toString()).toBe('REDIS');
      const report = await backups.verify(m.id);
      expect(report.problems).toEqual([]);
      expect(report.tables[0]).toMatchObject({ expectedRows: 2001, actualRows: 2001, ok: true });
      const out = join(dir, 'redis-restore');
      await backups.restore(m.id, { to: out });
      expect(existsSync(join(out, 'dump.rdb'))).toBe(true);
    } finally {
      c.disconnect();
      await redis.kill();
      if (!hadDump) rmSync('dump.rdb', { force: true });
    }
  });

  it('the `bulwark backup` CLI: create, list, verify, restore, prune for config files', async () => {
    const conf = join(dir, 'etc');
    rmSync(conf, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(conf, 'conf.d'), { recursive: true });
    writeFileSync(join(conf, 'app.yaml'), 'port: 8080\n');
    writeFileSync(join(conf, 'conf.d', 'limits.yaml'), 'rps: 100\n');
    const target = join(dir, 'cli-backups');
    const created = await runCli([
      'backup',
      'create',
      '--source',
      `files:${conf}`,
      '--target',
      target,
      '--json',
    ]);
    expect(created.code, created.err).toBe(0);
    const manifest = JSON.parse(created.out) as { id: string; files: { source: string }[] };
    expect(
      manifest.files.map((f) => f.source.endsWith('limits.yaml') || f.source.endsWith('app.yaml')),
    ).toEqual([true, true]);
    const list = await runCli(['backup', 'list', '--target', target]);
    expect(list.out).toContain(manifest.id);
    const verify = await runCli(['backup', 'verify', manifest.id, '--target', target]);
    expect(verify.code, verify.err).toBe(0);
    expect(verify.out).toMatch(/OK/);
    const to = join(dir, 'restored-etc');
    const restore = await runCli(['backup', 'restore', manifest.id, '--target', target, '--to', to]);
    expect(restore.code, restore.err).toBe(0);
    expect(readFileSync(join(to, conf, 'conf.d', 'limits.yaml'), 'utf8')).toBe('rps: 100\n');
    const usage = await runCli(['backup', 'restore', '--target', target]);
    expect(usage.code).toBe(2);
    const prune = await runCli([
      'backup',
      'prune',
      '--target',
      target,
      '--keep-last',
      '1',
      '--dry-run',
      '--json',
    ]);
    expect(prune.code, prune.err).toBe(0);
    expect(JSON.parse(prune.out).removed).toEqual([]);
  }, 60_000);
});
