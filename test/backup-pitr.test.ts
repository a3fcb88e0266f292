/**
 * Point-in-time recovery on a private PostgreSQL server (initdb in a temp directory): archive
 * WAL, take a base backup, write rows, note the time, write more, restore to the noted time in a
 * new data directory → exactly the rows written before it.
 */

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { baseBackup, restorePitr, setupPitr, stopPitrServer } from '../src/backup/index.js';
import { describePg, until } from './support/postgres.js';
import { PrivatePostgres, pgBinDir } from './support/private-postgres.js';
import { freePort } from './support/redis-server.js';

const root = mkdtempSync(join(tmpdir(), 'bulwark-pitr-'));
const archive = join(root, 'archive');
const bases = join(root, 'base');
const restored = join(root, 'restored');
let server: PrivatePostgres;

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

const describeIf = pgBinDir() === undefined ? describePg.skip : describePg;

describeIf('PITR on a private PostgreSQL server', () => {
  beforeAll(async () => {
    execFileSync('mkdir', ['-p', archive]);
    if (userInfo().uid === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(root, uid, gid);
      chownSync(archive, uid, gid);
    }
    server = await PrivatePostgres.start();
  });
  afterAll(async () => {
    if (existsSync(join(restored, 'PG_VERSION'))) await stopPitrServer(restored).catch(() => {});
    server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('restores exactly the rows committed before the noted time; reports RPO and RTO', async () => {
    const setup = await setupPitr({ url: server.url, archiveDir: archive, archiveTimeoutMs: 5_000 });
    expect(setup.restartRequired).toBe(true);
    server.restart();
    const base = await baseBackup({ url: server.url, dir: bases });
    expect(existsSync(join(base.dir, 'PG_VERSION'))).toBe(true);

    await sql(
      server.url,
      'CREATE TABLE events (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())',
    );
    for (let i = 1; i <= 100; i++) await sql(server.url, `INSERT INTO events (id) VALUES (${i})`);
    await new Promise((r) => setTimeout(r, 50));
    const noted = (await sql(server.url, 'SELECT clock_timestamp() AS t')).rows[0].t as Date;
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 101; i <= 150; i++) await sql(server.url, `INSERT INTO events (id) VALUES (${i})`);
    const seg = (await sql(server.url, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS w')).rows[0]
      .w as string;
    await sql(server.url, 'SELECT pg_switch_wal()');
    expect(await until(() => readdirSync(archive).includes(seg), 30_000)).toBe(true);

    const port = await freePort();
    const r = await restorePitr({ base: bases, archiveDir: archive, toTime: noted, dataDir: restored, port });
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const rows = (await sql(url, 'SELECT count(*)::int AS n, max(id) AS max FROM events')).rows[0];
    expect(rows).toEqual({ n: 100, max: 100 });
    expect(r.targetTime).toBe(noted.toISOString());
    expect(r.rpoMs).not.toBeNull();
    expect(r.rpoMs!).toBeGreaterThanOrEqual(0);
    expect(r.rtoMs).toBeGreaterThan(0);
    // Promoted: it takes writes.
    await sql(url, 'INSERT INTO events (id) VALUES (1000)');
    await stopPitrServer(restored);
  }, 180_000);
});
