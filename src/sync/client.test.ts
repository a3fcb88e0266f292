import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { createRegistry } from '../core/registry.js';
import { openSyncClient } from './client.js';
import { BulwarkSyncError } from './errors.js';
import type { SyncPolicy } from './network.js';
import type { SyncOperation } from './record.js';
import { syncServer } from './server.js';
import { memorySyncStore } from './server-store.js';
import { localTransport, type SyncTransport } from './transport.js';

const direct: SyncPolicy = { execute: (fn) => fn({ signal: new AbortController().signal }) };
const dir = mkdtempSync(join(tmpdir(), 'bw-sync-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('syncClient', () => {
  it('keeps offline edits across a restart and replays them (outbox on SQLite)', async () => {
    const server = syncServer({ store: memorySyncStore() });
    const net = localTransport(server, 'p');
    const path = join(dir, 'restart');
    const first = await openSyncClient({ clientId: 'p', path, transport: net, policy: direct });
    net.online = false;
    await first.put('note', 'a', { text: 'one' });
    await first.put('note', 'a', { text: 'two' });
    await first.delete('note', 'b');
    expect((await first.sync()).error).toBeInstanceOf(BulwarkSyncError);
    await first.close();

    const again = await openSyncClient({ clientId: 'p', path, transport: net, policy: direct });
    expect(again.pending).toBe(3);
    expect(again.get('note', 'a')).toEqual({ text: 'two' });
    net.online = true;
    expect(await again.sync()).toMatchObject({ pushed: 3, pending: 0 });
    expect((await server.pull('x')).changes.find((r) => r.id === 'a')?.fields).toEqual({ text: 'two' });
    await again.close();
  });

  it('replays critical edits first, but never before an earlier edit of the same record', async () => {
    const server = syncServer({ store: memorySyncStore() });
    const inner = localTransport(server, 'p');
    const pushes: string[][] = [];
    const transport: SyncTransport = {
      push: (ops: readonly SyncOperation[], signal) => {
        pushes.push(ops.map((o) => `${o.id}:${o.priority}`));
        return inner.push(ops, signal);
      },
      pull: (c, l, s) => inner.pull(c, l, s),
    };
    const client = await openSyncClient({
      clientId: 'p',
      path: ':memory:',
      transport,
      policy: direct,
      deferMs: 1,
    });
    await client.put('note', 'x', { v: 1 });
    await client.put('plan', 'y', { v: 1 }, { priority: 'critical' });
    await client.put('note', 'x', { v: 2 }, { priority: 'critical' }); // behind note/x's normal edit
    await client.sync();
    expect(pushes).toEqual([['y:critical'], ['x:normal', 'x:normal']]);
    await client.close();
  });

  it('sends a malformed operation to the dead letters instead of retrying it forever', async () => {
    const server = syncServer({ store: memorySyncStore() });
    const inner = localTransport(server, 'p');
    const transport: SyncTransport = {
      push: (ops, signal) =>
        inner.push(
          ops.map((o) => ({ ...o, hlc: 'broken' })),
          signal,
        ),
      pull: (c, l, s) => inner.pull(c, l, s),
    };
    const client = await openSyncClient({ clientId: 'p', path: ':memory:', transport, policy: direct });
    await client.put('note', 'x', { v: 1 });
    const report = await client.sync();
    expect(report.error).toBeInstanceOf(BulwarkSyncError);
    expect(await client.outboxCounts()).toEqual({ waiting: 0, dead: 1 });
    await client.close();
  });

  it('is a component with a snapshot, and validates its options', async () => {
    const registry = createRegistry();
    const server = syncServer({ store: memorySyncStore() });
    const client = await openSyncClient({
      clientId: 'p',
      path: ':memory:',
      transport: localTransport(server, 'p'),
      registry,
    });
    await client.put('note', 'x', { v: 1 });
    expect(registry.get('syncClient', 'p')?.snapshot()).toMatchObject({
      state: 'idle',
      gauges: { pending: 1 },
      counters: { recorded: 1 },
    });
    await expect(client.put('bad entity', 'x', {})).rejects.toThrow(BulwarkSyncError);
    await client.close();
    await expect(client.put('note', 'x', {})).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(
      openSyncClient({
        clientId: 'p',
        path: ':memory:',
        transport: localTransport(server, 'p'),
        batchsize: 2,
      } as never),
    ).rejects.toThrow(ConfigError);
  });
});
