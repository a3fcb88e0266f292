import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RecordStore, sqliteRecords } from './idempotency-records.js';

const dirs: string[] = [];
const stores: RecordStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(): Promise<RecordStore> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-records-'));
  dirs.push(dir);
  const s = await sqliteRecords(dir);
  stores.push(s);
  return s;
}

const settled = {
  fingerprint: 'fp',
  status: null,
  headers: null,
  body: null,
  expires: 10_000,
} as const;

describe('idempotency records (SQLite)', () => {
  it('a claim is taken once; the holder is returned to the others until it expires', async () => {
    const r = await open();
    expect(await r.claim('s', 'fp', 'op-1', 1_000, 0)).toBe(null);
    expect(await r.claim('s', 'fp', 'op-2', 1_000, 10)).toMatchObject({ state: 'inflight', opId: 'op-1' });
    // A crashed holder's claim expires: the next request takes it.
    expect(await r.claim('s', 'fp', 'op-3', 3_000, 2_000)).toBe(null);
    expect(await r.byOp('op-3')).toMatchObject({ state: 'inflight' });
  });

  // Deliberate repetition: each case claims then settles in the same steps; the values differ
  // in what they test (a tabled helper would hide the order of the calls, which is the point).
  it('a pending write never overwrites a delivery made meanwhile (guarded settle)', async () => {
    const r = await open();
    await r.claim('s', 'fp', 'req-1', 1_000, 0);
    await r.settle({
      ...settled,
      scope: 's',
      state: 'delivered',
      opId: 'job-1',
      status: 201,
      body: Buffer.from('x'),
    });
    await r.settle({ ...settled, scope: 's', state: 'pending', opId: 'job-1', overInflightOnly: true });
    const row = await r.byOp('job-1');
    expect(row).toMatchObject({ state: 'delivered', status: 201, fingerprint: 'fp' });
    expect(row?.body?.toString()).toBe('x');
  });

  it('an empty fingerprint keeps the stored one; release drops only an in-flight claim', async () => {
    const r = await open();
    await r.claim('s', 'fp-a', 'req-1', 1_000, 0);
    await r.settle({
      ...settled,
      scope: 's',
      fingerprint: '',
      state: 'pending',
      opId: 'job-1',
      headers: { a: 'b' },
    });
    expect(await r.byOp('job-1')).toMatchObject({
      fingerprint: 'fp-a',
      state: 'pending',
      headers: { a: 'b' },
    });
    await r.release('s');
    expect(await r.byOp('job-1')).toBeDefined();
    await r.claim('t', 'fp', 'req-2', 1_000, 0);
    await r.release('t');
    expect(await r.byOp('req-2')).toBeUndefined();
    await r.purge(20_000);
    expect(await r.byOp('job-1')).toBeUndefined();
  });
});
