/**
 * Active health checks per endpoint through bulwark/health, over real sockets: the expected
 * statuses and thresholds, an endpoint leaving the rotation and coming back, the checks and the
 * endpoint's state on the admin API, the change on the event stream, and reload keeping or
 * replacing the checks.
 */

import { describe, expect, it } from 'vitest';
import type { ComponentEvent } from '../src/core/component.js';
import { parseGatewayConfig } from '../src/gateway/index.js';
import { config, gatewayTestKit } from './support/gateway.js';

const { up, gateway } = gatewayTestKit();

const until = async (what: () => boolean | Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('gateway: active health checks', () => {
  it('an endpoint failing its check leaves the rotation, is shown on the admin API, and returns', async () => {
    let status = 204;
    const checked: string[] = [];
    const a = await up((req, res) => {
      if (req.url === '/healthz') {
        checked.push(String(req.method));
        res.writeHead(status);
        res.end();
        return;
      }
      res.end('a');
    });
    const b = await up((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(204);
        res.end();
        return;
      }
      res.end('b');
    });
    const hc = {
      path: '/healthz',
      intervalMs: 25,
      timeoutMs: 500,
      expectStatus: [204],
      unhealthyThreshold: 2,
      healthyThreshold: 2,
    };
    const gw = await gateway({
      ...config({ api: { endpoints: [{ url: a.url }, { url: b.url }], healthCheck: hc } }, [
        { match: { path: '/' }, upstream: 'api' },
      ]),
      admin: '127.0.0.1:0',
    });
    const events: ComponentEvent[] = [];
    gw.onEvent((e) => events.push(e));
    const admin = gw.admin!.url;
    const endpointState = async () => {
      const list = (await (await fetch(`${admin}/admin/endpoints`)).json()) as {
        name: string;
        state: string;
      }[];
      return list.find((e) => e.name.endsWith(`:${a.port}`))!.state;
    };
    await until(async () => checked.length >= 2);
    expect(checked.every((m) => m === 'GET')).toBe(true);
    expect(await endpointState()).toBe('healthy');

    status = 500; // not in expectStatus
    await until(async () => (await endpointState()) === 'unhealthy');
    const bodies = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${gw.url}/`).then((r) => r.text())),
    );
    expect(bodies.every((x) => x === 'b')).toBe(true);
    const checks = (await (await fetch(`${admin}/admin/health`)).json()) as {
      name: string;
      state: string;
      counters: { failures: number };
    }[];
    const mine = checks.find((c) => c.name.endsWith(`_${a.port}`))!;
    expect(mine.state).toBe('fail');
    expect(mine.counters.failures).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => e.event === 'unhealthy' && e.name.endsWith(`:${a.port}`))).toBe(true);

    status = 204;
    await until(async () => (await endpointState()) === 'healthy');
    expect(events.some((e) => e.event === 'healthy')).toBe(true);
    const again = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${gw.url}/`).then((r) => r.text())),
    );
    expect(again).toContain('a');

    // A reload that changes the group replaces its checks (no duplicate components).
    const r = await gw.reload(
      parseGatewayConfig(
        config({ api: { endpoints: [{ url: b.url }], healthCheck: hc } }, [
          { match: { path: '/' }, upstream: 'api' },
        ]),
      ),
    );
    expect(r.ok).toBe(true);
    expect(gw.registry.list('healthCheck').map((c) => c.name)).toEqual([`api/127.0.0.1_${b.port}`]);
    expect(gw.registry.list('healthMonitor')).toHaveLength(1);
  });
});
