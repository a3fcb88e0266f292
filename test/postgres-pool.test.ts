/**
 * The resilient pool on the real PostgreSQL through the TCP proxy: it waits for a server that is
 * not there yet (startup retry), its breaker opens on connection errors and fails fast, and its
 * health check and snapshot report the pool's figures.
 */

import { expect, it } from 'vitest';
import { createRegistry } from '../src/core/registry.js';
import { createPool, PoolUnavailableError } from '../src/postgres/index.js';
import { describePg, pgConnectionString } from './support/postgres.js';
import { startTcpProxy } from './support/tcp-proxy.js';

describePg('createPool (real PostgreSQL)', () => {
  it('waits for the server at startup, then reports figures and a passing health check', async () => {
    const proxy = await startTcpProxy({ port: 5432 });
    proxy.refuse();
    const registry = createRegistry();
    const ready = createPool({
      connectionString: pgConnectionString(proxy.port),
      name: 'startup',
      startup: { maxAttempts: 50, initialDelayMs: 20, maxDelayMs: 50 },
      registry,
    });
    await new Promise((r) => setTimeout(r, 300));
    proxy.accept();
    const pool = await ready;
    try {
      const snap = pool.snapshot();
      expect(snap.counters.connectRetries).toBeGreaterThan(0);
      expect(snap.state).toBe('ready');
      expect(registry.get('postgresPool', 'startup')).toBe(pool);
      const check = pool.healthCheck({ warnWaiting: 5 });
      const outcome = (await check.run(new AbortController().signal)) as { status: string; output: string };
      expect(outcome.status).toBe('pass');
      expect(outcome.output).toMatch(/total \d+\/10, idle \d+, waiting 0/);
      expect(pool.snapshot().histograms?.acquireSeconds?.count).toBeGreaterThan(0);
    } finally {
      await pool.end();
      await proxy.close();
    }
  });

  it('gives up with PoolUnavailableError when the server never comes', async () => {
    const proxy = await startTcpProxy({ port: 5432 });
    await proxy.stop();
    const err = await createPool({
      connectionString: pgConnectionString(proxy.port),
      startup: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolUnavailableError);
    expect((err as PoolUnavailableError).message).toMatch(/could not connect after 3 attempts/);
  });

  it('the breaker opens after repeated connection errors and fails fast', async () => {
    const proxy = await startTcpProxy({ port: 5432 });
    const pool = await createPool({
      connectionString: pgConnectionString(proxy.port),
      acquireTimeoutMs: 1_000,
      breaker: { failures: 2, halfOpenAfterMs: 60_000 },
    });
    try {
      await proxy.stop(); // refused from now on
      // The idle connection from startup fails on its query (not an acquire failure); then two
      // refused connects open the breaker.
      let err: unknown;
      for (let i = 0; i < 5 && !(err instanceof PoolUnavailableError); i++)
        err = await pool.query('SELECT 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolUnavailableError);
      expect((err as Error).message).toMatch(/breaker is open/);
      expect(pool.snapshot().state).toBe('broken');
      expect(pool.snapshot().counters.rejections).toBe(1);
    } finally {
      await pool.end();
      await proxy.close();
    }
  });
});
