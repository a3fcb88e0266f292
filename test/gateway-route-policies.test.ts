/**
 * Per-route bulkhead, hedging, response cache and coalescing over real sockets, chaos switched
 * live through the control plane on the admin port, and every endpoint breaker, bulkhead and
 * chaos listed as a component of the gateway's registry.
 */

import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/index.js';
import { createFakeClock, type FakeClock } from '../src/testing/fake-clock.js';
import { config, gatewayTestKit } from './support/gateway.js';

const { up, gateway: start } = gatewayTestKit({
  adminTokens: [{ name: 'olga', role: 'operator', token: 'operator-token-0123456789' }],
});
const gateway = (value: Record<string, unknown>, clock?: FakeClock) =>
  start(value, clock !== undefined ? { clock } : {});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gateway: bulkhead per route', () => {
  it('admits `limit`, queues `queue`, answers 503 problem+json with Retry-After beyond', async () => {
    let inFlight = 0;
    let most = 0;
    const u = await up((_req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end('ok');
      }, 1_000);
    });
    const gw = await gateway(
      config({ api: [u.url] }, [
        {
          name: 'api',
          match: { path: '/' },
          upstream: 'api',
          bulkhead: { limit: 2, queue: 1, queueTimeoutMs: 5_000, retryAfterMs: 2_000 },
        },
      ]),
    );
    const all = await Promise.all(Array.from({ length: 4 }, () => fetch(`${gw.url}/x`)));
    const statuses = all.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 503]);
    const refused = all.find((r) => r.status === 503)!;
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(((await refused.json()) as { title: string }).title).toBe('Bulkhead full');
    expect(most).toBe(2);
    const bh = gw.registry.get('bulkhead', 'api')!.snapshot();
    expect(bh.counters.rejections).toBe(1);
    expect(gw.registry.get('gatewayRoute', 'api')!.snapshot().counters.bulkheadRejections).toBe(1);
    // Slots are given back: the next requests pass.
    expect((await fetch(`${gw.url}/y`)).status).toBe(200);
    expect(gw.registry.get('bulkhead', 'api')!.snapshot().gauges.inFlight).toBe(0);
  });
});

describe('gateway: hedging', () => {
  it('a slow first attempt is hedged to another endpoint; the loser is cancelled', async () => {
    let slowCancelled = false;
    const slow = await up((_req, res) => {
      const t = setTimeout(() => res.end('slow'), 3_000);
      res.on('close', () => {
        if (!res.writableFinished) {
          slowCancelled = true;
          clearTimeout(t);
        }
      });
    });
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
        },
        [{ name: 'api', match: { path: '/' }, upstream: 'api', hedge: { delayMs: 100 } }],
      ),
    );
    const r = await fetch(`${gw.url}/read`);
    expect(await r.text()).toBe('fast');
    const snap = gw.registry.get('gatewayRoute', 'api')!.snapshot();
    expect(snap.counters.hedges).toBe(1);
    expect(snap.counters.hedgeWins).toBe(1);
    await wait(200);
    expect(slowCancelled).toBe(true);
    // A cancelled loser is no evidence against its endpoint: neither its breaker nor outlier
    // detection counts it.
    const slowName = `api/127.0.0.1:${slow.port}`;
    expect(gw.registry.get('gatewayEndpoint', slowName)!.snapshot().counters.failures).toBe(0);
    const breakers = gw.registry.snapshot('circuitBreaker');
    expect(breakers.every((b) => b.counters.failures === 0)).toBe(true);
    // Writes are never hedged.
    const post = await fetch(`${gw.url}/write`, { method: 'POST', body: 'x' });
    expect(await post.text()).toBe('slow');
    expect(gw.registry.get('gatewayRoute', 'api')!.snapshot().counters.hedges).toBe(1);
  }, 15_000);

  it('hedges draw from the retry budget: with every endpoint slow, extra attempts stay bounded', async () => {
    let upstreamRequests = 0;
    const slow = (_req: unknown, res: import('node:http').ServerResponse) => {
      upstreamRequests++;
      setTimeout(() => res.end('late'), 500);
    };
    const a = await up(slow);
    const b = await up(slow);
    const gw = await gateway(
      config({ api: [a.url, b.url] }, [
        {
          name: 'api',
          match: { path: '/' },
          upstream: 'api',
          hedge: { delayMs: 20 },
          retry: { budgetRatio: 0.2 },
        },
      ]),
    );
    const n = 30;
    const bodies = await Promise.all(
      Array.from({ length: n }, () => fetch(`${gw.url}/`).then((r) => r.text())),
    );
    expect(bodies.every((x) => x === 'late')).toBe(true);
    const hedges = gw.registry.get('gatewayRoute', 'api')!.snapshot().counters.hedges!;
    // The budget holds 3 tokens to start with and gains 0.2 per request: at most 3 + 0.2 × 30.
    expect(hedges).toBeGreaterThan(0);
    expect(hedges).toBeLessThanOrEqual(3 + 0.2 * n);
    expect(upstreamRequests).toBeLessThanOrEqual(n + 3 + 0.2 * n);
    expect(gw.registry.get('gatewayUpstream', 'api')!.snapshot().counters.retriesRefused).toBeGreaterThan(0);
  });

  it('an adaptive (quantile) delay starts from initialDelayMs and a fast answer is not hedged', async () => {
    const u1 = await up((_req, res) => res.end('a'));
    const u2 = await up((_req, res) => res.end('b'));
    const gw = await gateway(
      config({ api: [u1.url, u2.url] }, [
        {
          name: 'api',
          match: { path: '/' },
          upstream: 'api',
          hedge: { quantile: 0.9, initialDelayMs: 1_000, minDelayMs: 1_000, minSamples: 5 },
        },
      ]),
    );
    for (let i = 0; i < 10; i++) expect((await fetch(`${gw.url}/r`)).status).toBe(200);
    expect(gw.registry.get('gatewayRoute', 'api')!.snapshot().counters.hedges).toBe(0);
  });
});

describe('gateway: response cache', () => {
  it('honours max-age, Vary, no-store, private; serves Age and Cache-Status; expires on the clock', async () => {
    const hits: string[] = [];
    const u = await up((req, res) => {
      hits.push(req.url!);
      if (req.url === '/nostore') res.setHeader('cache-control', 'no-store');
      else if (req.url === '/private') res.setHeader('cache-control', 'private, max-age=60');
      else {
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('vary', 'accept-language');
      }
      res.end(`${req.url} ${req.headers['accept-language'] ?? ''} #${hits.length}`);
    });
    const clock = createFakeClock({ date: Date.UTC(2026, 0, 1) });
    const gw = await gateway(
      config({ api: [u.url] }, [{ name: 'api', match: { path: '/' }, upstream: 'api', cache: true }]),
      clock,
    );
    const get = (p: string, headers: Record<string, string> = {}) => fetch(`${gw.url}${p}`, { headers });
    const first = await get('/a', { 'accept-language': 'en' });
    expect(first.headers.get('cache-status')).toBe('bulwark; fwd=miss');
    expect(await first.text()).toBe('/a en #1');
    await clock.tick(5_000);
    const second = await get('/a', { 'accept-language': 'en' });
    expect(await second.text()).toBe('/a en #1');
    expect(second.headers.get('cache-status')).toBe('bulwark; hit');
    expect(second.headers.get('age')).toBe('5');
    expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    // Another variant (Vary: accept-language) is a miss.
    expect(await (await get('/a', { 'accept-language': 'fr' })).text()).toBe('/a fr #2');
    // no-store and private are never stored.
    await get('/nostore');
    await get('/nostore');
    await get('/private');
    await get('/private');
    expect(hits.filter((h) => h === '/nostore')).toHaveLength(2);
    expect(hits.filter((h) => h === '/private')).toHaveLength(2);
    // A request's no-cache goes upstream (and refreshes the copy).
    expect(await (await get('/a', { 'accept-language': 'en', 'cache-control': 'no-cache' })).text()).toBe(
      '/a en #7',
    );
    expect(await (await get('/a', { 'accept-language': 'en' })).text()).toBe('/a en #7');
    // Past max-age: fetched again.
    await clock.tick(61_000);
    expect(await (await get('/a', { 'accept-language': 'en' })).text()).toBe('/a en #8');
    const c = gw.registry.get('gatewayRoute', 'api')!.snapshot().counters;
    expect(c.cacheHits).toBe(2);
  });

  it('stale-while-revalidate: the stale copy is served and refreshed once in the background', async () => {
    let n = 0;
    const u = await up((_req, res) => {
      n++;
      res.setHeader('cache-control', 'max-age=1, stale-while-revalidate=30');
      res.end(`v${n}`);
    });
    const clock = createFakeClock({ date: Date.UTC(2026, 0, 1) });
    const gw = await gateway(
      config({ api: [u.url] }, [{ name: 'api', match: { path: '/' }, upstream: 'api', cache: {} }]),
      clock,
    );
    expect(await (await fetch(`${gw.url}/s`)).text()).toBe('v1');
    await clock.tick(2_000);
    const stale = await fetch(`${gw.url}/s`);
    expect(stale.headers.get('cache-status')).toBe('bulwark; hit; stale');
    expect(await stale.text()).toBe('v1');
    for (let i = 0; i < 50 && n < 2; i++) await wait(20);
    expect(n).toBe(2);
    expect(await (await fetch(`${gw.url}/s`)).text()).toBe('v2');
  });
});

describe('gateway: coalescing', () => {
  it('identical GETs in flight share one upstream request; another Authorization does not', async () => {
    const seen: string[] = [];
    const u = await up((req, res) => {
      seen.push(String(req.headers.authorization ?? '-'));
      setTimeout(() => res.end(`body for ${req.headers.authorization ?? '-'}`), 800);
    });
    const gw = await gateway(
      config({ api: [u.url] }, [{ name: 'api', match: { path: '/' }, upstream: 'api', coalesce: true }]),
    );
    const same = Array.from({ length: 5 }, () => fetch(`${gw.url}/item/1`).then((r) => r.text()));
    await wait(50);
    const other = fetch(`${gw.url}/item/1`, { headers: { authorization: 'Bearer b' } }).then((r) => r.text());
    const bodies = await Promise.all(same);
    expect(bodies.every((b) => b === 'body for -')).toBe(true);
    expect(await other).toBe('body for Bearer b');
    expect(seen.sort()).toEqual(['-', 'Bearer b']);
    expect(gw.registry.get('gatewayRoute', 'api')!.snapshot().counters.coalesced).toBe(4);
    // Once answered, the next GET makes its own request.
    await fetch(`${gw.url}/item/1`).then((r) => r.text());
    expect(seen).toHaveLength(3);
  });

  it('a client that leaves does not cancel the request the others wait on', async () => {
    let upstreamClosedEarly = false;
    const u = await up((_req, res) => {
      const t = setTimeout(() => res.end('done'), 1_000);
      res.on('close', () => {
        if (!res.writableFinished) {
          upstreamClosedEarly = true;
          clearTimeout(t);
        }
      });
    });
    const gw = await gateway(
      config({ api: [u.url] }, [{ name: 'api', match: { path: '/' }, upstream: 'api', coalesce: true }]),
    );
    const ac = new AbortController();
    const leaver = fetch(`${gw.url}/z`, { signal: ac.signal }).catch(() => 'aborted');
    await wait(50);
    const stayer = fetch(`${gw.url}/z`).then((r) => r.text());
    await wait(50);
    ac.abort();
    expect(await leaver).toBe('aborted');
    expect(await stayer).toBe('done');
    expect(upstreamClosedEarly).toBe(false);
    // Clients that give up are not counted against the endpoint.
    const quitters = Array.from({ length: 6 }, async (_, i) => {
      const c = new AbortController();
      const p = fetch(`${gw.url}/q${i}`, { signal: c.signal }).catch(() => 'aborted');
      await wait(50);
      c.abort();
      return p;
    });
    await Promise.all(quitters);
    await wait(100);
    expect(gw.registry.snapshot('circuitBreaker')[0]!.counters.failures).toBe(0);
    expect(gw.registry.snapshot('circuitBreaker')[0]!.state).toBe('closed');
    expect(gw.registry.snapshot('gatewayEndpoint')[0]!.counters.failures).toBe(0);
  });
});

describe('gateway: components on the control plane', () => {
  it('route chaos is switched live through the admin port; breakers are listed and operable', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const gw = await gateway({
      ...config({ api: [u.url] }, [
        {
          name: 'pay',
          match: { path: '/' },
          upstream: 'api',
          chaos: { enabled: false, status: 503 },
          bulkhead: { limit: 10 },
        },
      ]),
      admin: '127.0.0.1:0',
    });
    const api = `${gw.admin!.url}/dashboard/api`;
    const auth = { authorization: 'Bearer operator-token-0123456789', 'content-type': 'application/json' };
    const { components } = (await (await fetch(`${api}/components`, { headers: auth })).json()) as {
      components: { kind: string; name: string }[];
    };
    const kinds = new Set(components.map((c) => `${c.kind}/${c.name}`));
    expect(kinds.has('gatewayChaos/pay')).toBe(true);
    expect(kinds.has('bulkhead/pay')).toBe(true);
    const breaker = components.find((c) => c.kind === 'circuitBreaker');
    expect(breaker).toBeDefined();
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
    const act = (kind: string, name: string, op: string, input: unknown = {}) =>
      fetch(`${api}/components/${kind}/${encodeURIComponent(name)}/actions/${op}`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ reason: 'game day', input }),
      });
    expect((await act('gatewayChaos', 'pay', 'enable')).status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(503);
    expect((await act('gatewayChaos', 'pay', 'setRate', { rate: 0 })).status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
    expect((await act('gatewayChaos', 'pay', 'disable')).status).toBe(200);
    expect(gw.registry.get('gatewayChaos', 'pay')!.snapshot().state).toBe('off');
    // Forcing the only endpoint's breaker open: the request gets 503 from the breaker.
    expect((await act('circuitBreaker', breaker!.name, 'forceOpen')).status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(503);
    expect((await act('circuitBreaker', breaker!.name, 'reset')).status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
  });

  it('client limits are components: an operator looks a client up and gives it its allowance back', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const gw = await gateway({
      ...config({ api: [u.url] }, [
        {
          name: 'api',
          match: { path: '/' },
          upstream: 'api',
          limits: [{ name: 'per-ip', key: 'ip', limit: 1, windowMs: 60_000 }],
        },
      ]),
      admin: '127.0.0.1:0',
    });
    const api = `${gw.admin!.url}/dashboard/api/components/gatewayClientLimit/${encodeURIComponent('api/per-ip')}`;
    const auth = { authorization: 'Bearer operator-token-0123456789', 'content-type': 'application/json' };
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(429);
    const snap = (await (await fetch(api, { headers: auth })).json()) as {
      snapshot: { gauges: { clients: number } };
    };
    expect(snap.snapshot.gauges.clients).toBe(1);
    const peek = await fetch(`${api}/views/peek?client=127.0.0.1`, { headers: auth });
    expect(((await peek.json()) as { allowed: boolean }).allowed).toBe(false);
    const reset = await fetch(`${api}/actions/reset`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ reason: 'customer call', input: { client: '127.0.0.1' } }),
    });
    expect(reset.status).toBe(200);
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
  });

  it('reload: an unchanged route keeps its live chaos switch; a removed route leaves the registry', async () => {
    const u = await up((_req, res) => res.end('ok'));
    const routes = [
      { name: 'a', match: { path: '/a' }, upstream: 'api', chaos: { enabled: false, status: 418 } },
      {
        name: 'b',
        match: { path: '/b' },
        upstream: 'api',
        bulkhead: { limit: 5 },
        chaos: { enabled: false, status: 503 },
        limits: [{ key: 'ip', limit: 100, windowMs: 1_000 }],
      },
    ];
    const gw = await gateway(config({ api: [u.url] }, routes));
    const ctx = { actor: 'test', reason: 'test', dryRun: false };
    await gw.registry.get('gatewayChaos', 'a')!.operations!()
      .find((o) => o.name === 'enable')!
      .run({}, ctx);
    expect((await fetch(`${gw.url}/a`)).status).toBe(418);
    const r = await gw.reload(parseGatewayConfig(config({ api: [u.url] }, [routes[0]!])));
    expect(r.replaced.routes).toBe(0);
    expect((await fetch(`${gw.url}/a`)).status).toBe(418); // the switch held
    expect(gw.registry.get('gatewayChaos', 'b')).toBeUndefined();
    expect(gw.registry.get('bulkhead', 'b')).toBeUndefined();
    expect(gw.registry.list('gatewayClientLimit')).toEqual([]);
    // Breakers follow their upstream group: still one per endpoint after the reload.
    expect(gw.registry.list('circuitBreaker')).toHaveLength(1);
  });
});
