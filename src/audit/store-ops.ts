/**
 * Multi-step operations over an audit store that stream through it page by page: subtree
 * hashes for proofs, purges that honour legal holds, and payload re-wrapping.
 * @module
 */

import type { PayloadProtector, PayloadScope } from '../keyring/protector.js';
import type { AuditEntry, StoredPayload } from './entry.js';
import { BulwarkAuditError } from './errors.js';
import { type LeafRange, MerkleAccumulator } from './merkle.js';
import { isHeld } from './retention.js';
import type { AuditFilter, AuditStore } from './store.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Hashes of the given leaf ranges and the tree heads at `sizes`, in one pass over entries 1..max. */
export async function hashRanges(
  store: AuditStore,
  ranges: readonly LeafRange[],
  sizes: readonly number[],
): Promise<{ hashes: string[]; roots: string[] }> {
  const end = Math.max(...sizes);
  const order = ranges.map((r, i) => ({ r, i })).sort((a, b) => a.r[0] - b.r[0]);
  const hashes: string[] = new Array<string>(ranges.length).fill('');
  const roots: string[] = sizes.map(() => '');
  const all = new MerkleAccumulator();
  let k = 0;
  let cur: MerkleAccumulator | undefined;
  for await (const page of store.scan(1, end, 5000)) {
    for (const e of page) {
      const idx = e.seq - 1;
      const leaf = Buffer.from(e.hash, 'hex');
      const slot = order[k];
      if (slot !== undefined && idx >= slot.r[0] && idx < slot.r[1]) {
        cur ??= new MerkleAccumulator();
        cur.push(leaf);
        if (idx === slot.r[1] - 1) {
          hashes[slot.i] = hex(cur.root());
          cur = undefined;
          k++;
        }
      }
      all.push(leaf);
      for (const [j, n] of sizes.entries()) if (all.size === n) roots[j] = hex(all.root());
    }
  }
  if (all.size < end)
    throw new BulwarkAuditError('NOT_FOUND', `The log has ${all.size} entries, fewer than ${end}`);
  return { hashes, roots };
}

/** Deletes the payloads of entries matching `filter` and `select`, except held ones. */
export async function purgePayloads(
  store: AuditStore,
  filter: AuditFilter,
  select: (e: AuditEntry) => boolean,
): Promise<{ purged: number; held: number }> {
  const holds = await store.holds();
  let purged = 0;
  let held = 0;
  let afterSeq = 0;
  for (;;) {
    const page = await store.list({ ...filter, hasPayload: true, afterSeq, limit: 1000 });
    if (page.length === 0) break;
    afterSeq = page[page.length - 1]!.seq;
    const chosen = page.filter(select);
    const free = chosen.filter((e) => !isHeld(holds, e));
    held += chosen.length - free.length;
    purged += await store.deletePayloads(free.map((e) => e.seq));
  }
  return { purged, held };
}

/** Re-wraps one batch of payloads after `cursor` (compare-and-set on the key id, so concurrent work is safe). */
export async function rewrapBatch(
  store: AuditStore,
  enc: PayloadProtector,
  scopeOf: (e: AuditEntry) => PayloadScope,
  cursor: number,
  batchSize: number,
): Promise<{ rewrapped: number; failed: number; cursor: number; done: boolean }> {
  const rows = await store.scanPayloads(cursor, batchSize);
  if (rows.length === 0) return { rewrapped: 0, failed: 0, cursor, done: true };
  const entries = new Map(
    (
      await store.list({
        afterSeq: rows[0]!.seq - 1,
        beforeSeq: rows[rows.length - 1]!.seq + 1,
        limit: 10_000,
      })
    ).map((e) => [e.seq, e]),
  );
  let failed = 0;
  const changes: { row: StoredPayload; expectKeyId: string | null }[] = [];
  for (const p of rows) {
    const e = entries.get(p.seq);
    if (p.keyId === null || e === undefined) continue;
    try {
      const next = await enc.rewrap(scopeOf(e), p.keyId, p.body);
      if (next !== null)
        changes.push({ row: { ...p, body: next.bytes, keyId: next.keyId }, expectKeyId: p.keyId });
    } catch {
      failed++;
    }
  }
  const rewrapped = await store.replacePayloads(changes);
  return { rewrapped, failed, cursor: rows[rows.length - 1]!.seq, done: rows.length < batchSize };
}
