import { describe, expect, it } from 'vitest';
import { compileRoute } from './router.js';

const m = (match: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  compileRoute({ match, stripPrefix: false, ...extra } as never);

describe('compileRoute', () => {
  it('prefixes match whole segments', () => {
    const r = m({ path: '/pay' });
    expect(r.match('GET', 'h', '/pay', '', {})).toBe('/pay');
    expect(r.match('GET', 'h', '/pay/x', '?a=1', {})).toBe('/pay/x?a=1');
    expect(r.match('GET', 'h', '/payments', '', {})).toBeNull();
  });
  it('strips and rewrites', () => {
    expect(m({ path: '/api' }, { stripPrefix: true }).match('GET', 'h', '/api/v1/x', '', {})).toBe('/v1/x');
    expect(m({ path: '/api' }, { stripPrefix: true }).match('GET', 'h', '/api', '', {})).toBe('/');
    expect(m({ path: '/old' }, { rewrite: '/new' }).match('GET', 'h', '/old/a', '', {})).toBe('/new/a');
    expect(
      m({ pattern: '/u/:id/o/:oid' }, { rewrite: '/orders/:oid/user/:id' }).match(
        'GET',
        'h',
        '/u/1/o/2',
        '',
        {},
      ),
    ).toBe('/orders/2/user/1');
  });
  it('host, methods and headers', () => {
    const r = m({ host: '*.example.com', methods: ['POST'], headers: { 'x-v': '2', 'x-any': '*' } });
    const h = { 'x-v': '2', 'x-any': 'q' };
    expect(r.match('POST', 'a.example.com:8080', '/x', '', h)).toBe('/x');
    expect(r.match('GET', 'a.example.com', '/x', '', h)).toBeNull();
    expect(r.match('POST', 'example.com', '/x', '', h)).toBeNull();
    expect(r.match('POST', 'a.example.com', '/x', '', { 'x-v': '1', 'x-any': 'q' })).toBeNull();
  });
});
