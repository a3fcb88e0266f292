/**
 * Acceptance 4 end to end, on SQLite and on PostgreSQL (subject keys, audit log, queue and the
 * dataset all on the same backend): after erasing a subject, none of its payloads decrypt —
 * audit payloads, durable queue items sealed per subject (a worker dead-letters them with
 * DECRYPT_FAILED) and an opted-in dataset — its subject export is empty, the other subject's data
 * is untouched, and `bulwark audit verify` run as a process (the bin's main) passes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openAuditLog, postgresAuditStore, sqliteAuditStore } from '../src/audit/index.js';
import { openQueue, postgresStore, sqliteStore } from '../src/durable/index.js';
import { eraseSubject, type Row, subjectAccess, subjectDatasets } from '../src/export/index.js';
import {
  keyringFromEnv,
  payloadEncryption,
  postgresSubjectKeyStore,
  sqliteSubjectKeyStore,
  subjectKeys,
} from '../src/keyring/index.js';

const run = promisify(execFile);
const PG = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = mkdtempSync(join(tmpdir(), 'dataexp-erasure-'));
const tag = `${process.pid}_${Date.now() % 100_000}`;
const schemas = {
  keys: `bw_dataexp_keys_${tag}`,
  audit: `bw_dataexp_audit_${tag}`,
  queue: `bw_dataexp_queue_${tag}`,
  app: `bw_dataexp_app_${tag}`,
};
const pool = new pg.Pool({ connectionString: PG, max: 4 });

afterAll(async () => {
  for (const s of Object.values(schemas)) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
});

/** The dataset table: per backend, rows of (id, subject, key_id, details sealed per subject). */
interface AppDb {
  insert(id: number, subject: string, keyId: string, details: Uint8Array): Promise<void>;
  bySubject(subject: string): Promise<{ id: number; key_id: string; details: Uint8Array }[]>;
  all(): Promise<{ id: number; subject: string; key_id: string; details: Uint8Array }[]>;
  close(): Promise<void>;
}

function sqliteApp(): AppDb {
  const db = new Database(join(dir, 'app.db'));
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, subject TEXT, key_id TEXT, details BLOB)');
  return {
    insert: async (...r) => void db.prepare('INSERT INTO orders VALUES (?, ?, ?, ?)').run(...r),
    bySubject: async (s) => db.prepare('SELECT * FROM orders WHERE subject = ? ORDER BY id').all(s) as never,
    all: async () => db.prepare('SELECT * FROM orders ORDER BY id').all() as never,
    close: async () => void db.close(),
  };
}

async function pgApp(): Promise<AppDb> {
  const t = `${schemas.app}.orders`;
  await pool.query(
    `CREATE SCHEMA ${schemas.app}; CREATE TABLE ${t} (id int PRIMARY KEY, subject text, key_id text, details bytea)`,
  );
  return {
    insert: async (...r) => void (await pool.query(`INSERT INTO ${t} VALUES ($1, $2, $3, $4)`, r)),
    bySubject: async (s) => (await pool.query(`SELECT * FROM ${t} WHERE subject = $1 ORDER BY id`, [s])).rows,
    all: async () => (await pool.query(`SELECT * FROM ${t} ORDER BY id`)).rows,
    close: async () => {},
  };
}

describe.each(['sqlite', 'postgres'] as const)('subject erasure end to end (%s)', (backend) => {
  it('shreds audit payloads, queue items and the dataset; subject export empty; bulwark audit verify passes', async () => {
    const env = { BULWARK_KEYS: `k1:${randomBytes(32).toString('base64')}` };
    const ring = keyringFromEnv('BULWARK_KEYS', env);
    const keysAt = backend === 'sqlite' ? join(dir, 'keys.db') : `${PG}?schema=${schemas.keys}`;
    const subjects = subjectKeys({
      keyring: ring,
      store:
        backend === 'sqlite'
          ? sqliteSubjectKeyStore({ path: keysAt })
          : postgresSubjectKeyStore({ pool, schema: schemas.keys }),
    });
    const enc = payloadEncryption({ keyring: ring, subjectKeys: subjects });
    const auditSpec =
      backend === 'sqlite' ? `sqlite:${join(dir, 'audit.db')}` : `${PG}?schema=${schemas.audit}`;
    const log = openAuditLog({
      store:
        backend === 'sqlite'
          ? sqliteAuditStore({ path: join(dir, 'audit.db') })
          : postgresAuditStore({ connectionString: PG, schema: schemas.audit }),
      encryption: enc,
    });
    const q = await openQueue<{ who: string; body: string }>({
      name: 'mail',
      store:
        backend === 'sqlite'
          ? sqliteStore({ path: join(dir, 'queue.db') })
          : postgresStore({ connectionString: PG, schema: schemas.queue }),
      keyring: ring,
      subjectKeys: subjects,
    });
    const app = backend === 'sqlite' ? sqliteApp() : await pgApp();

    const ids: Record<string, string[]> = { alice: [], bob: [] };
    // Concurrent first uses of a subject make ONE key (the store's create is conditional).
    await Promise.all(
      Array.from({ length: 30 }, async (_, k) => {
        const i = k + 1;
        const subject = i % 3 === 0 ? 'alice' : 'bob';
        const sealed = await enc.seal(
          { namespace: 'dataset:orders', id: String(i), subject },
          Buffer.from(JSON.stringify({ item: `book-${i}`, card: `4111-${i}` })),
        );
        await app.insert(i, subject, sealed.keyId, sealed.bytes);
        await log.append({
          actor: subject,
          action: 'order.create',
          resource: `order:${i}`,
          subject,
          tags: ['pci', 'gdpr'],
          payload: { total: i },
        });
        const { id } = await q.enqueue({ who: subject, body: `receipt ${i}` }, { subject });
        ids[subject]!.push(id);
      }),
    );
    // An item without a subject stays under the queue keyring.
    await q.enqueue({ who: 'nobody', body: 'newsletter' });
    // The queue's re-wrap leaves subject-sealed items alone (their keys re-wrap with subjectKeys.rewrap()).
    expect(await q.rewrap()).toMatchObject({ rewrapped: 0, failed: 0, done: true });

    const datasets = subjectDatasets()
      .register({
        name: 'orders',
        async *rows(subject): AsyncIterable<Row> {
          for (const r of await app.bySubject(subject)) {
            try {
              const plain = await enc.open(
                { namespace: 'dataset:orders', id: String(r.id), subject },
                r.key_id,
                r.details,
              );
              yield { id: r.id, ...JSON.parse(Buffer.from(plain).toString()) };
            } catch (error) {
              if ((error as { code?: string }).code !== 'SUBJECT_ERASED') throw error;
            }
          }
        },
      })
      .register({
        name: 'mail',
        async *rows(subject): AsyncIterable<Row> {
          for (const item of await q.list({ limit: 1000 })) {
            if (item.payload?.who === subject) yield { id: item.id, body: item.payload.body };
          }
        },
      });

    const before = await subjectAccess({
      datasets,
      subject: 'alice',
      to: join(dir, `${backend}-before.zip`),
      requestedBy: 'dpo',
      audit: log,
      formats: ['json'],
    });
    expect(before.files.map((f) => f.rows)).toEqual([10, 10, 10]);
    for (const id of ids.alice!) expect((await q.get(id))?.payload?.who).toBe('alice');

    const erased = await eraseSubject({
      subject: 'alice',
      subjectKeys: subjects,
      datasets,
      actor: 'dpo',
      reason: 'Art. 17 request #7',
      audit: log,
    });
    expect(erased.keyDestroyed).toBe(true);

    // Dataset: none of alice's rows decrypt; bob's all do.
    for (const r of await app.all()) {
      const opened = await enc
        .open({ namespace: 'dataset:orders', id: String(r.id), subject: r.subject }, r.key_id, r.details)
        .then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
      expect(opened).toBe(r.subject === 'alice' ? 'SUBJECT_ERASED' : 'ok');
    }
    // Audit payloads.
    const auditAlice = await log.list({ subject: 'alice', payloads: true, limit: 100 });
    expect(auditAlice.filter((e) => e.action === 'order.create').map((e) => e.payloadState)).toEqual(
      Array(10).fill('unreadable'),
    );
    expect(
      (await log.list({ subject: 'bob', payloads: true, limit: 100 })).every(
        (e) => e.payloadState === 'present',
      ),
    ).toBe(true);
    // Queue items: readers see no payload, a worker dead-letters alice's with DECRYPT_FAILED and runs the rest.
    for (const id of ids.alice!) {
      const v = await q.get(id);
      expect(v?.payload).toBeUndefined();
      expect(v?.payloadError).toMatch(/erased/);
    }
    const done: string[] = [];
    const w = q.work(async (job) => void done.push(job.payload.who), { concurrency: 4, pollMs: 20 });
    for (let i = 0; i < 500 && (await q.stats()).pending + (await q.stats()).active > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    await w.stop();
    expect(done.sort()).toEqual([...Array(20).fill('bob'), 'nobody']);
    const dead = await q.list({ state: 'dead', limit: 100 });
    expect(dead.map((d) => d.id).sort()).toEqual([...ids.alice!].sort());
    expect(dead.every((d) => d.deadReason === 'DECRYPT_FAILED')).toBe(true);

    // The subject export is empty.
    const after = await subjectAccess({
      datasets,
      subject: 'alice',
      to: join(dir, `${backend}-after.zip`),
      requestedBy: 'dpo',
      audit: log,
      formats: ['json'],
    });
    expect(after.files.map((f) => f.rows)).toEqual([0, 0, 0]);
    await log.close();
    await q.close();
    await subjects.close();
    await app.close();

    // `bulwark audit verify` as a process (test/fixtures/durable/bin.ts runs the bin's main).
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/fixtures/durable/bin.ts',
        'audit',
        'verify',
        '--store',
        auditSpec,
        '--subject-keys',
        keysAt,
        '--json',
      ],
      { env: { ...process.env, ...env }, timeout: 120_000 },
    );
    const rep = JSON.parse(stdout.trim().split('\n').pop()!) as {
      ok: boolean;
      payloads: { unreadable: number; checked: number };
    };
    // 10 orders + the access export recorded before the erasure (sealed with alice's old key).
    expect(rep).toMatchObject({ ok: true, payloads: { unreadable: 11 } });
  }, 180_000);
});
