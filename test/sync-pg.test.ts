/**
 * The PostgreSQL store of the sync server on the real database: idempotent pushes, conflicts
 * audited, concurrent pushes that a concurrent puller never skips, tombstone retention, and
 * several servers initialising one schema at once.
 */
import { afterAll, expect, it } from 'vitest';
import {
  formatHlc,
  memoryAuditSink,
  postgresSyncStore,
  type SyncOperation,
  syncServer,
  threeWay,
} from '../src/sync/index.js';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName } from './support/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
function op(
  client: string,
  seq: number,
  id: string,
  fields: Record<string, unknown>,
  base: Record<string, unknown> = {},
): SyncOperation {
  return {
    opId: `${client}-${seq}-${id}`,
    clientId: client,
    entity: 'note',
    id,
    kind: 'put',
    fields,
    base,
    baseVersion: 0,
    hlc: formatHlc({ ms: T0 + seq, counter: 0, node: client }),
    priority: 'normal',
    seq,
  };
}

describePg('postgresSyncStore', () => {
  const schemas: string[] = [];
  const fresh = () => {
    const s = uniqueName('bw_sync');
    schemas.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of schemas) await dropSchema(s);
  });

  it('applies once, audits conflicts, and pages pulls', async () => {
    const audit = memoryAuditSink();
    const server = syncServer({
      store: postgresSyncStore({ connectionString: pgConnectionString(), schema: fresh() }),
      strategy: threeWay(),
      audit,
    });
    try {
      const a = op('a', 1, 'n1', { title: 'A', body: 'a' });
      expect(
        (await server.push('a', { ops: [a, op('a', 2, 'n2', { title: 'B' })] })).results.map((r) => r.status),
      ).toEqual(['applied', 'applied']);
      expect((await server.push('a', { ops: [a] })).results[0]!.status).toBe('duplicate');
      const b = op('b', 3, 'n1', { title: 'from b' }, { title: 'A' });
      const c = op('c', 4, 'n1', { title: 'from c' }, { title: 'A' });
      await server.push('b', { ops: [b] });
      expect((await server.push('c', { ops: [c] })).results[0]!.conflict).toEqual(['title']);
      expect(audit.entries.map((e) => e.subject)).toEqual([c.opId]);
      const p1 = await server.pull('a', { cursor: 0, limit: 1 });
      const p2 = await server.pull('a', { cursor: p1.cursor, limit: 10 });
      expect([p1.hasMore, p2.hasMore]).toEqual([true, false]);
      const all = [...p1.changes, ...p2.changes];
      expect(all.find((r) => r.id === 'n1')).toMatchObject({
        fields: { title: 'from c', body: 'a' },
        version: 3,
      });
    } finally {
      await server.close();
    }
  });

  it('a puller running during concurrent pushes never skips a change', async () => {
    const schema = fresh();
    const pool = pgPool({ max: 8 });
    const server = syncServer({ store: postgresSyncStore({ pool, schema }) });
    try {
      await server.store.init();
      const seen = new Map<string, number>();
      let cursor = 0;
      let done = false;
      const puller = (async () => {
        while (!done) {
          const page = await server.pull('reader', { cursor, limit: 50 });
          for (const r of page.changes) seen.set(r.id, Math.max(seen.get(r.id) ?? 0, r.version));
          cursor = page.cursor;
          if (!page.hasMore) await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await Promise.all(
        ['a', 'b', 'c', 'd'].map(async (client) => {
          for (let i = 1; i <= 15; i++)
            await server.push(client, { ops: [op(client, i, `${client}${i % 5}`, { v: i })] });
        }),
      );
      done = true;
      await puller;
      for (;;) {
        const page = await server.pull('reader', { cursor, limit: 50 });
        for (const r of page.changes) seen.set(r.id, Math.max(seen.get(r.id) ?? 0, r.version));
        cursor = page.cursor;
        if (!page.hasMore) break;
      }
      const truth = (await server.pull('check', { cursor: 0, limit: 1000 })).changes;
      expect(truth).toHaveLength(20);
      for (const r of truth) expect(seen.get(r.id)).toBe(r.version);
    } finally {
      await server.close();
      await pool.end();
    }
  });

  it('sweeps old tombstones and resets older cursors; many servers can initialise one schema at once', async () => {
    const schema = fresh();
    let now = T0 + 10_000;
    const clock = {
      now: () => now,
      date: () => now,
      setTimeout: () => ({ ref() {}, unref() {} }),
      clearTimeout() {},
    };
    const servers = Array.from({ length: 4 }, () =>
      syncServer({
        store: postgresSyncStore({ connectionString: pgConnectionString(), schema, poolSize: 2 }),
        tombstoneRetentionMs: 1_000,
        clock,
      }),
    );
    try {
      await Promise.all(servers.map((s) => s.store.init()));
      const server = servers[0]!;
      await server.push('a', { ops: [op('a', 1, 'x', { v: 1 }), op('a', 2, 'y', { v: 1 })] });
      const before = await server.pull('a');
      await server.push('a', { ops: [{ ...op('a', 3, 'x', {}), kind: 'delete' }] });
      const after = await server.pull('a', { cursor: before.cursor });
      expect(await server.sweep()).toBe(0);
      now += 5_000;
      expect(await server.sweep()).toBe(1);
      // A device that had not seen the delete must start over; one that had carries on.
      expect((await server.pull('a', { cursor: before.cursor })).reset).toBe(true);
      expect((await server.pull('a', { cursor: after.cursor })).reset).toBe(false);
      expect((await server.pull('a', { cursor: 0 })).changes.map((r) => r.id)).toEqual(['y']);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});
