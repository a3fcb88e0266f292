import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { parseGatewayConfig } from './config.js';
import { Route } from './route.js';

function route(extra: Record<string, unknown>): Route {
  const config = parseGatewayConfig({
    listen: '127.0.0.1:0',
    upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:1' }] } },
    routes: [{ match: { path: '/' }, upstream: 'api', ...extra }],
  });
  return new Route(config.routes[0]!, 0, {} as never);
}

describe('Route', () => {
  it('refuses added headers and rewrites that would break out of the request head', () => {
    expect(route({ requestHeaders: { add: { 'x-ok': 'fine' } } }).requestAdd).toEqual([['x-ok', 'fine']]);
    const value = () => route({ requestHeaders: { add: { 'x-a': 'a\r\nx-injected: 1' } } });
    expect(value).toThrow(ConfigError);
    expect(value).toThrow(/routes\[0\]\.requestHeaders\.add\.x-a/);
    expect(() => route({ responseHeaders: { add: { 'bad name': 'v' } } })).toThrow(
      /header names that are HTTP tokens/,
    );
    expect(() => route({ rewrite: '/a HTTP/1.1\r\nx: y' })).toThrow(/routes\[0\]\.rewrite/);
  });
});
