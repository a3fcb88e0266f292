/**
 * The QueueStore contract on the PostgreSQL store (a unique schema per run, dropped afterwards),
 * plus PostgreSQL-specific checks: racing migrations, the transactional outbox (`tx`), a key
 * enqueued by 20 connections at once, LISTEN/NOTIFY across stores and its reconnection, and
 * outages through a TCP proxy (typed STORE_UNAVAILABLE errors, no crash, recovery).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/core/errors.js';
import { BulwarkDurableError } from '../src/durable/errors.js';
import {
  POSTGRES_SCHEMA_VERSION,
  type PostgresQueueStore,
  postgresStore,
} from '../src/durable/postgres-store.js';
import type { NewItem } from '../src/durable/store.js';
import {
  describePg,
  dropSchema,
  pgConnectionString,
  pgPool,
  pgUp,
  uniqueName,
  until,
} from './support/postgres.js';
import { describeStoreContract } from './support/store-contract.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const onCi = process.env.CI === 'true';
const contractSchema = uniqueName('bw_contract');

describeStoreContract(
  'postgres',
  () => postgresStore({ connectionString: pgConnectionString(), schema: contractSchema }),
  {
    skip: !pgUp && !onCi,
    cleanup: async (store) => {
      await (store as PostgresQueueStore).dropSchema();
    },
  },
);

const T0 = 1_800_000_000_000;
let seq = 0;
function item(overrides: Partial<NewItem> = {}): NewItem {
  seq++;
  return {
    id: `${T0.toString(16)}-${String(seq).padStart(8, '0')}`,
    payload: new Uint8Array([seq & 0xff]),
    keyId: null,
    key: null,
    priority: 0,
    runAt: T0,
    maxAttempts: 3,
    createdAt: T0,
    ...overrides,
  };
}

function isCode(code: string) {
  return (e: unknown) => e instanceof BulwarkDurableError && e.code === code;
}

describe('postgresStore options', () => {
  it('validates options with messages naming the field', () => {
    expect(() => postgresStore({ schema: 'Bad-Name' })).toThrow(ConfigError);
    expect(() => postgresStore({ schema: 'Bad-Name' })).toThrow(/postgresStore\.schema/);
    expect(() => postgresStore({ poolSize: 0 })).toThrow(/postgresStore\.poolSize/);
    // biome-ignore lint/suspicious/noExplicitAny: an unknown option on purpose
    expect(() => postgresStore({ shema: 'x' } as any)).toThrow(/postgresStore\.shema/);
  });

  it('describes itself without credentials and takes the schema from the URL', () => {
    const s = postgresStore({ connectionString: 'postgres://app:secret@db.example:6543/prod?schema=jobs' });
    expect(s.description).toBe('postgres://db.example:6543/prod?schema=jobs');
    expect(s.schema).toBe('jobs');
    expect(s.description).not.toMatch(/secret/);
  });

  it('a database that cannot be reached rejects with STORE_UNAVAILABLE (cause chained)', async () => {
    const s = postgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      connectTimeoutMs: 500,
    });
    const err = await s.claim('q', 1, 1000, T0).catch((e: unknown) => e);
    expect(isCode('STORE_UNAVAILABLE')(err)).toBe(true);
    expect((err as Error).cause).toBeDefined();
    await expect(s.init()).rejects.toSatisfy(isCode('STORE_UNAVAILABLE'));
    await s.close();
    await expect(s.stats('q', T0)).rejects.toSatisfy(isCode('CLOSED'));
  });
});

describePg('postgresStore specifics', () => {
  const schema = uniqueName('bw_pg');
  let store: PostgresQueueStore;
  beforeAll(async () => {
    store = postgresStore({ connectionString: pgConnectionString(), schema, poolSize: 24 });
    await store.init();
  });
  afterAll(async () => {
    await store?.dropSchema().catch(() => {});
    await store?.close();
  });

  it('migrations race safely: 10 stores (10 connections) run init() at once on a fresh schema', async () => {
    const fresh = uniqueName('bw_mig');
    const stores = Array.from({ length: 10 }, () =>
      postgresStore({ connectionString: pgConnectionString(), schema: fresh, poolSize: 1 }),
    );
    try {
      await Promise.all(stores.map((s) => s.init()));
      const pool = pgPool({ max: 1 });
      try {
        const r = await pool.query(`SELECT version FROM "${fresh}".schema_version ORDER BY version`);
        expect(r.rows.map((x: { version: number }) => x.version)).toEqual(
          Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
        );
      } finally {
        await pool.end();
      }
      // Every store works on the migrated schema.
      const out = await stores[3]!.enqueue('q', [item()], T0);
      expect(out[0]!.duplicate).toBe(false);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(fresh);
    }
  });

  it('listQueues names every queue that has items (skip scan)', async () => {
    const fresh = uniqueName('bw_lq');
    const s2 = postgresStore({ connectionString: pgConnectionString(), schema: fresh, poolSize: 1 });
    try {
      await s2.init();
      expect(await s2.listQueues!()).toEqual([]);
      for (const q of ['beta', 'alpha', 'gamma', 'alpha']) await s2.enqueue(q, [item()], T0);
      expect(await s2.listQueues!()).toEqual(['alpha', 'beta', 'gamma']);
    } finally {
      await s2.dropSchema();
      await s2.close();
    }
  });

  it('transactional outbox: ROLLBACK removes the item, COMMIT keeps it, NOTIFY only at commit', async () => {
    const q = uniqueName('outbox');
    const pool = pgPool({ max: 2 });
    let wakes = 0;
    const off = await store.subscribe(q, () => {
      wakes++;
    });
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const rolled = item();
        await store.enqueue(q, [rolled], T0, client);
        // Invisible to others before commit.
        expect(await store.get(q, rolled.id)).toBeUndefined();
        await client.query('ROLLBACK');
        expect(await store.get(q, rolled.id)).toBeUndefined();

        await client.query('BEGIN');
        await client.query('CREATE TEMP TABLE outbox_marker (x int) ON COMMIT DROP');
        const kept = item();
        const [out] = await store.enqueue(q, [kept], T0, client);
        expect(out).toEqual({ id: kept.id, duplicate: false });
        expect(await store.get(q, kept.id)).toBeUndefined();
        await new Promise((r) => setTimeout(r, 100));
        expect(wakes).toBe(0);
        await client.query('COMMIT');
        expect((await store.get(q, kept.id))!.state).toBe('pending');
        expect(await until(() => wakes > 0, 5000)).toBe(true);
        expect((await store.stats(q, T0)).pending).toBe(1);
      } finally {
        client.release();
      }
      await expect(store.enqueue(q, [item()], T0, { not: 'a client' })).rejects.toSatisfy(
        isCode('TX_UNSUPPORTED'),
      );
    } finally {
      await off();
      await pool.end();
    }
  });

  it('one idempotency key enqueued by 20 stores at once: exactly one is not a duplicate', async () => {
    const q = uniqueName('key');
    const stores = Array.from({ length: 20 }, () =>
      postgresStore({ connectionString: pgConnectionString(), schema, poolSize: 1 }),
    );
    try {
      // Warm the connections so the enqueues really overlap.
      await Promise.all(stores.map((s) => s.stats(q, T0)));
      for (let round = 0; round < 3; round++) {
        const key = `order-${round}`;
        const items = stores.map(() => item({ key }));
        const outs = await Promise.all(stores.map((s, i) => s.enqueue(q, [items[i]!], T0)));
        const winners = outs.filter((o) => !o[0]!.duplicate);
        expect(winners.length).toBe(1);
        for (const o of outs) expect(o[0]!.id).toBe(winners[0]![0]!.id);
      }
      expect((await store.stats(q, T0)).pending).toBe(3);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('claims from many stores never share an item (SKIP LOCKED)', async () => {
    const q = uniqueName('multi');
    const all = Array.from({ length: 500 }, () => item());
    await store.enqueue(q, all, T0);
    const stores = Array.from({ length: 5 }, () =>
      postgresStore({ connectionString: pgConnectionString(), schema, poolSize: 2 }),
    );
    try {
      const seen: string[] = [];
      await Promise.all(
        stores.map(async (s) => {
          for (;;) {
            const batch = await s.claim(q, 7, 60_000, T0);
            if (batch.length === 0) return;
            for (const c of batch) seen.push(c.id);
            const ok = await s.complete(q, batch, T0 + 1);
            expect(ok.every(Boolean)).toBe(true);
          }
        }),
      );
      expect(seen.length).toBe(500);
      expect(new Set(seen).size).toBe(500);
      expect((await store.stats(q, T0 + 2)).completed).toBe(500);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('batched complete: one call settles many items, fenced per item', async () => {
    const q = uniqueName('batch');
    await store.enqueue(
      q,
      Array.from({ length: 200 }, () => item()),
      T0,
    );
    const claimed = await store.claim(q, 200, 60_000, T0);
    expect(claimed.length).toBe(200);
    const refs = claimed.map((c, i) => (i % 50 === 0 ? { id: c.id, leaseToken: 'stale' } : c));
    const res = await store.complete(q, refs, T0 + 1);
    expect(res.filter((x) => !x).length).toBe(4);
    expect(res[0]).toBe(false);
    expect(res[1]).toBe(true);
    expect((await store.stats(q, T0 + 1)).completed).toBe(196);
  });

  it('LISTEN/NOTIFY: another store enqueueing wakes a subscriber; a retry back to pending wakes it too', async () => {
    const q = uniqueName('notify');
    const other = postgresStore({ connectionString: pgConnectionString(), schema, poolSize: 2 });
    let wakes = 0;
    const off = await store.subscribe(q, () => {
      wakes++;
    });
    let otherQueueWakes = 0;
    const off2 = await store.subscribe(uniqueName('silent'), () => {
      otherQueueWakes++;
    });
    try {
      const before = wakes;
      await other.enqueue(q, [item()], T0);
      expect(await until(() => wakes > before, 5000)).toBe(true);
      const [c] = await other.claim(q, 1, 60_000, T0);
      const mid = wakes;
      await other.fail(q, c!, { kind: 'retry', runAt: T0, error: '{}' }, T0 + 1);
      expect(await until(() => wakes > mid, 5000)).toBe(true);
      expect(otherQueueWakes).toBe(0);
    } finally {
      await off();
      await off2();
      await other.close();
    }
  });

  it('the LISTEN connection reconnects after its backend is terminated', async () => {
    const s2 = uniqueName('bw_listen');
    const a = postgresStore({ connectionString: pgConnectionString(), schema: s2, poolSize: 2 });
    const b = postgresStore({ connectionString: pgConnectionString(), schema: s2, poolSize: 2 });
    const admin = pgPool({ max: 1 });
    try {
      await a.init();
      const q = uniqueName('q');
      let wakes = 0;
      const off = await a.subscribe(q, () => {
        wakes++;
      });
      await b.enqueue(q, [item()], T0);
      expect(await until(() => wakes > 0, 5000)).toBe(true);
      const r = await admin.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query = $1 AND datname = current_database()`,
        [`LISTEN "bulwark_${s2}"`],
      );
      expect(r.rows.length).toBe(1);
      // Reconnected: a new enqueue wakes the subscriber again (resubscription also fires once).
      const ok = await until(async () => {
        const before = wakes;
        await b.enqueue(q, [item()], T0);
        return until(() => wakes > before, 300);
      }, 10_000);
      expect(ok).toBe(true);
      await off();
    } finally {
      await admin.end();
      await a.dropSchema().catch(() => {});
      await a.close();
      await b.close();
    }
  });
});

describePg('postgresStore through a faulty network (TCP proxy)', () => {
  const schema = uniqueName('bw_proxy');
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy({ port: 5432 });
    const direct = postgresStore({ connectionString: pgConnectionString(), schema });
    await direct.init();
    await direct.close();
  });
  afterAll(async () => {
    await dropSchema(schema).catch(() => {});
    await proxy?.close();
  });

  it('an outage rejects calls with STORE_UNAVAILABLE, never crashes, and the store recovers', async () => {
    const errors: unknown[] = [];
    const store = postgresStore({
      connectionString: pgConnectionString(proxy.port),
      schema,
      poolSize: 3,
      connectTimeoutMs: 1000,
      listenCheckMs: 200,
      onError: (e) => errors.push(e),
    });
    const q = uniqueName('q');
    let wakes = 0;
    const off = await store.subscribe(q, () => {
      wakes++;
    });
    try {
      await store.enqueue(q, [item()], T0);
      expect(await until(() => wakes > 0, 5000)).toBe(true);
      // Idle pooled connections and the LISTEN connection die; new ones are refused.
      proxy.refuse(true);
      await new Promise((r) => setTimeout(r, 100));
      const err = await store.claim(q, 1, 1000, T0).catch((e: unknown) => e);
      expect(isCode('STORE_UNAVAILABLE')(err)).toBe(true);
      expect((err as Error).cause).toBeDefined();
      await expect(store.enqueue(q, [item()], T0)).rejects.toSatisfy(isCode('STORE_UNAVAILABLE'));
      proxy.accept();
      // Calls succeed again; the LISTEN connection came back.
      expect(
        await until(async () => (await store.stats(q, T0).catch(() => undefined)) !== undefined, 10_000),
      ).toBe(true);
      const before = wakes;
      const ok = await until(async () => {
        await store.enqueue(q, [item()], T0);
        return until(() => wakes > before, 300);
      }, 10_000);
      expect(ok).toBe(true);
      expect((await store.stats(q, T0)).pending).toBeGreaterThanOrEqual(2);
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await off();
      await store.close();
    }
  });

  it('a half-open (blackholed) connection times out with STORE_UNAVAILABLE and new connections recover', async () => {
    const store = postgresStore({
      connectionString: pgConnectionString(proxy.port),
      schema,
      poolSize: 2,
      connectTimeoutMs: 500,
      queryTimeoutMs: 500,
      listenCheckMs: 200,
    });
    const q = uniqueName('q');
    let wakes = 0;
    const off = await store.subscribe(q, () => {
      wakes++;
    });
    try {
      await store.enqueue(q, [item()], T0);
      proxy.blackhole();
      await expect(store.claim(q, 1, 1000, T0)).rejects.toSatisfy(isCode('STORE_UNAVAILABLE'));
      proxy.heal();
      const claimed = await (async () => {
        for (let i = 0; i < 50; i++) {
          const r = await store.claim(q, 1, 60_000, T0).catch(() => undefined);
          if (r !== undefined) return r;
          await new Promise((res) => setTimeout(res, 100));
        }
        return undefined;
      })();
      expect(claimed?.length).toBe(1);
      // The LISTEN connection noticed (ping timeout) and came back through the healed proxy.
      const before = wakes;
      const ok = await until(async () => {
        await store.enqueue(q, [item()], T0);
        return until(() => wakes > before, 300);
      }, 10_000);
      expect(ok).toBe(true);
    } finally {
      await off();
      await store.close();
    }
  });
});
