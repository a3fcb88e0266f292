/**
 * Store-and-forward of keyed writes over real sockets and processes: 202 + status URL while the
 * upstream is down, 409 in flight, 422 for another payload, replay after completion, delivery
 * once when the upstream returns — and after a SIGKILL of the gateway with writes queued.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Gateway, parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { type TestUpstream, upstream } from './support/gateway.js';
import { startGatewayProcess } from './support/gateway-process.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freePort(): Promise<number> {
  const u = await upstream(() => {});
  await u.close();
  return u.port;
}

/** An upstream that records each Idempotency-Key it committed. */
async function recorder(port: number, seen: Map<string, number>, delayMs = 0): Promise<TestUpstream> {
  const u = await upstream((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      setTimeout(() => {
        seen.set(key, (seen.get(key) ?? 0) + 1);
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ key, body }));
      }, delayMs);
    });
  }, port);
  cleanups.push(() => u.close());
  return u;
}

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-saf-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const post = (url: string, key: string, body: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'idempotency-key': key, 'content-type': 'application/json' },
    body,
  });

describe('gateway: store-and-forward', () => {
  it('202 + status URL while down, 409 in flight, 422 other payload, delivered once when back, replayed after', async () => {
    const port = await freePort();
    const slowPort = await freePort();
    const seen = new Map<string, number>();
    const dataDir = tmp();
    const gw: Gateway = await startGateway({
      config: parseGatewayConfig({
        listen: '127.0.0.1:0',
        accessLog: false,
        dataDir,
        upstreams: {
          pay: { endpoints: [{ url: `http://127.0.0.1:${port}` }] },
          slow: { endpoints: [{ url: `http://127.0.0.1:${slowPort}` }] },
        },
        routes: [
          { match: { path: '/pay' }, upstream: 'pay', storeAndForward: true, retry: { maxAttempts: 2 } },
          { match: { path: '/slow' }, upstream: 'slow', storeAndForward: true },
        ],
      }),
    });
    cleanups.push(() => gw.close(100));
    const r1 = await post(`${gw.url}/pay/charge`, 'k1', '{"amount":10}');
    expect(r1.status).toBe(202);
    const location = r1.headers.get('location')!;
    expect(location).toMatch(/^\/_bulwark\/ops\//);
    expect(((await (await fetch(`${gw.url}${location}`)).json()) as { state: string }).state).toBe('pending');
    const again = await post(`${gw.url}/pay/charge`, 'k1', '{"amount":10}');
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(location);
    expect((await post(`${gw.url}/pay/charge`, 'k1', '{"amount":99}')).status).toBe(422);
    // The write queue is a registered component (admin API, dashboard, /metrics).
    const queue = gw.registry.get('durableQueue', 'gateway-writes') as
      | { stats(): Promise<{ pending: number }> }
      | undefined;
    expect(queue).toBeDefined();
    expect((await queue!.stats()).pending).toBe(1);
    expect(gw.registry.snapshot('durableQueue')[0]?.gauges.pending).toBe(1);

    await recorder(port, seen);
    const deadline = Date.now() + 15_000;
    let state = 'pending';
    while (state !== 'delivered' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = ((await (await fetch(`${gw.url}${location}`)).json()) as { state: string }).state;
    }
    expect(state).toBe('delivered');
    expect(seen.get('k1')).toBe(1);
    const replay = await post(`${gw.url}/pay/charge`, 'k1', '{"amount":10}');
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replay.json()) as { key: string }).key).toBe('k1');
    expect(seen.get('k1')).toBe(1);

    // Delivered at once when the upstream is up; a concurrent repeat is 409.
    await recorder(slowPort, seen, 300);
    const [a, b] = await Promise.all([
      post(`${gw.url}/slow`, 'k2', 'x'),
      new Promise((r) => setTimeout(r, 50)).then(() => post(`${gw.url}/slow`, 'k2', 'x')),
    ]);
    expect(a.status).toBe(201);
    expect(b.status).toBe(409);
    expect(b.headers.get('retry-after')).toBe('1');
    expect(seen.get('k2')).toBe(1);
  });

  it('the gateway SIGKILLed with writes queued: all delivered after restart, each once', async () => {
    const port = await freePort();
    const dir = tmp();
    const file = join(dir, 'bulwark.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:0\naccessLog: false\ndataDir: ${join(dir, 'data')}\nupstreams:\n  pay:\n    endpoints: [{ url: "http://127.0.0.1:${port}" }]\nroutes:\n  - match: { path: /pay }\n    upstream: pay\n    storeAndForward: true\n`,
    );
    const first = await startGatewayProcess(file);
    cleanups.push(() => first.kill());
    const n = 30;
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        post(`${first.url}/pay`, `order-${i}`, `{"i":${i}}`).then((r) => r.status),
      ),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);
    first.kill('SIGKILL');
    await first.exited;
    const seen = new Map<string, number>();
    await recorder(port, seen);
    const second = await startGatewayProcess(file);
    cleanups.push(() => second.kill());
    const deadline = Date.now() + 30_000;
    while (seen.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.size).toBe(n);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
  });
});
