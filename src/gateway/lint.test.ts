import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from './config.js';
import { lintGatewayConfig } from './lint.js';

const base = {
  listen: '127.0.0.1:8080',
  upstreams: {
    one: { endpoints: [{ url: 'http://127.0.0.1:7001' }] },
    two: { endpoints: [{ url: 'http://127.0.0.1:7001' }, { url: 'http://127.0.0.1:7002' }] },
  },
};
const lint = (routes: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
  lintGatewayConfig(parseGatewayConfig({ ...base, ...extra, routes })).map((f) => f.option);

describe('gateway check: route policies', () => {
  it('warns about hedged writes, hedging one endpoint and a delay past the timeout', () => {
    expect(lint([{ match: { path: '/' }, upstream: 'two', hedge: { delayMs: 50 } }])).toEqual([]);
    expect(
      lint([
        {
          match: { path: '/' },
          upstream: 'one',
          timeoutMs: 100,
          hedge: { delayMs: 100, methods: ['GET', 'POST'] },
        },
      ]),
    ).toEqual(['routes[0].hedge.methods', 'routes[0].hedge', 'routes[0].hedge.delayMs']);
  });

  it('warns when a shared cache or coalescing ignores the header that tells clients apart', () => {
    const limits = [{ key: 'apiKey', limit: 10, windowMs: 1000 }];
    expect(lint([{ match: { path: '/' }, upstream: 'two', limits, cache: true, coalesce: true }])).toEqual([
      'routes[0].cache',
      'routes[0].coalesce',
    ]);
    expect(
      lint([
        {
          match: { path: '/' },
          upstream: 'two',
          limits,
          cache: { keyHeaders: ['X-Api-Key'] },
          coalesce: { keyHeaders: ['x-api-key'] },
        },
      ]),
    ).toEqual([]);
  });

  it('warns about a bulkhead wait as long as the timeout, chaos on at start, and h2c', () => {
    expect(
      lint(
        [
          {
            match: { path: '/' },
            upstream: 'two',
            timeoutMs: 1000,
            bulkhead: { limit: 1, queue: 5, queueTimeoutMs: 1000 },
            chaos: { status: 503, rate: 0.1 },
          },
        ],
        { http2: true },
      ),
    ).toEqual(['routes[0].bulkhead.queueTimeoutMs', 'routes[0].chaos', 'http2']);
  });

  it('refuses a hedge with both or neither of delayMs and quantile', () => {
    expect(() => lint([{ match: { path: '/' }, upstream: 'two', hedge: {} }])).toThrow(/hedge/);
    expect(() =>
      lint([{ match: { path: '/' }, upstream: 'two', hedge: { delayMs: 5, quantile: 0.9 } }]),
    ).toThrow(/exactly one of delayMs, quantile/);
  });
});
