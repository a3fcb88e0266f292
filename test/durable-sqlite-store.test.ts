/**
 * The QueueStore contract on the SQLite store (a temp file, so WAL and group commit are exercised),
 * plus SQLite-specific checks.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BulwarkDurableError } from '../src/durable/errors.js';
import { sqliteStore } from '../src/durable/sqlite-store.js';
import { describeStoreContract } from './support/store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-sqlite-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreContract('sqlite (file, FULL)', () => sqliteStore({ path: join(dir, 'contract.db') }));
describeStoreContract('sqlite (:memory:, NORMAL)', () =>
  sqliteStore({ path: ':memory:', synchronous: 'NORMAL' }),
);

describe('sqliteStore specifics', () => {
  it('refuses a caller transaction with TX_UNSUPPORTED', async () => {
    const store = sqliteStore({ path: ':memory:' });
    await store.init();
    const item = {
      id: 'a',
      payload: new Uint8Array(1),
      keyId: null,
      key: null,
      priority: 0,
      runAt: 0,
      maxAttempts: 1,
      createdAt: 0,
    };
    await expect(store.enqueue('q', [item], 0, {})).rejects.toSatisfy(
      (e: unknown) => e instanceof BulwarkDurableError && e.code === 'TX_UNSUPPORTED',
    );
    await store.close();
    await expect(store.stats('q', 0)).rejects.toSatisfy(
      (e: unknown) => e instanceof BulwarkDurableError && e.code === 'CLOSED',
    );
  });

  it('validates its options with messages naming the field', () => {
    expect(() => sqliteStore({ path: '' })).toThrow(/sqliteStore\.path/);
    expect(() => sqliteStore({ path: 'x', table: 'bad name' })).toThrow(/sqliteStore\.table/);
  });

  it('a failing operation in a group fails alone', async () => {
    const store = sqliteStore({ path: ':memory:' });
    await store.init();
    const mk = (id: string) => ({
      id,
      payload: new Uint8Array(1),
      keyId: null,
      key: null,
      priority: 0,
      runAt: 0,
      maxAttempts: 1,
      createdAt: 0,
    });
    await store.enqueue('q', [mk('a')], 0);
    const results = await Promise.allSettled([
      store.enqueue('q', [mk('b')], 0),
      store.enqueue('q', [mk('c'), mk('a')], 0), // duplicate primary key: fails as a whole
      store.enqueue('q', [mk('d')], 0),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await store.get('q', 'c')).toBeUndefined();
    expect((await store.stats('q', 0)).pending).toBe(3);
    await store.close();
  });
});
