import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { openAuditLog } from '../audit/log.js';
import { type Keyring, keyring } from '../durable/encryption.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { payloadEncryption } from './encryption.js';
import { scheduleRotation } from './rotation.js';
import { keyFileSaver, keyringFromCommand, keyringFromFile } from './sources.js';
import {
  memorySubjectKeyStore,
  type SubjectKeys,
  sqliteSubjectKeyStore,
  subjectKeys,
} from './subject-keys.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'keyring-'));
  dirs.push(d);
  return d;
};
const b64 = () => randomBytes(32).toString('base64');
/** An in-memory audit log whose payloads are sealed with `ring` and per-subject keys. */
const encryptedLog = (ring: Keyring, subjects: SubjectKeys) =>
  openAuditLog({
    store: 'sqlite::memory:',
    encryption: payloadEncryption({ keyring: ring, subjectKeys: subjects }),
  });

describe('keyring sources', () => {
  it('reads files and commands; errors never show key material', async () => {
    const dir = tmp();
    const k1 = b64();
    const k2 = b64();
    writeFileSync(join(dir, 'keys'), `# current first\nk2:${k2}\nk1:${k1}\n`);
    const ring = await keyringFromFile(join(dir, 'keys'));
    expect(ring.ids()).toEqual(['k2', 'k1']);
    expect(inspect(ring)).not.toContain(k2);
    const cmd = await keyringFromCommand(process.execPath, ['-e', `console.log('c1:${k1}')`]);
    expect(cmd.currentKeyId).toBe('c1');
    const err = await keyringFromCommand(process.execPath, [
      '-e',
      `console.log('${k1}'); process.exit(3)`,
    ]).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'SOURCE_FAILED' });
    expect(String((err as Error).message)).not.toContain(k1);
    writeFileSync(join(dir, 'bad'), `oops:${k1.slice(0, 10)}`);
    const bad = await keyringFromFile(join(dir, 'bad')).catch((e: Error) => e);
    expect(String((bad as Error).message)).not.toContain(k1.slice(0, 10));
  });
});

describe('subject keys and erasure', () => {
  it('after erasing a subject none of its audit payloads decrypt, others do, and the chain verifies', async () => {
    const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
    const subjects = subjectKeys({
      keyring: ring,
      store: sqliteSubjectKeyStore({ path: join(tmp(), 'keys.db') }),
    });
    const log = encryptedLog(ring, subjects);
    for (let i = 0; i < 20; i++)
      await log.append({
        actor: 'a',
        action: 'view',
        resource: `r${i}`,
        subject: i % 2 === 0 ? 'alice' : 'bob',
        payload: { secret: `s${i}` },
      });
    await log.append({ actor: 'a', action: 'boot', resource: 'app', payload: { plain: true } });
    expect(await subjects.erase('alice')).toBe(true);
    const alice = await log.list({ subject: 'alice', payloads: true });
    expect(alice).toHaveLength(10);
    expect(alice.every((e) => e.payloadState === 'unreadable' && e.payload === undefined)).toBe(true);
    const bob = await log.list({ subject: 'bob', payloads: true });
    expect(bob.every((e) => e.payloadState === 'present')).toBe(true);
    const rep = await log.verify();
    expect(rep).toMatchObject({ ok: true, payloads: { unreadable: 10 } });
    // A returning subject gets a new key; old payloads stay unreadable.
    await log.append({ actor: 'a', action: 'view', resource: 'again', subject: 'alice', payload: { n: 1 } });
    const after = await log.list({ subject: 'alice', payloads: true, limit: 100 });
    expect(after.filter((e) => e.payloadState === 'present')).toHaveLength(1);
    await log.close();
    await subjects.close();
  });

  it('rotation saves the key first, audits it, and the rewrap keeps everything readable', async () => {
    const clock = createFakeClock({ date: Date.UTC(2026, 0, 1) });
    const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
    const subjects = subjectKeys({ keyring: ring, store: memorySubjectKeyStore() });
    const log = encryptedLog(ring, subjects);
    for (let i = 0; i < 5; i++)
      await log.append({
        actor: 'a',
        action: 'x',
        resource: 'r',
        payload: { i },
        ...(i === 0 ? { subject: 'carol' } : {}),
      });
    const file = join(tmp(), 'keys');
    writeFileSync(file, '');
    const rotation = scheduleRotation({
      keyring: ring,
      everyMs: 30 * 86_400_000,
      clock,
      audit: log,
      save: keyFileSaver(file),
      targets: [
        { name: 'audit', run: async () => log.rewrapPayloads({ batchSize: 100 }) },
        { name: 'subjects', run: async () => subjects.rewrap() },
      ],
    });
    const rotated = new Promise<void>((resolve) => {
      rotation.onEvent((e) => {
        if (e.event === 'rotated') resolve();
      });
    });
    clock.tickSync(30 * 86_400_000); // due: the rotation starts (saving, auditing, rewrapping run on)
    await rotated;
    expect(rotation.snapshot().counters.rotations).toBe(1);
    const newId = ring.currentKeyId;
    expect(newId).toMatch(/^k-\d+$/);
    expect(readFileSync(file, 'utf8').startsWith(`${newId}:`)).toBe(true);
    ring.remove('k1'); // everything was re-wrapped: the old key can go
    const all = await log.list({ payloads: true, limit: 100 });
    expect(all.filter((e) => e.action === 'x').every((e) => e.payloadState === 'present')).toBe(true);
    const rot = all.find((e) => e.action === 'keyring.rotate')!;
    expect(rot.payload).toEqual({ from: 'k1', to: newId });
    expect(JSON.stringify(all)).not.toContain(readFileSync(file, 'utf8').split(':')[1]!.trim());
    expect((await log.verify()).ok).toBe(true);
    rotation.stop();
    await log.close();
  });
});
