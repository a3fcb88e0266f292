/**
 * Erasure by crypto-shredding, end to end: after erasing a subject, none of its payloads
 * decrypt (audit payloads and an opted-in dataset), its subject export is empty, and
 * `bulwark audit verify` passes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../src/audit/index.js';
import { main } from '../src/cli/main.js';
import { eraseSubject, type Row, subjectAccess, subjectDatasets } from '../src/export/index.js';
import {
  keyringFromEnv,
  payloadEncryption,
  sqliteSubjectKeyStore,
  subjectKeys,
} from '../src/keyring/index.js';

const dir = mkdtempSync(join(tmpdir(), 'erasure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('subject erasure', () => {
  it('shreds the subject: payloads unreadable, subject export empty, bulwark audit verify passes', async () => {
    const env = { BULWARK_KEYS: `k1:${randomBytes(32).toString('base64')}` };
    const ring = keyringFromEnv('BULWARK_KEYS', env);
    const keysPath = join(dir, 'subject-keys.db');
    const subjects = subjectKeys({ keyring: ring, store: sqliteSubjectKeyStore({ path: keysPath }) });
    const enc = payloadEncryption({ keyring: ring, subjectKeys: subjects });
    const auditPath = join(dir, 'audit.db');
    const log = openAuditLog({ store: `sqlite:${auditPath}`, encryption: enc });

    // A user dataset that opts in: its `details` column is sealed with the subject's key.
    const db = new Database(join(dir, 'app.db'));
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, subject TEXT, key_id TEXT, details BLOB)');
    for (let i = 1; i <= 30; i++) {
      const subject = i % 3 === 0 ? 'alice' : 'bob';
      const scope = { namespace: 'dataset:orders', id: String(i), subject };
      const sealed = await enc.seal(
        scope,
        Buffer.from(JSON.stringify({ item: `book-${i}`, card: `4111-${i}` })),
      );
      db.prepare('INSERT INTO orders VALUES (?, ?, ?, ?)').run(i, subject, sealed.keyId, sealed.bytes);
      await log.append({
        actor: subject,
        action: 'order.create',
        resource: `order:${i}`,
        subject,
        tags: ['pci', 'gdpr'],
        payload: { total: i },
      });
    }
    const datasets = subjectDatasets().register({
      name: 'orders',
      async *rows(subject): AsyncIterable<Row> {
        for (const r of db.prepare('SELECT * FROM orders WHERE subject = ? ORDER BY id').all(subject) as {
          id: number;
          key_id: string;
          details: Buffer;
        }[]) {
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
    });

    const before = await subjectAccess({
      datasets,
      subject: 'alice',
      to: join(dir, 'before.zip'),
      requestedBy: 'dpo',
      audit: log,
      formats: ['json'],
    });
    expect(before.files.map((f) => [f.path, f.rows])).toEqual([
      ['orders.json', 10],
      ['audit.audit.json', 10],
    ]);

    const erased = await eraseSubject({
      subject: 'alice',
      subjectKeys: subjects,
      datasets,
      actor: 'dpo',
      reason: 'Art. 17 request #7',
      audit: log,
    });
    expect(erased.keyDestroyed).toBe(true);

    // None of alice's payloads decrypt; bob's still do.
    let aliceReadable = 0;
    for (const r of db.prepare('SELECT * FROM orders').all() as {
      id: number;
      subject: string;
      key_id: string;
      details: Buffer;
    }[]) {
      const ok = await enc
        .open({ namespace: 'dataset:orders', id: String(r.id), subject: r.subject }, r.key_id, r.details)
        .then(
          () => true,
          (e: { code?: string }) => {
            expect(e.code).toBe('SUBJECT_ERASED');
            return false;
          },
        );
      if (r.subject === 'alice' && ok) aliceReadable++;
      if (r.subject === 'bob') expect(ok).toBe(true);
    }
    expect(aliceReadable).toBe(0);
    const auditAlice = await log.list({ subject: 'alice', payloads: true, limit: 100 });
    expect(
      auditAlice.filter((e) => e.action === 'order.create').every((e) => e.payloadState === 'unreadable'),
    ).toBe(true);

    const after = await subjectAccess({
      datasets,
      subject: 'alice',
      to: join(dir, 'after.zip'),
      requestedBy: 'dpo',
      audit: log,
      formats: ['json'],
    });
    expect(after.files.map((f) => f.rows)).toEqual([0, 0]);
    await log.close();
    await subjects.close();
    db.close();

    const out: string[] = [];
    const err: string[] = [];
    process.env.BULWARK_KEYS = env.BULWARK_KEYS;
    const code = await main(
      ['audit', 'verify', '--store', `sqlite:${auditPath}`, '--json', '--subject-keys', keysPath],
      {
        out: (s) => out.push(s),
        err: (s) => err.push(s),
      },
    );
    // The CLI reads BULWARK_KEYS from the environment.
    delete process.env.BULWARK_KEYS;
    expect(code, err.join('\n')).toBe(0);
    const rep = JSON.parse(out[0]!);
    expect(rep, JSON.stringify(rep.payloads)).toMatchObject({ ok: true, payloads: { unreadable: 11 } }); // 10 orders + the first export record about alice
  });
});
