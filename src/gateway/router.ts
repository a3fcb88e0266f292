/**
 * Route matching: host (exact or `*.suffix`), path (segment-wise prefix, exact, or a pattern with
 * `:params`), methods and headers; first match in file order wins. Also the path rewrite
 * (prefix strip, prefix replace, `:param` substitution).
 * @module
 */

import type { RouteConfig } from './config.js';

/** A compiled route matcher. */
export interface RouteMatcher {
  /** The forwarded path (with query) when the request matches, else null. */
  match(
    method: string,
    host: string,
    path: string,
    query: string,
    headers: Record<string, string | string[] | undefined>,
  ): string | null;
}

function hostMatcher(host: string | undefined): ((h: string) => boolean) | null {
  if (host === undefined) return null;
  const want = host.toLowerCase();
  if (want.startsWith('*.')) {
    const suffix = want.slice(1);
    return (h) => h.endsWith(suffix) && h.length > suffix.length;
  }
  return (h) => h === want;
}

function patternRegex(pattern: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const src = pattern
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        names.push(seg.slice(1));
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { re: new RegExp(`^${src}(/.*)?$`), names };
}

/**
 * Compiles a route's `match`, `stripPrefix` and `rewrite`.
 *
 * @example
 * ```ts
 * import { compileRoute } from 'bulwark/gateway';
 * const m = compileRoute({ match: { pattern: '/users/:id' }, rewrite: '/v2/users/:id' } as never);
 * console.log(m.match('GET', 'api', '/users/7/orders', '?x=1', {})); // /v2/users/7/orders?x=1
 * ```
 */
export function compileRoute(route: Pick<RouteConfig, 'match' | 'stripPrefix' | 'rewrite'>): RouteMatcher {
  const m = route.match;
  const host = hostMatcher(m.host);
  const methods = m.methods === undefined ? null : new Set(m.methods);
  const headers =
    m.headers === undefined ? null : Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), v] as const);
  const prefix = m.path === undefined ? undefined : m.path.length > 1 ? m.path.replace(/\/$/, '') : '/';
  const pattern = m.pattern === undefined ? null : patternRegex(m.pattern);
  const rewrite = route.rewrite;
  const strip = route.stripPrefix === true;

  return {
    match(method, reqHost, path, query, reqHeaders) {
      if (methods !== null && !methods.has(method)) return null;
      if (host !== null) {
        const h = reqHost.toLowerCase();
        const colon = h.lastIndexOf(':');
        if (!host(colon > 0 && !h.endsWith(']') ? h.slice(0, colon) : h)) return null;
      }
      if (headers !== null) {
        for (const [k, v] of headers) {
          const got = reqHeaders[k];
          if (got === undefined || (v !== '*' && (Array.isArray(got) ? !got.includes(v) : got !== v)))
            return null;
        }
      }
      let rest: string;
      let params: string[] | null = null;
      let names: string[] = [];
      if (m.exact !== undefined) {
        if (path !== m.exact) return null;
        rest = '';
      } else if (pattern !== null) {
        const r = pattern.re.exec(path);
        if (r === null) return null;
        params = r.slice(1, 1 + pattern.names.length) as string[];
        names = pattern.names;
        rest = r[1 + pattern.names.length] ?? '';
      } else if (prefix !== undefined && prefix !== '/') {
        if (!path.startsWith(prefix)) return null;
        rest = path.slice(prefix.length);
        if (rest !== '' && rest[0] !== '/') return null;
      } else {
        rest = path.slice(1);
        if (rewrite === undefined && !strip) return path + query;
        return joinPath(rewrite ?? '/', rest) + query;
      }
      if (rewrite !== undefined) {
        let base = rewrite;
        if (params !== null) {
          for (let i = 0; i < names.length; i++) base = base.replace(`:${names[i]}`, params[i]!);
        }
        return joinPath(base, rest) + query;
      }
      if (strip) return (rest === '' ? '/' : rest) + query;
      return path + query;
    },
  };
}

function joinPath(base: string, rest: string): string {
  if (rest === '' || rest === '/') return base === '' ? '/' : base;
  const r = rest[0] === '/' ? rest : `/${rest}`;
  return base.endsWith('/') ? base + r.slice(1) : base + r;
}
