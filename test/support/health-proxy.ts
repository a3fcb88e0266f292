/**
 * Test support for the health tests: a TCP proxy in front of a shared server (PostgreSQL, Redis)
 * that can be stopped, started again and stalled without touching the server itself (other test
 * files use it concurrently), a probe for PostgreSQL, and a validator of health+json documents.
 */

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, expect } from 'vitest';

/** A proxy that forwards 127.0.0.1:<port> to a target. */
export interface TcpProxy {
  readonly port: number;
  /** Closes the listener and destroys every connection (the dependency is "down"). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Accepts connections and bytes but forwards nothing (a hung dependency). */
  stall(): void;
  /** Forwards again (bytes held while stalled are dropped: connections made while stalled are destroyed). */
  unstall(): void;
  /** Stops for good. */
  close(): Promise<void>;
}

/** Starts a proxy to `targetHost:targetPort` on a free port. */
export async function startProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let stalled = false;
  const stalledSockets = new Set<Socket>();
  const onConnection = (client: Socket) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (stalled) {
      stalledSockets.add(client);
      client.on('data', () => {}); // swallow
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk) => {
      if (!stalled) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!stalled) client.write(chunk);
    });
  };
  let server: Server = createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const stop = async () => {
    if (!server.listening) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return {
    port,
    stop,
    async start() {
      if (server.listening) return;
      server = createServer(onConnection);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
    },
    stall() {
      stalled = true;
    },
    unstall() {
      stalled = false;
      // Connections whose bytes were dropped are out of sync: end them (clients reconnect).
      for (const s of sockets) s.destroy();
      stalledSockets.clear();
    },
    close: stop,
  };
}

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const onCi = process.env.CI === 'true';

async function probePostgres(): Promise<boolean> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** True when PostgreSQL answered. */
export const postgresUp = await probePostgres();
if (!postgresUp && !onCi) {
  console.warn(
    `PostgreSQL health tests SKIPPED: no PostgreSQL at ${PG_URL} (with CI=true they fail instead)`,
  );
}
/** `describe` for PostgreSQL tests: runs when it is up or on CI. */
export const describePostgres = postgresUp || onCi ? describe : describe.skip;

const STATUSES = ['pass', 'warn', 'fail'];
const ROOT_KEYS = [
  'status',
  'version',
  'releaseId',
  'notes',
  'output',
  'checks',
  'links',
  'serviceId',
  'description',
];
const CHECK_KEYS = [
  'componentId',
  'componentType',
  'observedValue',
  'observedUnit',
  'status',
  'affectedEndpoints',
  'time',
  'output',
  'links',
];

/**
 * Validates a document against draft-inadarei-api-health-check-06: field types, allowed statuses,
 * `component:measurement` keys, ISO 8601 times; `output` absent on pass. Throws on the first problem.
 */
export function validateHealthJson(doc: unknown): void {
  expect(doc, 'document').toBeTypeOf('object');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) expect(ROOT_KEYS, `unknown root field ${k}`).toContain(k);
  expect(STATUSES).toContain(d.status);
  for (const k of ['version', 'releaseId', 'output', 'serviceId', 'description']) {
    if (d[k] !== undefined) expect(d[k], k).toBeTypeOf('string');
  }
  if (d.status === 'pass') expect(d.output, 'output is omitted on pass').toBeUndefined();
  if (d.notes !== undefined) {
    expect(Array.isArray(d.notes)).toBe(true);
    for (const n of d.notes as unknown[]) expect(n).toBeTypeOf('string');
  }
  if (d.checks !== undefined) {
    expect(d.checks).toBeTypeOf('object');
    for (const [key, list] of Object.entries(d.checks as Record<string, unknown>)) {
      expect(key, 'checks key').toMatch(/^[^:]+:[^:]+$/);
      expect(Array.isArray(list), `checks.${key} is an array`).toBe(true);
      for (const c of list as Record<string, unknown>[]) {
        for (const k of Object.keys(c)) expect(CHECK_KEYS, `unknown check field ${k}`).toContain(k);
        expect(STATUSES).toContain(c.status);
        for (const k of ['componentId', 'componentType', 'observedUnit', 'output']) {
          if (c[k] !== undefined) expect(c[k], `${key}.${k}`).toBeTypeOf('string');
        }
        if (c.componentType !== undefined)
          expect(['component', 'datastore', 'system']).toContain(c.componentType);
        if (c.time !== undefined) {
          expect(c.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
          expect(Number.isNaN(Date.parse(c.time as string))).toBe(false);
        }
        if (c.componentId !== undefined) expect(key.startsWith(`${c.componentId}:`)).toBe(true);
      }
    }
  }
}
