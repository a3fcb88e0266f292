import { createServer, type Server } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { createRegistry } from '../core/registry.js';
import { rateLimiter } from '../limits/rate-limiter.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { memoryAuditSink } from './audit.js';
import { BulwarkSyncError, SyncRateLimitedError } from './errors.js';
import { formatHlc } from './hlc.js';
import { syncHttpHandler } from './http.js';
import type { SyncOperation } from './record.js';
import { syncServer } from './server.js';
import { memorySyncStore } from './server-store.js';
import { serverWins } from './strategies.js';

const T0 = Date.UTC(2026, 0, 1);
let n = 0;
function op(over: Partial<SyncOperation> & { seq: number }): SyncOperation {
  n++;
  return {
    opId: `op-${n}`,
    clientId: 'c1',
    entity: 'note',
    id: '1',
    kind: 'put',
    fields: { title: 'x' },
    base: {},
    baseVersion: 0,
    hlc: formatHlc({ ms: T0 + n, counter: 0, node: over.clientId ?? 'c1' }),
    priority: 'normal',
    ...over,
  };
}
/** A clock standing at `ms` (monotonic and wall clock alike): time moves only when told to. */
const fixed = (ms: number) => createFakeClock({ now: ms, date: ms });

describe('syncServer', () => {
  it('applies each operation once: a replay (same client, seq at or below its mark) is a duplicate', async () => {
    const server = syncServer({ store: memorySyncStore(), clock: fixed(T0 + 1_000) });
    const a = op({ seq: 1 });
    const b = op({ seq: 2, fields: { title: 'y' } });
    expect((await server.push('c1', { ops: [a, b] })).results.map((r) => [r.status, r.version])).toEqual([
      ['applied', 1],
      ['applied', 2],
    ]);
    const again = await server.push('c1', { ops: [a, b, a] });
    expect(again.results.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    const page = await server.pull('c1');
    expect(page.changes.map((r) => [r.fields, r.version])).toEqual([[{ title: 'y' }, 2]]);
    expect(server.snapshot().counters).toMatchObject({ applied: 2, duplicates: 3, pushes: 2 });
  });

  it('audits every conflict before committing, and applies nothing when the sink fails', async () => {
    const audit = memoryAuditSink();
    const store = memorySyncStore();
    const server = syncServer({ store, strategy: serverWins(), audit, clock: fixed(T0 + 1_000) });
    await server.push('c1', { ops: [op({ seq: 1, fields: { title: 'base' } })] });
    await server.push('c2', {
      ops: [
        op({ clientId: 'c2', seq: 1, fields: { title: 'theirs' }, base: { title: 'base' }, baseVersion: 1 }),
      ],
    });
    const mine = op({ seq: 2, fields: { title: 'mine' }, base: { title: 'base' }, baseVersion: 1 });
    const r = await server.push('c1', { ops: [mine] });
    expect(r.results[0]).toMatchObject({ status: 'applied', conflict: ['title'] });
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]).toMatchObject({
      actor: 'c1',
      action: 'sync.conflict',
      resource: 'note/1',
      subject: mine.opId,
      payload: {
        strategy: 'serverWins',
        fields: ['title'],
        ours: { title: 'mine' },
        theirs: { title: 'theirs' },
        result: { title: 'theirs' },
      },
    });
    const failing = syncServer({
      store,
      audit: { append: () => Promise.reject(new Error('audit down')) },
      strategy: serverWins(),
    });
    await expect(
      failing.push('c1', {
        ops: [op({ seq: 3, fields: { title: 'again' }, base: { title: 'base' }, baseVersion: 1 })],
      }),
    ).rejects.toThrow('audit down');
    expect((await server.pull('x')).changes[0]!.fields).toEqual({ title: 'theirs' });
  });

  it('answers retry for a stamp too far ahead, and holds back later ops of that record', async () => {
    const server = syncServer({ store: memorySyncStore(), maxDriftMs: 1_000, clock: fixed(T0) });
    const future = op({ seq: 1, hlc: formatHlc({ ms: T0 + 60_000, counter: 0, node: 'c1' }) });
    const next = op({ seq: 2 });
    const other = op({ seq: 3, id: '2' });
    const r = await server.push('c1', { ops: [future, next, other] });
    expect(r.results.map((x) => [x.status, x.code])).toEqual([
      ['retry', 'CLOCK_DRIFT'],
      ['retry', 'ORDER'],
      ['applied', undefined],
    ]);
  });

  it('pages pulls, and answers reset to a cursor older than a swept tombstone', async () => {
    let now = T0;
    const clock = { ...fixed(0), date: () => now };
    const server = syncServer({ store: memorySyncStore(), tombstoneRetentionMs: 1_000, clock, maxPage: 2 });
    for (let i = 1; i <= 5; i++) await server.push('c1', { ops: [op({ seq: i, id: String(i) })] });
    const p1 = await server.pull('c1', { cursor: 0, limit: 2 });
    expect([p1.changes.length, p1.hasMore]).toEqual([2, true]);
    const p2 = await server.pull('c1', { cursor: String(p1.cursor), limit: '2' });
    expect(p2.changes.map((c) => c.id)).toEqual(['3', '4']);
    await server.push('c1', {
      ops: [
        op({
          seq: 9,
          id: '1',
          kind: 'delete',
          fields: {},
          hlc: formatHlc({ ms: T0 + 500, counter: 0, node: 'c1' }),
        }),
      ],
    });
    now += 2_000;
    expect(await server.sweep()).toBe(1);
    expect(await server.pull('c1', { cursor: p1.cursor })).toMatchObject({ reset: true, changes: [] });
    const fresh = await server.pull('c1', { cursor: 0, limit: 10 }).catch((e: unknown) => e);
    expect(fresh).toBeInstanceOf(BulwarkSyncError); // limit over maxPage
    expect((await server.pull('c1', { cursor: 0 })).changes.map((c) => c.id)).toEqual(['2', '3']);
  });

  it('refuses bad requests naming the field, and rate-limits per client (critical pushes may bypass)', async () => {
    const registry = createRegistry();
    const server = syncServer({
      store: memorySyncStore(),
      rateLimit: {
        limiter: rateLimiter({ limits: [{ algorithm: 'token-bucket', capacity: 1, refillRate: 0.001 }] }),
        bypass: ['critical'],
      },
      registry,
      name: 'api',
    });
    expect(registry.get('syncServer', 'api')).toBe(server);
    await expect(server.push('c1', { ops: [{ ...op({ seq: 1 }), hlc: 'yesterday' }] })).rejects.toThrow(
      /push\.ops\[0\]\.hlc must be a clock stamp/,
    );
    await server.push('c1', { ops: [] });
    await expect(server.push('c1', { ops: [] })).rejects.toBeInstanceOf(SyncRateLimitedError);
    await expect(server.push('c2', { ops: [] })).resolves.toEqual({ results: [] });
    await expect(server.push('c1', { ops: [op({ seq: 1, priority: 'critical' })] })).resolves.toBeDefined();
    expect(server.snapshot().counters.rejections).toBe(2);
  });

  it('validates its options with ConfigError', () => {
    expect(() => syncServer({ store: memorySyncStore(), maxBatchh: 3 } as never)).toThrow(ConfigError);
    expect(() => syncServer({ store: {} as never })).toThrow(/syncServer\.store must be/);
    expect(() => syncServer({ store: memorySyncStore(), tombstoneRetentionMs: -1 })).toThrow(
      /tombstoneRetentionMs/,
    );
  });
});

describe('syncHttpHandler', () => {
  async function listen(handler: ReturnType<typeof syncHttpHandler>): Promise<{ url: string; http: Server }> {
    const http = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(http.address() as { port: number }).port}/sync`, http };
  }

  it('answers push and pull, and maps errors to 400/401/405/413/429', async () => {
    const server = syncServer({
      store: memorySyncStore(),
      rateLimit: {
        limiter: rateLimiter({ limits: [{ algorithm: 'token-bucket', capacity: 2, refillRate: 0.001 }] }),
      },
    });
    const { url, http } = await listen(syncHttpHandler(server, { maxBodyBytes: 2_000 }));
    try {
      const h = { 'content-type': 'application/json', 'x-sync-client': 'c1' };
      const push = await fetch(`${url}/push`, {
        method: 'POST',
        headers: h,
        body: JSON.stringify({ ops: [op({ seq: 1 })] }),
      });
      expect([push.status, ((await push.json()) as { results: unknown[] }).results.length]).toEqual([200, 1]);
      const pull = await fetch(`${url}/pull?cursor=0`, { headers: h });
      expect(((await pull.json()) as { changes: unknown[] }).changes).toHaveLength(1);
      expect((await fetch(`${url}/pull`)).status).toBe(401);
      expect((await fetch(`${url}/push`, { headers: h })).status).toBe(405);
      expect(
        (await fetch(`${url}/push`, { method: 'POST', headers: h, body: 'x'.repeat(3_000) })).status,
      ).toBe(413);
      const bad = await fetch(`${url}/push`, { method: 'POST', headers: h, body: '{"ops":[{"opId":"a"}]}' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
        /push\.ops\[0\]\.entity/,
      );
      const limited = await fetch(`${url}/pull`, { headers: h });
      expect([limited.status, Number(limited.headers.get('retry-after')) > 0]).toEqual([429, true]);
      expect((await fetch(`${url.replace('/sync', '/other')}`)).status).toBe(404);
    } finally {
      http.close();
    }
  });
});
