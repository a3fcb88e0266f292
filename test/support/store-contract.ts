/**
 * The rules every `QueueStore` keeps (src/durable/store.ts), as a reusable suite: run it for each
 * backend with `describeStoreContract('sqlite', () => sqliteStore({ path }))`. It is store-neutral:
 * it only uses the `QueueStore` interface, a fresh queue name per test and explicit `now` values,
 * so the same store can be shared by every test of the suite.
 */

import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulwarkDurableError } from '../../src/durable/errors.js';
import type { ClaimedItem, ItemState, NewItem, QueueStore } from '../../src/durable/store.js';

const T0 = 1_800_000_000_000;

let seq = 0;
/** Ids sort in creation order (as the queue's UUIDv7 ids do). */
function nextId(): string {
  seq++;
  return `${T0.toString(16)}-${seq.toString().padStart(8, '0')}-${randomBytes(3).toString('hex')}`;
}

function item(overrides: Partial<NewItem> = {}): NewItem {
  return {
    id: nextId(),
    payload: new Uint8Array([1, 2, 3]),
    keyId: null,
    key: null,
    priority: 0,
    runAt: T0,
    maxAttempts: 3,
    createdAt: T0,
    ...overrides,
  };
}

function queueName(): string {
  return `contract_${randomBytes(5).toString('hex')}`;
}

/** Options of `describeStoreContract`. */
export interface StoreContractOptions {
  /** Skip the whole suite (e.g. no server reachable and not on CI). */
  readonly skip?: boolean;
  /** Called after the suite with the store (before close), e.g. to drop a schema. */
  readonly cleanup?: (store: QueueStore) => Promise<void>;
}

/**
 * Registers the store contract tests for a backend. `makeStore` is called once; the store is
 * initialised, shared by every test (each uses its own queue) and closed at the end.
 */
export function describeStoreContract(
  name: string,
  makeStore: () => QueueStore | Promise<QueueStore>,
  options: StoreContractOptions = {},
): void {
  (options.skip === true ? describe.skip : describe)(`QueueStore contract: ${name}`, () => {
    let store: QueueStore;
    beforeAll(async () => {
      store = await makeStore();
      await store.init();
      await store.init(); // idempotent
    });
    afterAll(async () => {
      if (store === undefined) return;
      await options.cleanup?.(store);
      await store.close();
    });

    it('has a description without secrets', () => {
      expect(typeof store.description).toBe('string');
      expect(store.description).not.toMatch(/password|:[^/@:]+@/i);
    });

    it('enqueues, gets and lists items with every field kept', async () => {
      const q = queueName();
      const a = item({ key: 'k-a', priority: 5, maxAttempts: 7, payload: new Uint8Array([0, 255, 7]) });
      const b = item({ keyId: 'key-1', runAt: T0 + 1000 });
      const out = await store.enqueue(q, [a, b], T0);
      expect(out).toEqual([
        { id: a.id, duplicate: false },
        { id: b.id, duplicate: false },
      ]);
      const got = await store.get(q, a.id);
      expect(got).toBeDefined();
      expect(got!.id).toBe(a.id);
      expect(got!.queue).toBe(q);
      expect(Array.from(got!.payload)).toEqual([0, 255, 7]);
      expect(got!.key).toBe('k-a');
      expect(got!.keyId).toBeNull();
      expect(got!.priority).toBe(5);
      expect(got!.maxAttempts).toBe(7);
      expect(got!.attempts).toBe(0);
      expect(got!.state).toBe('pending');
      expect(got!.createdAt).toBe(T0);
      expect(got!.runAt).toBe(T0);
      expect(got!.lastError).toBeNull();
      expect(got!.deadReason).toBeNull();
      expect(got!.redrives).toBe(0);
      expect(got!.lastRedriveAt).toBeNull();
      expect((await store.get(q, b.id))!.keyId).toBe('key-1');
      expect(await store.get(q, 'nope')).toBeUndefined();
      // Queues are separate.
      expect(await store.get(queueName(), a.id)).toBeUndefined();
      const listed = await store.list(q, {});
      expect(listed.map((i) => i.id)).toEqual([a.id, b.id]);
      expect((await store.list(q, { limit: 1 })).map((i) => i.id)).toEqual([a.id]);
      expect((await store.list(q, { after: a.id })).map((i) => i.id)).toEqual([b.id]);
      expect((await store.list(q, { state: 'active' })).length).toBe(0);
    });

    it('idempotency keys: duplicates return the existing id, within a batch and across calls', async () => {
      const q = queueName();
      const a = item({ key: 'order-42' });
      const a2 = item({ key: 'order-42' });
      expect(await store.enqueue(q, [a, a2], T0)).toEqual([
        { id: a.id, duplicate: false },
        { id: a.id, duplicate: true },
      ]);
      const a3 = item({ key: 'order-42' });
      expect(await store.enqueue(q, [a3], T0)).toEqual([{ id: a.id, duplicate: true }]);
      expect(await store.get(q, a3.id)).toBeUndefined();
      // Concurrent calls (a store may group them into one transaction).
      const many = Array.from({ length: 20 }, () => item({ key: 'same' }));
      const outs = await Promise.all(many.map((m) => store.enqueue(q, [m], T0)));
      const winners = outs.filter((o) => !o[0]!.duplicate);
      expect(winners.length).toBe(1);
      for (const o of outs) expect(o[0]!.id).toBe(winners[0]![0]!.id);
      // The same key in another queue is independent.
      const other = item({ key: 'order-42' });
      expect(await store.enqueue(queueName(), [other], T0)).toEqual([{ id: other.id, duplicate: false }]);
      expect((await store.stats(q, T0)).pending).toBe(2);
    });

    it('keys stay reserved while active, dead and completed, and are released by sweep after keyTtlMs', async () => {
      const q = queueName();
      const a = item({ key: 'k' });
      await store.enqueue(q, [a], T0);
      const [c] = await store.claim(q, 1, 1000, T0);
      expect(c!.id).toBe(a.id);
      expect((await store.enqueue(q, [item({ key: 'k' })], T0))[0]).toEqual({ id: a.id, duplicate: true });
      expect(await store.complete(q, [{ id: a.id, leaseToken: c!.leaseToken }], T0 + 10)).toEqual([true]);
      expect((await store.enqueue(q, [item({ key: 'k' })], T0 + 20))[0]).toEqual({
        id: a.id,
        duplicate: true,
      });
      // Within the window: sweep keeps the key.
      const sweep = { completedMs: 10_000_000, deadMs: 20_000_000, keyTtlMs: 1000, limit: 100 };
      await store.sweep(q, sweep, T0 + 500);
      expect((await store.enqueue(q, [item({ key: 'k' })], T0 + 500))[0]).toEqual({
        id: a.id,
        duplicate: true,
      });
      // After the window: the key is free again; the completed item itself is kept.
      await store.sweep(q, sweep, T0 + 2000);
      const fresh = item({ key: 'k' });
      expect((await store.enqueue(q, [fresh], T0 + 2000))[0]).toEqual({ id: fresh.id, duplicate: false });
      expect((await store.get(q, a.id))!.state).toBe('completed');
      // Dead items keep their key.
      const d = item({ key: 'dead-key' });
      await store.enqueue(q, [d], T0);
      const both = await store.claim(q, 5, 1000, T0 + 3000);
      expect(both.map((x) => x.id).sort()).toEqual([fresh.id, d.id].sort());
      const cd2 = both.find((x) => x.id === d.id);
      await store.fail(q, cd2!, { kind: 'dead', reason: 'non-retryable', error: '{}' }, T0 + 3001);
      await store.sweep(q, sweep, T0 + 9_000_000);
      expect((await store.enqueue(q, [item({ key: 'dead-key' })], T0))[0]).toEqual({
        id: d.id,
        duplicate: true,
      });
    });

    it('claims in priority order (desc), then runAt, then id; never claims delayed items early', async () => {
      const q = queueName();
      const low = item({ priority: 0 });
      const high = item({ priority: 10 });
      const mid1 = item({ priority: 5, runAt: T0 - 10 });
      const mid0 = item({ priority: 5, runAt: T0 - 20 });
      const midSameTime = item({ priority: 5, runAt: T0 - 10 });
      const delayed = item({ priority: 100, runAt: T0 + 5000 });
      await store.enqueue(q, [low, high, mid1, mid0, midSameTime, delayed], T0 - 100);
      const claimed = await store.claim(q, 10, 100_000, T0);
      expect(claimed.map((c) => c.id)).toEqual([high.id, mid0.id, mid1.id, midSameTime.id, low.id]);
      for (const c of claimed) {
        expect(c.state).toBe('active');
        expect(c.attempts).toBe(1);
        expect(c.leaseUntil).toBe(T0 + 100_000);
        expect(typeof c.leaseToken).toBe('string');
        expect(c.leaseToken.length).toBeGreaterThan(0);
      }
      expect(new Set(claimed.map((c) => c.leaseToken)).size).toBe(claimed.length);
      expect(await store.claim(q, 10, 1000, T0 + 4999)).toEqual([]);
      const later = await store.claim(q, 10, 1000, T0 + 5000);
      expect(later.map((c) => c.id)).toEqual([delayed.id]);
      const stats = await store.stats(q, T0 + 5000);
      expect(stats.active).toBe(6);
      expect(stats.pending).toBe(0);
    });

    it('claim respects its limit and never hands one item to two claimers', async () => {
      const q = queueName();
      const items = Array.from({ length: 30 }, () => item());
      await store.enqueue(q, items, T0);
      const batches = await Promise.all(Array.from({ length: 6 }, () => store.claim(q, 4, 1000, T0)));
      const ids = batches.flat().map((c) => c.id);
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(4);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(24);
      expect((await store.claim(q, 100, 1000, T0)).length).toBe(6);
    });

    it('fencing: complete, fail and extend need the current, unexpired lease', async () => {
      const q = queueName();
      const a = item();
      await store.enqueue(q, [a], T0);
      const [first] = await store.claim(q, 1, 1000, T0);
      // Extend within the lease.
      expect(await store.extend(q, first!, 1000, T0 + 500)).toBe(true);
      expect((await store.claim(q, 1, 1000, T0 + 1200)).length).toBe(0); // lease now ends at T0+1500
      // Expired but not yet re-claimed: refused.
      expect(await store.extend(q, first!, 1000, T0 + 1500)).toBe(false);
      expect(await store.complete(q, [first!], T0 + 1600)).toEqual([false]);
      // Wrong token: refused.
      expect(await store.complete(q, [{ id: a.id, leaseToken: 'forged' }], T0 + 10)).toEqual([false]);
      // Re-claimed by another worker: the old token stays refused.
      const [second] = await store.claim(q, 1, 1000, T0 + 1600);
      expect(second!.id).toBe(a.id);
      expect(second!.attempts).toBe(2);
      expect(second!.leaseToken).not.toBe(first!.leaseToken);
      expect(await store.complete(q, [first!], T0 + 1700)).toEqual([false]);
      expect(await store.fail(q, first!, { kind: 'retry', runAt: T0, error: '{}' }, T0 + 1700)).toBe(false);
      expect(await store.extend(q, first!, 1000, T0 + 1700)).toBe(false);
      expect((await store.get(q, a.id))!.state).toBe('active');
      // The current holder completes once; a second completion is refused.
      expect(await store.complete(q, [second!, first!], T0 + 1800)).toEqual([true, false]);
      expect(await store.complete(q, [second!], T0 + 1801)).toEqual([false]);
      expect(await store.fail(q, second!, { kind: 'dead', reason: 'x', error: '{}' }, T0 + 1802)).toBe(false);
      const done = await store.get(q, a.id);
      expect(done!.state).toBe('completed');
      expect(done!.updatedAt).toBe(T0 + 1800);
      const stats = await store.stats(q, T0 + 2000);
      expect(stats.completed).toBe(1);
      expect(stats.active).toBe(0);
    });

    it('expired leases return to pending (attempt stays counted), by claim and by reclaimExpired', async () => {
      const q = queueName();
      const a = item();
      const b = item();
      await store.enqueue(q, [a, b], T0);
      const claimed = await store.claim(q, 2, 1000, T0);
      expect(claimed.length).toBe(2);
      expect(await store.reclaimExpired(q, T0 + 999)).toBe(0);
      expect(await store.reclaimExpired(q, T0 + 1000)).toBe(2);
      const back = await store.get(q, a.id);
      expect(back!.state).toBe('pending');
      expect(back!.attempts).toBe(1);
      expect((await store.stats(q, T0 + 1000)).pending).toBe(2);
      const again = await store.claim(q, 2, 1000, T0 + 1000);
      expect(again.map((c) => c.attempts)).toEqual([2, 2]);
      // claim also reclaims expired leases itself.
      const third = await store.claim(q, 2, 1000, T0 + 2000);
      expect(third.map((c) => c.attempts)).toEqual([3, 3]);
    });

    it('fail retry: back to pending at runAt with the error recorded', async () => {
      const q = queueName();
      const a = item();
      await store.enqueue(q, [a], T0);
      const [c] = await store.claim(q, 1, 1000, T0);
      const error = JSON.stringify({ message: 'boom', code: 'E1' });
      expect(await store.fail(q, c!, { kind: 'retry', runAt: T0 + 500, error }, T0 + 10)).toBe(true);
      const got = await store.get(q, a.id);
      expect(got!.state).toBe('pending');
      expect(got!.runAt).toBe(T0 + 500);
      expect(got!.lastError).toBe(error);
      expect(got!.attempts).toBe(1);
      expect(await store.complete(q, [c!], T0 + 11)).toEqual([false]);
      expect(await store.claim(q, 1, 1000, T0 + 499)).toEqual([]);
      const stats = await store.stats(q, T0 + 100);
      expect(stats.pending).toBe(1);
      expect(stats.delayed).toBe(1);
      expect(stats.oldestPendingAgeMs).toBe(0);
      const [c2] = await store.claim(q, 1, 1000, T0 + 500);
      expect(c2!.attempts).toBe(2);
      expect(c2!.lastError).toBe(error);
    });

    it('dead-lettering records reason and error atomically; redrive resets attempts and records it', async () => {
      const q = queueName();
      const a = item({ maxAttempts: 1 });
      const b = item();
      const c = item();
      await store.enqueue(q, [a, b, c], T0);
      const claimed = await store.claim(q, 3, 1000, T0);
      const error = JSON.stringify({ message: 'bad input', cause: { message: 'inner' } });
      for (const [i, cl] of claimed.entries()) {
        expect(
          await store.fail(
            q,
            cl,
            { kind: 'dead', reason: i === 0 ? 'exhausted' : 'non-retryable', error },
            T0 + 10 + i,
          ),
        ).toBe(true);
      }
      const dead = await store.get(q, a.id);
      expect(dead!.state).toBe('dead');
      expect(dead!.deadReason).toBe('exhausted');
      expect(dead!.lastError).toBe(error);
      expect(dead!.updatedAt).toBe(T0 + 10);
      expect((await store.stats(q, T0 + 20)).dead).toBe(3);
      expect((await store.list(q, { state: 'dead' })).length).toBe(3);
      // Redrive by ids (only dead ones move).
      expect(await store.redrive(q, { ids: [b.id, 'unknown'], limit: 10 }, T0 + 100)).toEqual([b.id]);
      const rb = await store.get(q, b.id);
      expect(rb!.state).toBe('pending');
      expect(rb!.attempts).toBe(0);
      expect(rb!.runAt).toBe(T0 + 100);
      expect(rb!.redrives).toBe(1);
      expect(rb!.lastRedriveAt).toBe(T0 + 100);
      expect(rb!.deadReason).toBe('non-retryable'); // kept: why it last died
      expect(await store.redrive(q, { ids: [b.id], limit: 10 }, T0 + 100)).toEqual([]);
      // Redrive by limit: oldest dead first.
      expect(await store.redrive(q, { limit: 1 }, T0 + 200)).toEqual([a.id]);
      expect(await store.redrive(q, { limit: 10 }, T0 + 200)).toEqual([c.id]);
      expect((await store.stats(q, T0 + 200)).dead).toBe(0);
      const claimedAgain = await store.claim(q, 3, 1000, T0 + 300);
      expect(claimedAgain.length).toBe(3);
      for (const cl of claimedAgain) expect(cl.attempts).toBe(1);
    });

    it('stats: counts by state and the age of the oldest due pending item', async () => {
      const q = queueName();
      expect(await store.stats(q, T0)).toEqual({
        pending: 0,
        delayed: 0,
        active: 0,
        completed: 0,
        dead: 0,
        oldestPendingAgeMs: 0,
      });
      await store.enqueue(
        q,
        [item({ runAt: T0 - 300 }), item({ runAt: T0 - 100 }), item({ runAt: T0 + 100 })],
        T0,
      );
      const s = await store.stats(q, T0);
      expect(s.pending).toBe(3);
      expect(s.delayed).toBe(1);
      expect(s.oldestPendingAgeMs).toBe(300);
    });

    it('sweep removes only old completed and dead items; pending and active never expire', async () => {
      const q = queueName();
      const ancient = T0 - 400 * 24 * 3600 * 1000;
      const comp = item({ runAt: ancient, createdAt: ancient });
      const dead = item({ runAt: ancient, createdAt: ancient });
      const young = item({ runAt: ancient, createdAt: ancient });
      const act = item({ runAt: ancient, createdAt: ancient });
      const pend = item({ runAt: ancient, createdAt: ancient });
      await store.enqueue(q, [comp, dead, young, act], ancient);
      const [cc, cd, cy] = await store.claim(q, 3, 10 * 365 * 24 * 3600 * 1000, ancient);
      await store.complete(q, [cc!], ancient + 1);
      await store.fail(q, cd!, { kind: 'dead', reason: 'exhausted', error: '{}' }, ancient + 1);
      await store.complete(q, [cy!], T0 - 10);
      const [ca] = await store.claim(q, 1, 10 * 365 * 24 * 3600 * 1000, ancient);
      expect(ca!.id).toBe(act.id);
      await store.enqueue(q, [pend], ancient);
      let removed = 0;
      for (let i = 0; i < 10; i++) {
        const n = await store.sweep(q, { completedMs: 1000, deadMs: 2000, keyTtlMs: 1000, limit: 1 }, T0);
        removed += n;
        if (n === 0) break;
      }
      expect(removed).toBeGreaterThanOrEqual(2);
      expect(await store.get(q, comp.id)).toBeUndefined();
      expect(await store.get(q, dead.id)).toBeUndefined();
      expect((await store.get(q, young.id))!.state).toBe('completed');
      expect((await store.get(q, pend.id))!.state).toBe('pending');
      expect((await store.get(q, act.id))!.state).toBe('active');
    });

    it('purge of completed items keeps their keys reserved until sweep finds them older than keyTtlMs', async () => {
      const q = queueName();
      const a = item({ key: 'order-1' });
      const d = item({ key: 'dead-1' });
      await store.enqueue(q, [a, d], T0);
      const claimed = await store.claim(q, 2, 1000, T0);
      const ca = claimed.find((x) => x.id === a.id)!;
      const cd = claimed.find((x) => x.id === d.id)!;
      expect(await store.complete(q, [ca], T0 + 10)).toEqual([true]);
      expect(await store.fail(q, cd, { kind: 'dead', reason: 'non-retryable', error: '{}' }, T0 + 10)).toBe(
        true,
      );
      expect(await store.purge(q, 'completed', {})).toBe(1);
      expect(await store.get(q, a.id)).toBeUndefined();
      // Within keyTtlMs of the completion: still a duplicate of the purged item.
      expect((await store.enqueue(q, [item({ key: 'order-1' })], T0 + 20))[0]).toEqual({
        id: a.id,
        duplicate: true,
      });
      const sweep = { completedMs: 10_000_000, deadMs: 20_000_000, keyTtlMs: 1000, limit: 100 };
      await store.sweep(q, sweep, T0 + 500);
      expect((await store.enqueue(q, [item({ key: 'order-1' })], T0 + 500))[0]).toEqual({
        id: a.id,
        duplicate: true,
      });
      // Purging dead items frees their keys at once.
      expect(await store.purge(q, 'dead', {})).toBe(1);
      const redo = item({ key: 'dead-1' });
      expect((await store.enqueue(q, [redo], T0 + 600))[0]).toEqual({ id: redo.id, duplicate: false });
      // Past keyTtlMs: sweep releases the purged item's key.
      await store.sweep(q, sweep, T0 + 2000);
      const fresh = item({ key: 'order-1' });
      expect((await store.enqueue(q, [fresh], T0 + 2000))[0]).toEqual({ id: fresh.id, duplicate: false });
    });

    it('purge deletes terminal items; pending needs force', async () => {
      const q = queueName();
      const a = item();
      const b = item();
      await store.enqueue(q, [a, b], T0);
      const [ca] = await store.claim(q, 1, 1000, T0);
      await store.complete(q, [ca!], T0 + 5);
      await expect(store.purge(q, 'pending', {})).rejects.toSatisfy(
        (e: unknown) => e instanceof BulwarkDurableError && e.code === 'INVALID_STATE',
      );
      expect(await store.purge(q, 'completed', { olderThan: T0 + 5 })).toBe(0);
      expect(await store.purge(q, 'completed', { olderThan: T0 + 6 })).toBe(1);
      expect(await store.purge(q, 'pending', { force: true })).toBe(1);
      expect((await store.stats(q, T0)).pending).toBe(0);
    });

    it('rewrap: lists encrypted items of other keys in id order, resumable; replacePayload is a CAS', async () => {
      const q = queueName();
      const plain = item();
      const old1 = item({ keyId: 'k1' });
      const cur = item({ keyId: 'k2' });
      const old2 = item({ keyId: 'k1' });
      await store.enqueue(q, [plain, old1, cur, old2], T0);
      // Terminal states are included too.
      const claimed = await store.claim(q, 4, 1000, T0);
      const old2Claim = claimed.find((c) => c.id === old2.id)!;
      await store.complete(q, [old2Claim], T0 + 1);
      const page1 = await store.listForRewrap(q, 'k2', null, 1);
      expect(page1.map((i) => i.id)).toEqual([old1.id]);
      const page2 = await store.listForRewrap(q, 'k2', page1[0]!.id, 10);
      expect(page2.map((i) => i.id)).toEqual([old2.id]);
      expect(await store.listForRewrap(q, 'k2', old2.id, 10)).toEqual([]);
      const np = new Uint8Array([9, 9]);
      expect(await store.replacePayload(q, old1.id, 'k1', np, 'k2')).toBe(true);
      expect(await store.replacePayload(q, old1.id, 'k1', new Uint8Array([1]), 'k3')).toBe(false);
      const got = await store.get(q, old1.id);
      expect(got!.keyId).toBe('k2');
      expect(Array.from(got!.payload)).toEqual([9, 9]);
      // Rewrapping leaves state and lease alone.
      expect(got!.state).toBe('active');
      const c1 = claimed.find((c) => c.id === old1.id)!;
      expect(await store.complete(q, [c1], T0 + 2)).toEqual([true]);
      expect((await store.listForRewrap(q, 'k2', null, 10)).map((i) => i.id)).toEqual([old2.id]);
    });

    it('release (optional): returns unstarted claims to pending without counting the attempt, fenced', async () => {
      if (store.release === undefined) return;
      const q = queueName();
      const a = item();
      const b = item();
      await store.enqueue(q, [a, b], T0);
      const [ca, cb] = await store.claim(q, 2, 1000, T0);
      expect(await store.release(q, [ca!, { id: b.id, leaseToken: 'forged' }], T0 + 1)).toEqual([
        true,
        false,
      ]);
      const ra = await store.get(q, a.id);
      expect(ra!.state).toBe('pending');
      expect(ra!.attempts).toBe(0);
      expect(await store.release(q, [ca!], T0 + 2)).toEqual([false]);
      expect(await store.release(q, [cb!], T0 + 1000)).toEqual([false]); // expired
    });

    it('matches a reference model under random operation sequences (fast-check)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
          await checkAgainstModel(store, ops);
        }),
        { numRuns: 25 },
      );
    });

    it('subscribe returns an unsubscribe function and may signal readiness', async () => {
      const q = queueName();
      let calls = 0;
      const off = await store.subscribe(q, () => {
        calls++;
      });
      await store.enqueue(q, [item()], T0);
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBeGreaterThanOrEqual(0);
      await off();
    });
  });
}

type Op =
  | { kind: 'enqueue'; key: number | null; priority: number; delay: number }
  | { kind: 'claim'; limit: number; leaseMs: number }
  | { kind: 'complete'; pick: number }
  | { kind: 'retry'; pick: number; delay: number }
  | { kind: 'dead'; pick: number }
  | { kind: 'extend'; pick: number; leaseMs: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'reclaim' }
  | { kind: 'redrive'; limit: number }
  | { kind: 'sweep' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('enqueue' as const),
    key: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
    priority: fc.integer({ min: 0, max: 2 }),
    delay: fc.constantFrom(0, 0, 50, 300),
  }),
  fc.record({
    kind: fc.constant('claim' as const),
    limit: fc.integer({ min: 1, max: 3 }),
    leaseMs: fc.constantFrom(100, 1000),
  }),
  fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('retry' as const), pick: fc.nat(), delay: fc.constantFrom(0, 100) }),
  fc.record({ kind: fc.constant('dead' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), pick: fc.nat(), leaseMs: fc.constantFrom(100, 1000) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(1, 60, 150, 1200) }),
  fc.constant({ kind: 'reclaim' as const }),
  fc.record({ kind: fc.constant('redrive' as const), limit: fc.integer({ min: 1, max: 3 }) }),
  fc.constant({ kind: 'sweep' as const }),
);

interface ModelItem {
  id: string;
  key: string | null;
  priority: number;
  runAt: number;
  state: ItemState;
  attempts: number;
  token: string | null;
  leaseUntil: number | null;
  updatedAt: number;
}

const SWEEP = { completedMs: 2000, deadMs: 4000, keyTtlMs: 1000, limit: 1000 };

/** Runs `ops` on the store and on a plain model side by side; every result and the final state must agree. */
async function checkAgainstModel(store: QueueStore, ops: readonly Op[]): Promise<void> {
  const q = queueName();
  let now = T0;
  const model = new Map<string, ModelItem>();
  const claims: ClaimedItem[] = [];
  const valid = (c: ClaimedItem): ModelItem | undefined => {
    const m = model.get(c.id);
    return m !== undefined && m.state === 'active' && m.token === c.leaseToken && m.leaseUntil! > now
      ? m
      : undefined;
  };
  const reclaim = (): number => {
    let n = 0;
    for (const m of model.values()) {
      if (m.state === 'active' && m.leaseUntil! <= now) {
        Object.assign(m, { state: 'pending', token: null, leaseUntil: null, updatedAt: now });
        n++;
      }
    }
    return n;
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'enqueue': {
        const it = item({
          key: op.key === null ? null : `k${op.key}`,
          priority: op.priority,
          runAt: now + op.delay,
          createdAt: now,
        });
        const holder = it.key === null ? undefined : [...model.values()].find((m) => m.key === it.key);
        const [out] = await store.enqueue(q, [it], now);
        if (holder !== undefined) expect(out).toEqual({ id: holder.id, duplicate: true });
        else {
          expect(out).toEqual({ id: it.id, duplicate: false });
          model.set(it.id, {
            id: it.id,
            key: it.key,
            priority: it.priority,
            runAt: it.runAt,
            state: 'pending',
            attempts: 0,
            token: null,
            leaseUntil: null,
            updatedAt: now,
          });
        }
        break;
      }
      case 'claim': {
        reclaim();
        const due = [...model.values()]
          .filter((m) => m.state === 'pending' && m.runAt <= now)
          .sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : 1))
          .slice(0, op.limit);
        const got = await store.claim(q, op.limit, op.leaseMs, now);
        expect(got.map((c) => c.id)).toEqual(due.map((m) => m.id));
        for (const c of got) {
          const m = model.get(c.id)!;
          Object.assign(m, {
            state: 'active',
            attempts: m.attempts + 1,
            token: c.leaseToken,
            leaseUntil: now + op.leaseMs,
            updatedAt: now,
          });
          expect(c.attempts).toBe(m.attempts);
          expect(c.leaseUntil).toBe(m.leaseUntil);
          claims.push(c);
        }
        break;
      }
      case 'complete':
      case 'retry':
      case 'dead':
      case 'extend': {
        if (claims.length === 0) break;
        const c = claims[op.pick % claims.length]!;
        const m = valid(c);
        let ok: boolean;
        if (op.kind === 'complete') [ok] = (await store.complete(q, [c], now)) as [boolean];
        else if (op.kind === 'retry')
          ok = await store.fail(
            q,
            c,
            { kind: 'retry', runAt: now + op.delay, error: '{"message":"r"}' },
            now,
          );
        else if (op.kind === 'dead')
          ok = await store.fail(q, c, { kind: 'dead', reason: 'exhausted', error: '{}' }, now);
        else ok = await store.extend(q, c, op.leaseMs, now);
        expect(ok).toBe(m !== undefined);
        if (m === undefined) break;
        if (op.kind === 'complete')
          Object.assign(m, { state: 'completed', token: null, leaseUntil: null, updatedAt: now });
        else if (op.kind === 'retry')
          Object.assign(m, {
            state: 'pending',
            runAt: now + op.delay,
            token: null,
            leaseUntil: null,
            updatedAt: now,
          });
        else if (op.kind === 'dead')
          Object.assign(m, { state: 'dead', token: null, leaseUntil: null, updatedAt: now });
        else m.leaseUntil = now + op.leaseMs;
        break;
      }
      case 'tick':
        now += op.ms;
        break;
      case 'reclaim':
        expect(await store.reclaimExpired(q, now)).toBe(reclaim());
        break;
      case 'redrive': {
        const dead = [...model.values()]
          .filter((m) => m.state === 'dead')
          .sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1))
          .slice(0, op.limit);
        const got = await store.redrive(q, { limit: op.limit }, now);
        expect(got).toEqual(dead.map((m) => m.id));
        for (const m of dead) Object.assign(m, { state: 'pending', attempts: 0, runAt: now, updatedAt: now });
        break;
      }
      case 'sweep': {
        await store.sweep(q, SWEEP, now);
        for (const m of [...model.values()]) {
          if (m.state === 'completed' && m.updatedAt < now - SWEEP.keyTtlMs) m.key = null;
          if (
            (m.state === 'completed' && m.updatedAt < now - SWEEP.completedMs) ||
            (m.state === 'dead' && m.updatedAt < now - SWEEP.deadMs)
          ) {
            model.delete(m.id);
          }
        }
        break;
      }
    }
  }
  const stored = await store.list(q, { limit: 1000 });
  const expected = [...model.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  expect(stored.map((i) => [i.id, i.state, i.attempts, i.key])).toEqual(
    expected.map((m) => [m.id, m.state, m.attempts, m.key]),
  );
  const stats = await store.stats(q, now);
  const count = (st: ItemState) => expected.filter((m) => m.state === st).length;
  expect([stats.pending, stats.active, stats.completed, stats.dead]).toEqual([
    count('pending'),
    count('active'),
    count('completed'),
    count('dead'),
  ]);
}
