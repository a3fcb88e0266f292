/**
 * Per-route policies over real sockets: priority shedding (critical never shed, counted), active
 * health checks moving traffic, chaos per route, the per-try timeout retrying on another
 * endpoint, and the Prometheus text on the admin port.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { type Gateway, parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { config, type TestUpstream, upstream } from './support/gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function up(handler: Parameters<typeof upstream>[0]): Promise<TestUpstream> {
  const u = await upstream(handler);
  cleanups.push(() => u.close());
  return u;
}

async function gateway(value: Record<string, unknown>): Promise<Gateway> {
  const gw = await startGateway({ config: parseGatewayConfig(value) });
  cleanups.push(() => gw.close(100));
  return gw;
}

describe('gateway: per-route policies', () => {
  it('sheds low priority first under load; critical is never shed and is counted', async () => {
    const u = await up((_req, res) => setTimeout(() => res.end('ok'), 200));
    const gw = await gateway(
      config({ api: [u.url] }, [
        { name: 'api', match: { path: '/' }, upstream: 'api', priority: { shedAt: 4 } },
      ]),
    );
    const send = (p: string) => fetch(`${gw.url}/`, { headers: { 'x-priority': p } }).then((r) => r.status);
    const busy = Array.from({ length: 4 }, () => send('normal'));
    await new Promise((r) => setTimeout(r, 50));
    const [low, critical] = await Promise.all([send('low'), send('critical')]);
    expect(low).toBe(503);
    expect(critical).toBe(200);
    expect((await Promise.all(busy)).every((s) => s === 200)).toBe(true);
    const snap = gw.registry.get('gatewayRoute', 'api')!.snapshot();
    expect(snap.counters.shed).toBe(1);
    expect(snap.counters.criticalBypass).toBe(1);
  });

  it('active health checks take a failing endpoint out and bring it back', async () => {
    let ready = true;
    const a = await up((req, res) => {
      if (req.url === '/readyz') {
        res.writeHead(ready ? 200 : 503);
        res.end();
        return;
      }
      res.end('a');
    });
    const b = await up((_req, res) => res.end('b'));
    const gw = await gateway(
      config(
        {
          api: {
            endpoints: [{ url: a.url }, { url: b.url }],
            healthCheck: { path: '/readyz', intervalMs: 30, unhealthyThreshold: 2, healthyThreshold: 2 },
          },
        },
        [{ match: { path: '/' }, upstream: 'api' }],
      ),
    );
    ready = false;
    await new Promise((r) => setTimeout(r, 300));
    const bodies = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${gw.url}/`).then((r) => r.text())),
    );
    expect(bodies.every((x) => x === 'b')).toBe(true);
    ready = true;
    await new Promise((r) => setTimeout(r, 300));
    const again = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${gw.url}/`).then((r) => r.text())),
    );
    expect(again).toContain('a');
  });

  it('the per-try timeout retries a slow endpoint on another; the route timeout answers 504', async () => {
    const slow = await up((_req, res) => setTimeout(() => res.end('slow'), 3_000));
    const fast = await up((_req, res) => res.end('fast'));
    const gw = await gateway(
      config(
        {
          api: {
            strategy: 'priority',
            endpoints: [
              { url: slow.url, priority: 0 },
              { url: fast.url, priority: 1 },
            ],
          },
          only: [slow.url],
        },
        [
          {
            match: { path: '/a' },
            upstream: 'api',
            perTryTimeoutMs: 400,
            timeoutMs: 2_500,
            retry: { maxAttempts: 3 },
          },
          { match: { path: '/b' }, upstream: 'only', timeoutMs: 300 },
        ],
      ),
    );
    const r = await fetch(`${gw.url}/a`);
    expect(await r.text()).toBe('fast');
    const t = await fetch(`${gw.url}/b`);
    expect(t.status).toBe(504);
    expect(((await t.json()) as { title: string }).title).toBe('Upstream timeout');
  });

  it('chaos per route injects a status; /metrics serves Prometheus text from the components', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const gw = await gateway({
      ...config({ api: [u.url] }, [
        { name: 'chaotic', match: { path: '/c' }, upstream: 'api', chaos: { status: 503, rate: 1 } },
        { name: 'plain', match: { path: '/' }, upstream: 'api' },
      ]),
      admin: '127.0.0.1:0',
    });
    expect((await fetch(`${gw.url}/c`)).status).toBe(503);
    expect((await fetch(`${gw.url}/p`)).status).toBe(200);
    const text = await (await fetch(`${gw.admin!.url}/metrics`)).text();
    expect(text).toContain('bulwark_gateway_route_requests_total{name="chaotic"} 1');
    expect(text).toContain('bulwark_gateway_route_responses5xx_total{name="chaotic"} 1');
    expect(text).toMatch(/bulwark_gateway_endpoint_successes_total\{name="api\/127\.0\.0\.1:\d+"\} 1/);
    expect((await fetch(`${gw.admin!.url}/readyz`)).status).toBe(200);
  });
});
