import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../core/registry.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { verifyCheckpoint } from './checkpoint.js';
import { openAuditLog } from './log.js';
import { verifyConsistency, verifyInclusion } from './merkle.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmpDb(): string {
  const d = mkdtempSync(join(tmpdir(), 'audit-'));
  dirs.push(d);
  return join(d, 'audit.db');
}
const unhex = (h: string) => Buffer.from(h, 'hex');

describe('openAuditLog (SQLite)', () => {
  it('appends concurrently in group commits, chains and verifies; reopening continues the chain', async () => {
    const path = tmpDb();
    const registry = createRegistry();
    const log = openAuditLog({ store: `sqlite:${path}`, registry, name: 'main' });
    const batches: number[] = [];
    log.onEvent((e) => {
      if (e.event === 'appended') batches.push((e as unknown as { count: number }).count);
    });
    const entries = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        log.append({ actor: `u${i % 7}`, action: 'read', resource: `r${i}`, tags: ['gdpr'], payload: { i } }),
      ),
    );
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(batches.length).toBeLessThan(10); // group commit: a handful of transactions, not 200
    expect(registry.get('auditLog', 'main')).toBe(log);
    const snap = log.snapshot();
    expect(snap.counters.appends).toBe(200);
    expect(snap.gauges.seq).toBe(200);
    expect((await log.verify()).ok).toBe(true);
    await log.close();

    const again = openAuditLog({ store: `sqlite:${path}` });
    const e = await again.append({ actor: 'x', action: 'y', resource: 'z' });
    expect(e.seq).toBe(201);
    expect(e.prevHash).toBe(entries[199]!.hash);
    const rep = await again.verify();
    expect(rep).toMatchObject({ ok: true, entries: 201, payloads: { checked: 200, unreadable: 0 } });
    await again.close();
  });

  it('refuses bad entries with a clear error and loses nothing else', async () => {
    const log = openAuditLog({ store: 'sqlite::memory:' });
    await expect(log.append({ actor: '', action: 'a', resource: 'r' })).rejects.toMatchObject({
      code: 'INVALID_ENTRY',
    });
    await expect(
      log.append({ actor: 'a', action: 'a', resource: 'r', tags: ['Bad Tag'] }),
    ).rejects.toMatchObject({ code: 'INVALID_ENTRY' });
    await expect(
      log.append({ actor: 'a', action: 'a', resource: 'r', payload: { n: Number.NaN } }),
    ).rejects.toMatchObject({ code: 'INVALID_ENTRY' });
    expect((await log.append({ actor: 'a', action: 'a', resource: 'r' })).seq).toBe(1);
    await log.close();
    await expect(log.append({ actor: 'a', action: 'a', resource: 'r' })).rejects.toMatchObject({
      code: 'CLOSED',
    });
  });

  it('the database refuses UPDATE and DELETE of entries', async () => {
    const path = tmpDb();
    const log = openAuditLog({ store: `sqlite:${path}` });
    await log.append({ actor: 'a', action: 'b', resource: 'c' });
    await log.close();
    const db = new Database(path);
    expect(() => db.prepare("UPDATE bulwark_audit_entries SET actor = 'm'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM bulwark_audit_entries').run()).toThrow(/append-only/);
    db.close();
  });

  it('finds an edit made directly in the database, and a payload swapped for another', async () => {
    const path = tmpDb();
    const log = openAuditLog({ store: `sqlite:${path}` });
    for (let i = 0; i < 20; i++)
      await log.append({ actor: 'a', action: 'b', resource: `r${i}`, payload: { i } });
    const db = new Database(path);
    db.exec('DROP TRIGGER bulwark_audit_no_update');
    db.prepare("UPDATE bulwark_audit_entries SET resource = 'forged' WHERE seq = 7").run();
    db.prepare('UPDATE bulwark_audit_payloads SET body = CAST(\'{"i":99}\' AS BLOB) WHERE seq = 12').run();
    db.close();
    const rep = await log.verify();
    expect(rep.ok).toBe(false);
    expect(rep.firstBad).toMatchObject({ seq: 7, reason: 'hash' });
    expect(rep.issues.map((i) => [i.seq, i.reason])).toEqual([
      [7, 'hash'],
      [12, 'payload'],
    ]);
    expect(log.snapshot().state).toBe('tampered');
    await log.close();
  });

  it('purging payloads keeps verification green, records the purge, and legal holds win', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            tag: fc.constantFrom('gdpr', 'sox', 'pci'),
            subject: fc.constantFrom('s1', 's2', undefined),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.constantFrom('gdpr', 'sox', 'pci'),
        fc.boolean(),
        async (rows, purgeTag, holdSox) => {
          const log = openAuditLog({ store: 'sqlite::memory:' });
          for (const r of rows)
            await log.append({
              actor: 'a',
              action: 'b',
              resource: 'c',
              tags: [r.tag],
              ...(r.subject ? { subject: r.subject } : {}),
              payload: r,
            });
          if (holdSox) await log.hold({ id: 'case-1', tags: ['sox'], reason: 'litigation', actor: 'legal' });
          const { purged, held, entry } = await log.purge({ tag: purgeTag, actor: 'dpo', reason: 'request' });
          const expectedHeld = holdSox && purgeTag === 'sox' ? rows.filter((r) => r.tag === 'sox').length : 0;
          expect(held).toBe(expectedHeld);
          expect(purged).toBe(rows.filter((r) => r.tag === purgeTag).length - expectedHeld);
          expect(entry.action).toBe('audit.purge');
          const rep = await log.verify();
          expect(rep.ok).toBe(true);
          const states = (await log.list({ tag: purgeTag, payloads: true, limit: 1000 })).map(
            (e) => e.payloadState,
          );
          expect(states.every((s) => s === (expectedHeld > 0 ? 'present' : 'purged'))).toBe(true);
          await log.close();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('applies retention per tag (longest tag wins), never to held payloads', async () => {
    const clock = createFakeClock({ date: 1_000_000 });
    const day = 86_400_000;
    const log = openAuditLog({
      store: 'sqlite::memory:',
      clock,
      retention: { gdpr: 30 * day, sox: 7 * 365 * day },
    });
    await log.append({ actor: 'a', action: 'b', resource: 'g', tags: ['gdpr'], payload: 1 });
    await log.append({ actor: 'a', action: 'b', resource: 'gs', tags: ['gdpr', 'sox'], payload: 2 });
    await log.append({
      actor: 'a',
      action: 'b',
      resource: 'held',
      tags: ['gdpr'],
      subject: 'case',
      payload: 3,
    });
    await log.append({ actor: 'a', action: 'b', resource: 'untagged', payload: 4 });
    await log.hold({ id: 'h', subject: 'case', reason: 'lawsuit', actor: 'legal' });
    clock.tickSync(31 * day);
    const r = await log.applyRetention();
    expect(r).toMatchObject({ purged: 1, held: 1 });
    const states = Object.fromEntries(
      (await log.list({ payloads: true, limit: 10 })).map((e) => [e.resource, e.payloadState]),
    );
    expect(states).toMatchObject({ g: 'purged', gs: 'present', held: 'present', untagged: 'present' });
    expect(await log.release('h', { actor: 'legal', reason: 'settled' })).toBe(true);
    expect((await log.applyRetention()).purged).toBe(1);
    expect((await log.verify()).ok).toBe(true);
    await log.close();
  });

  it('signs checkpoints; inclusion and consistency proofs verify offline; a truncated tail is caught', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const path = tmpDb();
    const seen: number[] = [];
    const log = openAuditLog({
      store: `sqlite:${path}`,
      signingKey: privateKey,
      checkpoints: { everyEntries: 10, onCheckpoint: (c) => void seen.push(c.treeSize) },
    });
    for (let i = 0; i < 37; i++) await log.append({ actor: 'a', action: 'b', resource: `r${i}` });
    const cp = await log.checkpoint();
    expect(cp.treeSize).toBe(37);
    expect(verifyCheckpoint(cp, publicKey)).toBe(true);
    expect(verifyCheckpoint({ ...cp, treeSize: 36 }, publicKey)).toBe(false);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const seq of [1, 13, 37]) {
      const p = await log.proof(seq);
      expect(
        verifyInclusion(unhex(p.leafHash), seq - 1, p.treeSize, p.path.map(unhex), unhex(cp.rootHash)),
      ).toBe(true);
    }
    const early = (await log.checkpoints())[0]!;
    const c = await log.consistency(early.treeSize, 37);
    expect(c.firstRoot).toBe(early.rootHash);
    expect(
      verifyConsistency(c.first, c.second, unhex(early.rootHash), unhex(cp.rootHash), c.path.map(unhex)),
    ).toBe(true);
    expect((await log.verify()).ok).toBe(true);
    await log.close();

    const db = new Database(path);
    db.exec('DROP TRIGGER bulwark_audit_no_delete');
    db.prepare('DELETE FROM bulwark_audit_entries WHERE seq >= 30').run();
    db.prepare(
      'UPDATE bulwark_audit_head SET seq = 29, hash = (SELECT hash FROM bulwark_audit_entries WHERE seq = 29)',
    ).run();
    db.close();
    const again = openAuditLog({ store: `sqlite:${path}`, publicKey });
    const rep = await again.verify();
    expect(rep.firstBad).toMatchObject({ seq: 30, reason: 'truncated' });
    await again.close();
  });
});
