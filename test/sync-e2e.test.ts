/**
 * End to end with real processes and the real PostgreSQL (issue 17, acceptance 2): a sync server
 * process (node:http, PostgreSQL, audit to a file), three device processes that edit the same
 * records offline, replay concurrently, one SIGKILLed mid-replay and restarted. Then: the server
 * and every device hold the same records, every acknowledged operation is on the server, and
 * every conflict the server resolved is in the audit log.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName } from './support/postgres.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures', 'sync');

interface Child {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  waitFor(prefix: string, timeoutMs: number): Promise<string>;
}

/** Runs a TS fixture as `node --import tsx file.ts` in its own process group. */
function run(file: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, file)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buf = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (line.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      i = buf.indexOf('\n');
    }
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null)
        console.error(`${file} ${env.CLIENT_ID ?? ''} exited ${code}: ${err}`);
      resolve({ code, signal });
    }),
  );
  return {
    proc,
    lines,
    exited,
    waitFor(prefix, timeoutMs) {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`${file}: no "${prefix}" within ${timeoutMs} ms; stderr: ${err}`)),
          timeoutMs,
        );
        waiters.push({
          prefix,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

function killGroup(c: Child): void {
  try {
    process.kill(-c.proc.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

describePg('sync end to end: three devices, offline edits, a SIGKILL mid-replay, real PostgreSQL', () => {
  const schema = uniqueName('bw_sync_e2e');
  const dir = mkdtempSync(join(tmpdir(), 'bw-sync-e2e-'));
  const auditFile = join(dir, 'audit.jsonl');
  const children: Child[] = [];
  afterAll(async () => {
    for (const c of children) killGroup(c);
    await dropSchema(schema);
    rmSync(dir, { recursive: true, force: true });
  });

  it('converges, loses no acknowledged operation, and audits every conflict', async () => {
    writeFileSync(auditFile, '');
    const server = run('server.ts', {
      PG_URL: pgConnectionString(),
      SYNC_SCHEMA: schema,
      AUDIT_FILE: auditFile,
    });
    children.push(server);
    const port = Number((await server.waitFor('port ', 30_000)).split(' ')[1]);
    const url = `http://127.0.0.1:${port}/sync`;
    const device = (i: number, mode: 'edit' | 'sync', extra: Record<string, string> = {}): Child => {
      const c = run('client.ts', {
        CLIENT_ID: `device${i}`,
        DIR: join(dir, `device${i}`),
        URL: url,
        MODE: mode,
        ...extra,
      });
      children.push(c);
      return c;
    };
    const finish = async (c: Child): Promise<void> => {
      expect(await c.exited).toEqual({ code: 0, signal: null });
    };
    const acked = (c: Child): string[] => c.lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
    // each: '<opId> <entity>/<id> <seq> <clientId>'

    // A shared starting point: device0 creates records and syncs; the others pull them.
    const setup = device(0, 'edit', { EDITS: '8', SEED: '100' });
    await finish(setup);
    const allAcked = acked(setup);
    await finish(device(0, 'sync'));
    await Promise.all([finish(device(1, 'sync')), finish(device(2, 'sync'))]);

    // Offline: all three edit the same records.
    const edits = [0, 1, 2].map((i) => device(i, 'edit', { EDITS: '24', SEED: String(7 + i) }));
    for (const e of edits) await finish(e);
    for (const e of edits) allAcked.push(...acked(e));
    expect(allAcked.length).toBe(8 + 3 * 24);

    // Back online together; device1 is SIGKILLed mid-replay (after its first acknowledged batch).
    const replays = [0, 1, 2].map((i) => device(i, 'sync', { SLOW_MS: '60' }));
    await replays[1]!.waitFor('pushed ', 60_000);
    killGroup(replays[1]!);
    expect((await replays[1]!.exited).signal).toBe('SIGKILL');
    await Promise.all([finish(replays[0]!), finish(replays[2]!)]);
    // device1 comes back: its unacknowledged operations replay (the server skips those it had applied).
    const restarted = device(1, 'sync');
    await finish(restarted);
    expect(Number((await restarted.waitFor('start ', 1_000)).split(' ')[1])).toBeGreaterThan(0);

    // Everyone pulls once more; then all hold the same records as the server.
    const states: unknown[] = [];
    for (const i of [0, 1, 2]) {
      const c = device(i, 'sync');
      await finish(c);
      const line = c.lines.find((l) => l.startsWith('state '))!;
      const parsed = JSON.parse(line.slice(6)) as { pending: number; state: Record<string, unknown> };
      expect(parsed.pending).toBe(0);
      states.push(parsed.state);
    }

    const pool = pgPool();
    try {
      const rows = (
        await pool.query<{ entity: string; id: string; fields: Record<string, unknown> }>(
          `SELECT entity, id, fields FROM "${schema}".records WHERE fields <> '{}'::jsonb ORDER BY entity, id`,
        )
      ).rows;
      const truth: Record<string, unknown> = {};
      for (const r of rows) truth[`${r.entity}/${r.id}`] = r.fields;
      for (const s of states) expect(s).toEqual(truth);
      expect(Object.keys(truth).length).toBeGreaterThan(0);

      // No acknowledged operation lost: the server applied every one (a record's mark for a
      // client is the highest seq applied from it; a client replays a record's ops in seq order).
      const marks = new Map<string, Record<string, number>>();
      for (const r of (
        await pool.query<{ key: string; marks: Record<string, number> }>(
          `SELECT key, marks FROM "${schema}".records`,
        )
      ).rows) {
        marks.set(r.key, r.marks);
      }
      const lost = allAcked.filter((a) => {
        const [, key, seq, client] = a.split(' ');
        return (marks.get(key!)?.[client!] ?? 0) < Number(seq);
      });
      expect(lost).toEqual([]);

      // Every conflict the server resolved (reported after its commit) is in the audit log
      // (appended before that commit).
      const audited = new Set(
        readFileSync(auditFile, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as { action: string; subject: string })
          .filter((e) => e.action === 'sync.conflict')
          .map((e) => e.subject),
      );
      const conflicted = server.lines.filter((l) => l.startsWith('conflict ')).map((l) => l.slice(9));
      expect(conflicted.length).toBeGreaterThan(0);
      expect(conflicted.filter((id) => !audited.has(id))).toEqual([]);
      console.log(
        `sync e2e: ${allAcked.length} acknowledged ops, ${conflicted.length} conflicts audited, ${rows.length} live records converged on 3 devices`,
      );
    } finally {
      await pool.end();
    }
    server.proc.kill('SIGTERM');
    await server.exited;
  }, 240_000);
});
