/**
 * `bulwark serve` as a real process: over a SQLite queue store and a SQLite audit log made by
 * another process (this test), it prints its URL; an operator lists the queue, sees the dead
 * letter, redrives it (recorded in the admin audit log given with --record) and verifies the
 * service's audit log; a viewer may not act, no token gets 401; SIGTERM closes it (exit 0).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openAuditLog } from 'bulwark/audit';
import { openQueue, sqliteStore } from 'bulwark/durable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN = 'olga-operator-token-0123456789';
const VIEWER = 'vic-viewer-token-0123456789ab';
let dir: string;
let child: ChildProcess;
let url: string;
let out = '';
let exited: Promise<number | null>;

async function until(fn: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function call(path: string, token?: string, body?: unknown): Promise<Response> {
  return fetch(new URL(path, url), {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('bulwark serve (a real process)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-serve-'));
    // The service's data, made here: a queue with one completed item and one dead letter, an audit log.
    const q = await openQueue<{ to: string }>({
      name: 'emails',
      store: sqliteStore({ path: join(dir, 'q.db') }),
      maxAttempts: 1,
      statsIntervalMs: 0,
    });
    await q.enqueue({ to: 'ok@example.org' });
    await q.enqueue({ to: 'bounce@example.org' });
    const w = q.work(
      async (job) => {
        if (job.payload.to.startsWith('bounce')) throw new Error('mailbox unavailable');
      },
      { pollMs: 20 },
    );
    expect(
      await until(async () => (await q.stats()).dead === 1 && (await q.stats()).completed === 1, 20_000),
    ).toBe(true);
    await w.stop();
    await q.close();
    const log = await openAuditLog({ store: `sqlite:${join(dir, 'audit.db')}` });
    for (let i = 0; i < 5; i++)
      await log.append({ actor: 'svc', action: 'order.create', resource: `order/${i}` });
    await log.close();

    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'test/support/run-cli.ts'),
        'serve',
        '--queue',
        `sqlite:${join(dir, 'q.db')}`,
        '--audit',
        `sqlite:${join(dir, 'audit.db')}`,
        '--record',
        `sqlite:${join(dir, 'admin.db')}`,
        '--port',
        '0',
        '--tokens-env',
        'SERVE_TOKENS',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, SERVE_TOKENS: `olga@operator:${ADMIN},vic@viewer:${VIEWER}` },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    expect(await until(() => /listening on (\S+)/.test(out), 60_000)).toBe(true);
    url = /listening on (\S+)/.exec(out)![1]!;
  }, 120_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints its URL and what it serves', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(out).toContain('(1 queue, 1 audit log)');
  });

  it('lists the queue and the audit log; refuses no token (401) and a viewer acting (403)', async () => {
    expect((await call('/api/components')).status).toBe(401);
    const list = (await (await call('/api/components', VIEWER)).json()) as {
      components: { kind: string; name: string }[];
    };
    expect(list.components.map((c) => `${c.kind}/${c.name}`)).toEqual(
      expect.arrayContaining(['durableQueue/emails', 'auditLog/audit']),
    );
    const denied = await call('/api/components/durableQueue/emails/actions/redrive', VIEWER, {
      reason: 'try as a viewer',
      input: {},
    });
    expect(denied.status).toBe(403);
    const bad = await call('/api/components/durableQueue/emails/actions/redrive', ADMIN, {
      reason: 'x',
      input: {},
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field: string }).field).toBe('body.reason');
  });

  it('an operator sees the dead letter and redrives it; the service then completes it', async () => {
    const dead = (await (
      await call('/api/components/durableQueue/emails/views/deadLetters', ADMIN)
    ).json()) as {
      id: string;
      error?: { message: string };
    }[];
    expect(dead).toHaveLength(1);
    expect(JSON.stringify(dead[0])).toContain('mailbox unavailable');
    const res = await call('/api/components/durableQueue/emails/actions/redrive', ADMIN, {
      reason: 'mailbox fixed',
      input: { ids: [dead[0]!.id] },
    });
    expect(res.status).toBe(200);
    // The service (here: this process) works the redriven item to completion.
    const q = await openQueue<{ to: string }>({
      name: 'emails',
      store: sqliteStore({ path: join(dir, 'q.db') }),
      statsIntervalMs: 0,
    });
    const w = q.work(async () => {}, { pollMs: 20 });
    expect(await until(async () => (await q.stats()).completed === 2, 20_000)).toBe(true);
    await w.stop();
    await q.close();
    const stats = (await (await call('/api/components/durableQueue/emails', ADMIN)).json()) as {
      snapshot: { gauges: Record<string, number> };
    };
    expect(stats.snapshot.gauges.dead ?? 0).toBe(0);
  });

  it("verifies the service's audit log", async () => {
    const v = (await (await call('/api/components/auditLog/audit/views/verify', VIEWER)).json()) as {
      ok: boolean;
      entries: number;
    };
    expect(v).toMatchObject({ ok: true, entries: 5 });
  });

  it('SIGTERM closes it gracefully (exit 0); the redrive is in the admin audit log', async () => {
    process.kill(child.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('bulwark serve: closing');
    const admin = await openAuditLog({ store: `sqlite:${join(dir, 'admin.db')}`, name: 'admin' });
    const rows = await admin.list({ limit: 100 });
    expect(rows.map((r) => `${r.actor} ${r.action} ${r.outcome}`)).toEqual(
      expect.arrayContaining(['olga durableQueue.redrive success', 'vic durableQueue.redrive denied']),
    );
    expect((await admin.verify()).ok).toBe(true);
    await admin.close();
  });
});

describe('bulwark serve: usage', () => {
  const io = () => {
    const lines: string[] = [];
    return { lines, io: { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) } };
  };

  it('--help prints the options (0); no token, a bad port, an unknown option or a bad store are refused', async () => {
    const { main } = await import('../src/server/serve-cli.js');
    const help = io();
    expect(await main(['serve', '--help'], help.io)).toBe(0);
    expect(help.lines.join('\n')).toContain('--queue SPEC');
    const saved = process.env.BULWARK_ADMIN_TOKENS;
    delete process.env.BULWARK_ADMIN_TOKENS;
    try {
      const none = io();
      expect(await main(['serve', '--port', '0'], none.io)).toBe(2);
      expect(none.lines.join('\n')).toContain('no token in $BULWARK_ADMIN_TOKENS');
      process.env.BULWARK_ADMIN_TOKENS = `viewer:${VIEWER}`;
      const port = io();
      expect(await main(['serve', '--port', '70000'], port.io)).toBe(2);
      const unknown = io();
      expect(await main(['serve', '--bogus'], unknown.io)).toBe(2);
      const store = io();
      expect(await main(['serve', '--port', '0', '--queue', 'mysql://x'], store.io)).toBe(1);
      expect(store.lines.join('\n')).toContain('Unknown store');
    } finally {
      if (saved === undefined) delete process.env.BULWARK_ADMIN_TOKENS;
      else process.env.BULWARK_ADMIN_TOKENS = saved;
    }
  });
});
