/** The audit log on a real PostgreSQL: one chain from two writers, verify, purge, proofs. */
import { afterAll, expect, it } from 'vitest';
import { openAuditLog, postgresAuditStore } from '../src/audit/index.js';
import { describePg, dropSchema, pgConnectionString, uniqueName } from './support/postgres.js';

describePg('audit log on PostgreSQL', () => {
  const schema = uniqueName('bw_audit');
  afterAll(() => dropSchema(schema));

  it('two writers append concurrently into one verified chain; purge keeps it verifying', async () => {
    const a = openAuditLog({
      store: postgresAuditStore({ connectionString: pgConnectionString(), schema }),
      name: 'a',
    });
    const b = openAuditLog({ store: `${pgConnectionString()}?schema=${schema}`, name: 'b' });
    const appends = Array.from({ length: 300 }, (_, i) =>
      (i % 2 === 0 ? a : b).append({
        actor: `u${i}`,
        action: 'pay',
        resource: `order:${i}`,
        tags: i % 3 === 0 ? ['pci'] : ['sox'],
        subject: `s${i % 5}`,
        payload: { i },
      }),
    );
    const entries = await Promise.all(appends);
    expect(new Set(entries.map((e) => e.seq)).size).toBe(300);
    expect(Math.max(...entries.map((e) => e.seq))).toBe(300);
    const rep = await a.verify({ pageSize: 64 });
    expect(rep).toMatchObject({ ok: true, entries: 300, payloads: { checked: 300 } });

    const { purged } = await b.purge({ subject: 's1', actor: 'dpo', reason: 'erasure' });
    expect(purged).toBe(60);
    expect((await a.verify()).ok).toBe(true);
    const list = await a.list({ subject: 's1', payloads: true, limit: 100 });
    expect(list.every((e) => e.payloadState === 'purged')).toBe(true);
    const p = await a.proof(150);
    expect(p.path.length).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });
});
