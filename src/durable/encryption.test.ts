import { createCipheriv, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { flushMicrotasks } from '../testing/fake-clock.js';
import { defaultCodec } from './codec.js';
import { keyring, keyringFromEnv, openPayload, sealPayload } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import { openQueue, type Queue } from './queue.js';
import { type SqliteStore, sqliteStore } from './sqlite-store.js';

async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await flushMicrotasks();
  }
  throw new Error('condition not met');
}

const queues: Queue<unknown>[] = [];
afterEach(async () => {
  for (const q of queues.splice(0)) await q.close({ graceMs: 0 });
});

async function setup(ringKeys: { id: string; key: Uint8Array }[] = [{ id: 'k1', key: randomBytes(32) }]) {
  const ring = keyring(ringKeys);
  const store = sqliteStore({ path: ':memory:' });
  const q = await openQueue<unknown>({ name: 'secure', store, keyring: ring, maxAttempts: 3 });
  queues.push(q);
  return { ring, store, q };
}

/** Runs a worker until the item is settled; returns what the handler saw. */
async function drain(q: Queue<unknown>, expected: number): Promise<{ seen: unknown[]; dead: number }> {
  const seen: unknown[] = [];
  const w = q.work(
    async (job) => {
      seen.push(job.payload);
    },
    { concurrency: 4 },
  );
  await until(() => w.stats.completed + w.stats.dead >= expected);
  await w.stop();
  return { seen, dead: w.stats.dead };
}

describe('encryption at rest', () => {
  it('stores ciphertext only; workers see the plaintext', async () => {
    const { store, q } = await setup();
    const secret = 'card 4111-1111-1111-1111';
    const { id } = await q.enqueue({ secret });
    const raw = await store.get('secure', id);
    expect(raw!.keyId).toBe('k1');
    expect(Buffer.from(raw!.payload).toString('latin1')).not.toContain('4111');
    const { seen } = await drain(q, 1);
    expect(seen).toEqual([{ secret }]);
  });

  async function tamperedGoesToDlq(
    mutate: (store: SqliteStore, id: string, raw: Uint8Array) => Promise<void>,
    ringKeys?: { id: string; key: Uint8Array }[],
  ): Promise<void> {
    const { store, q } = await setup(ringKeys);
    const { id } = await q.enqueue({ amount: 10 });
    const raw = (await store.get('secure', id))!;
    await mutate(store, id, Uint8Array.from(raw.payload));
    const { seen, dead } = await drain(q, 1);
    expect(seen).toEqual([]);
    expect(dead).toBe(1);
    const [letter] = await q.deadLetters.list();
    expect(letter!.id).toBe(id);
    expect(letter!.deadReason).toBe('DECRYPT_FAILED');
    expect(letter!.error).toMatchObject({ code: 'DECRYPT_FAILED' });
    expect(letter!.payload).toBeUndefined();
    expect(letter!.payloadError).toMatch(/could not be decrypted|not in the keyring|differs/);
  }

  it('a flipped ciphertext byte is detected → DECRYPT_FAILED dead letter (never dropped)', async () => {
    await tamperedGoesToDlq(async (store, id, raw) => {
      raw[raw.length - 1]! ^= 0x01;
      expect(await store.replacePayload('secure', id, 'k1', raw, 'k1')).toBe(true);
    });
  });

  it('a flipped wrapped-key or tag byte is detected', async () => {
    await tamperedGoesToDlq(async (store, id, raw) => {
      raw[2 + 2 + 20]! ^= 0x80; // inside the wrapped data key (kid "k1" is 2 bytes)
      await store.replacePayload('secure', id, 'k1', raw, 'k1');
    });
  });

  it('a swapped key id (column or envelope) is detected', async () => {
    const keys = [
      { id: 'k1', key: randomBytes(32) },
      { id: 'k2', key: randomBytes(32) },
    ];
    // Column says k2, envelope says k1.
    await tamperedGoesToDlq(async (store, id, raw) => {
      await store.replacePayload('secure', id, 'k1', raw, 'k2');
    }, keys);
    // Both say k2 (header rewritten): the data key was wrapped by k1 with k1 in its AAD.
    await tamperedGoesToDlq(async (store, id, raw) => {
      raw[3] = '2'.charCodeAt(0);
      await store.replacePayload('secure', id, 'k1', raw, 'k2');
    }, keys);
  });

  it('AAD binds the item id and the queue: a payload copied to another item or queue fails', async () => {
    const { store, q, ring } = await setup();
    const a = await q.enqueue({ to: 'alice' });
    const b = await q.enqueue({ to: 'bob' });
    const rawA = (await store.get('secure', a.id))!.payload;
    await store.replacePayload('secure', b.id, 'k1', Uint8Array.from(rawA), 'k1');
    const { seen, dead } = await drain(q, 2);
    expect(seen).toEqual([{ to: 'alice' }]);
    expect(dead).toBe(1);
    expect((await q.get(b.id))!.deadReason).toBe('DECRYPT_FAILED');

    // Another queue on the same store and keyring.
    const other = await openQueue<unknown>({ name: 'other', store, keyring: ring });
    queues.push(other);
    const c = await other.enqueue({ to: 'carol' });
    const d = await q.enqueue({ to: 'dave' });
    const rawD = (await store.get('secure', d.id))!.payload;
    await store.replacePayload('other', c.id, 'k1', Uint8Array.from(rawD), 'k1');
    expect((await other.get(c.id))!.payloadError).toMatch(/could not be decrypted/);
  });

  it('an unknown key id or a missing keyring → DECRYPT_FAILED', async () => {
    const { store, q } = await setup();
    const { id } = await q.enqueue('x');
    const plain = await openQueue<unknown>({ name: 'secure', store });
    queues.push(plain);
    expect((await plain.get(id))!.payloadError).toMatch(/no keyring/);
    const otherRing = await openQueue<unknown>({
      name: 'secure',
      store,
      keyring: keyring([{ id: 'k9', key: randomBytes(32) }]),
    });
    queues.push(otherRing);
    expect((await otherRing.get(id))!.payloadError).toMatch(/"k1", which is not in the keyring/);
  });

  it('rotation + resumable rewrap: every item (any state) is readable with only the new key', async () => {
    const { ring, store, q } = await setup();
    const payloads = Array.from({ length: 25 }, (_, i) => ({ i, secret: `s${i}` }));
    for (const p of payloads) await q.enqueue(p);
    // Some complete, some die, the rest stay pending.
    const claimed = await store.claim('secure', 6, 60_000, Date.now());
    for (const c of claimed.slice(0, 3)) await store.complete('secure', [c], Date.now());
    for (const c of claimed.slice(3))
      await store.fail('secure', c, { kind: 'dead', reason: 'x', error: '{}' }, Date.now());

    ring.add('k2', randomBytes(32).toString('base64'), { current: true });
    const fresh = await q.enqueue({ i: 99, secret: 'new' });
    expect((await store.get('secure', fresh.id))!.keyId).toBe('k2');

    let progress = await q.rewrap({ batchSize: 10, maxBatches: 1 });
    expect(progress).toMatchObject({ rewrapped: 10, failed: 0, done: false });
    const calls = [progress];
    while (!progress.done) {
      progress = await q.rewrap({ batchSize: 10, maxBatches: 1, cursor: progress.cursor });
      calls.push(progress);
    }
    expect(calls.reduce((n, p) => n + p.rewrapped, 0)).toBe(25);
    expect(await store.listForRewrap('secure', 'k2', null, 100)).toEqual([]);

    ring.remove('k1');
    expect(ring.ids()).toEqual(['k2']);
    const all = await q.list({ limit: 100 });
    expect(all).toHaveLength(26);
    for (const item of all) {
      expect(item.payloadError).toBeUndefined();
      expect(item.keyId).toBe('k2');
    }
    expect(all.map((i) => (i.payload as { i: number }).i).sort((a, b) => a - b)).toEqual([
      ...payloads.map((p) => p.i),
      99,
    ]);
  });

  it('key material never shows in toString, inspect, JSON, console output or error messages', () => {
    const material = randomBytes(32);
    const b64 = material.toString('base64');
    const hex = material.toString('hex');
    const ring = keyring([{ id: 'prod-2026', key: b64 }]);
    const shown = [
      String(ring),
      `${ring}`,
      inspect(ring),
      inspect(ring, { showHidden: true, depth: 10 }),
      JSON.stringify(ring),
      JSON.stringify({ nested: { ring } }),
      inspect({ ring }, { depth: 10 }),
      Object.keys(ring).join(','),
    ];
    for (const s of shown) {
      expect(s).not.toContain(b64);
      expect(s).not.toContain(hex);
      expect(s).not.toContain(b64.slice(0, 12));
    }
    expect(String(ring)).toBe('Keyring(current=prod-2026, keys=prod-2026)');
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ current: 'prod-2026', keys: ['prod-2026'] });

    // Errors name the variable/id, never the material.
    const short = randomBytes(16).toString('base64');
    for (const bad of [`k1:${short}`, `${short}`, `k1:${b64},k1:${randomBytes(32).toString('base64')}`]) {
      try {
        keyringFromEnv('BULWARK_KEYS', { BULWARK_KEYS: bad });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(BulwarkDurableError);
        const text = `${(error as Error).message} ${inspect(error)}`;
        expect(text).not.toContain(short);
        expect(text).not.toContain(b64);
      }
    }
  });

  it('a key pasted in the id position (or any rejected id) is never echoed; only position and length', () => {
    for (let i = 0; i < 20; i++) {
      const b64 = randomBytes(32).toString('base64');
      const unpadded = b64.replace(/=+$/, '');
      const cases: [string, () => unknown][] = [
        ['env swapped', () => keyringFromEnv('K', { K: `${b64}:k1` })],
        ['env swapped, unpadded', () => keyringFromEnv('K', { K: `${unpadded}:k1` })],
        [
          'env second entry swapped',
          () => keyringFromEnv('K', { K: `k0:${randomBytes(32).toString('base64')},${b64}:k1` }),
        ],
        ['keyring swapped', () => keyring([{ id: b64, key: 'k1' }])],
        ['keyring swapped, unpadded', () => keyring([{ id: unpadded, key: 'k1' }])],
        ['add swapped', () => keyring([{ id: 'k0', key: randomBytes(32) }]).add(unpadded, 'k1')],
      ];
      for (const [what, run] of cases) {
        let message = '';
        try {
          run();
        } catch (error) {
          expect(error, what).toBeInstanceOf(BulwarkDurableError);
          message = `${(error as Error).message} ${inspect(error)}`;
        }
        expect(message, what).not.toBe('');
        expect(message, what).not.toContain(unpadded.slice(0, 16));
      }
    }
    try {
      keyringFromEnv('K', {
        K: `k0:${randomBytes(32).toString('base64')},${randomBytes(32).toString('base64')}:k1`,
      });
    } catch (error) {
      expect((error as Error).message).toMatch(/entry 2 \(\d+ characters\)/);
    }
  });

  it('AAD fields are length-prefixed: names that would join alike under NUL separators do not collide', () => {
    const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
    const id = '0190f3a2-0000-7000-8000-000000000001';
    const sealed = sealPayload(ring, 'a\0b', id, Buffer.from('x'));
    expect(sealed.bytes[0]).toBe(2);
    expect(Buffer.from(openPayload(ring, 'a\0b', id, 'k1', sealed.bytes)).toString()).toBe('x');
    expect(() => openPayload(ring, 'a', `b\0${id}`, 'k1', sealed.bytes)).toThrow(BulwarkDurableError);
  });

  it('version-1 envelopes (NUL-joined AAD) still decrypt, and rewrap keeps their version', async () => {
    const kek = randomBytes(32);
    const ring = keyring([{ id: 'old', key: kek }]);
    const store = sqliteStore({ path: ':memory:' });
    const q = await openQueue({ name: 'v1', store, keyring: ring });
    queues.push(q as Queue<unknown>);
    // A v1 envelope as the previous release wrote it.
    const id = '0190f3a2-0000-7000-8000-000000000002';
    const header = Buffer.from('bulwark/durable/v1', 'utf8');
    const dek = randomBytes(32);
    const wrapIv = randomBytes(12);
    const w = createCipheriv('aes-256-gcm', kek, wrapIv, { authTagLength: 16 });
    w.setAAD(Buffer.concat([header, Buffer.from(`\0dek\0v1\0${id}\0old`, 'utf8')]));
    const edk = Buffer.concat([w.update(dek), w.final()]);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', dek, iv, { authTagLength: 16 });
    c.setAAD(Buffer.concat([header, Buffer.from(`\0payload\0v1\0${id}`, 'utf8')]));
    const ct = Buffer.concat([c.update(defaultCodec.encode({ legacy: true })), c.final()]);
    const envelope = Buffer.concat([
      Buffer.from([1, 3]),
      Buffer.from('old'),
      wrapIv,
      w.getAuthTag(),
      edk,
      iv,
      c.getAuthTag(),
      ct,
    ]);
    await store.enqueue(
      'v1',
      [
        {
          id,
          payload: envelope,
          keyId: 'old',
          key: null,
          priority: 0,
          runAt: 0,
          maxAttempts: 3,
          createdAt: 0,
        },
      ],
      0,
    );
    const before = await q.get(id);
    expect(before!.payloadError).toBeUndefined();
    expect(before!.payload).toEqual({ legacy: true });
    ring.add('new', randomBytes(32), { current: true });
    expect(await q.rewrap()).toMatchObject({ rewrapped: 1, failed: 0, done: true });
    ring.remove('old');
    const after = (await store.get('v1', id))!;
    expect(after.keyId).toBe('new');
    expect(after.payload[0]).toBe(1);
    expect((await q.get(id))!.payload).toEqual({ legacy: true });
  });

  it('keys must be canonical base64 of exactly 32 bytes', () => {
    const b64 = randomBytes(32).toString('base64');
    // Buffer.from would silently drop the stray character: refused.
    expect(() => keyringFromEnv('K', { K: `k1:${b64}x` })).toThrow(/not canonical base64/);
    expect(() => keyringFromEnv('K', { K: `k1:${b64.slice(0, 20)}!!${b64.slice(20)}` })).toThrow(
      /not canonical base64/,
    );
    expect(() => keyring([{ id: 'k1', key: `${b64}x` }])).toThrow(/keys\[0\].*not canonical base64/);
    expect(() => keyring([{ id: 'k1', key: randomBytes(16).toString('base64') }])).toThrow(
      /must be 32 bytes.*got 16 bytes/,
    );
    expect(() => keyring([{ id: 'k1', key: randomBytes(31) }])).toThrow(/must be 32 bytes.*got 31 bytes/);
    expect(() => keyringFromEnv('K', { K: `k1:${b64},k1:${b64}` })).toThrow(
      /entry 2 .*repeats the id of entry 1/,
    );
    // Surrounding whitespace is fine.
    expect(keyring([{ id: 'k1', key: ` ${b64} ` }]).currentKeyId).toBe('k1');
    expect(keyringFromEnv('K', { K: ` k1:${b64} ` }).currentKeyId).toBe('k1');
  });

  it('keyringFromEnv: id:base64 pairs, the first is current', () => {
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('base64');
    const ring = keyringFromEnv('KEYS', { KEYS: ` new:${k2} , old:${k1}` });
    expect(ring.currentKeyId).toBe('new');
    expect(ring.ids()).toEqual(['new', 'old']);
    expect(() => keyringFromEnv('KEYS', {})).toThrow(/KEYS is not set/);
    expect(() => ring.remove('new')).toThrow(/current/);
  });
});
