/**
 * HTTP endpoints for a health monitor: `/health` (and `/health/<group>`), `/livez`, `/readyz`,
 * `/startupz` and `/metrics`, for node:http, Express and Fastify. Bodies are
 * `application/health+json`; status 200 for pass/warn, 503 for fail; `Cache-Control: no-store`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../core/errors.js';
import { reportError } from '../core/events.js';
import { s } from '../core/schema.js';
import type { HealthMonitor } from './monitor.js';
import { fn, parse } from './options.js';

/**
 * The health+json media type.
 *
 * @example
 * ```ts
 * import { HEALTH_JSON } from 'bulwark/health';
 * console.log(HEALTH_JSON); // application/health+json
 * ```
 */
export const HEALTH_JSON = 'application/health+json';

/** What a metrics exporter returns (bulwark/metrics' Prometheus exporter fits). */
export interface MetricsBody {
  readonly contentType: string;
  readonly body: string;
}

/** Who may see details (observed values, outputs, version): `never` (default), `always`, or a predicate on the request. */
export type DetailsPolicy = 'always' | 'never' | ((req: IncomingMessage) => boolean);

/** Paths of the endpoints; `false` disables one. */
export interface HealthPaths {
  /** Default `/health` (groups at `/health/<group>`). */
  health?: string | false;
  /** Default `/livez`. */
  live?: string | false;
  /** Default `/readyz`. */
  ready?: string | false;
  /** Default `/startupz`. */
  startup?: string | false;
  /** Default `/metrics` (served only when `metrics` is given). */
  metrics?: string | false;
}

/** Options of `healthHandler`, `expressHealth` and `fastifyHealth`. */
export interface HealthHandlerOptions {
  /**
   * Who sees details. Default `never`: the body then holds each check's status, componentId,
   * componentType and time, but no observed values, outputs, version, releaseId or notes — safe
   * for an endpoint a load balancer or the public can reach. Use a predicate to show details to
   * authenticated operators, e.g. `(req) => req.headers.authorization === \`Bearer ${token}\``.
   */
  details?: DetailsPolicy;
  /** Serves `/metrics` from this function (e.g. bulwark/metrics' Prometheus exporter). */
  metrics?: () => Promise<MetricsBody> | MetricsBody;
  paths?: HealthPaths;
  /** `Cache-Control` of every answer. Default `no-store`. */
  cacheControl?: string;
}

/** An answer: status, headers, body. @internal */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const pathSchema = s.optional(
  s.union(
    [s.string({ pattern: /^\/[^?#]*$/, patternRule: 'a path starting with "/"' }), s.oneOf([false])],
    'a path starting with "/", or false',
  ),
);
const optionsSchema = s.object({
  details: s.optional(
    s.union(
      [s.oneOf(['always', 'never'] as const), fn<(req: IncomingMessage) => boolean>()],
      "'always', 'never' or a function",
    ),
  ),
  metrics: s.optional(fn<() => MetricsBody>()),
  paths: s.optional(
    s.object({
      health: pathSchema,
      live: pathSchema,
      ready: pathSchema,
      startup: pathSchema,
      metrics: pathSchema,
    }),
  ),
  cacheControl: s.optional(s.string()),
});

interface Resolved {
  readonly details: DetailsPolicy;
  readonly metrics: HealthHandlerOptions['metrics'];
  readonly health: string | false;
  readonly live: string | false;
  readonly ready: string | false;
  readonly startup: string | false;
  readonly metricsPath: string | false;
  readonly cacheControl: string;
}

function resolve(owner: string, options: HealthHandlerOptions): Resolved {
  const o = parse(owner, optionsSchema, options);
  const p: Partial<NonNullable<typeof o.paths>> = o.paths ?? {};
  return {
    details: o.details ?? 'never',
    metrics: options.metrics,
    health: p.health ?? '/health',
    live: p.live ?? '/livez',
    ready: p.ready ?? '/readyz',
    startup: p.startup ?? '/startupz',
    metricsPath: o.metrics === undefined ? false : (p.metrics ?? '/metrics'),
    cacheControl: o.cacheControl ?? 'no-store',
  };
}

function json(status: number, doc: unknown, r: Resolved): Answer {
  return {
    status,
    headers: { 'content-type': HEALTH_JSON, 'cache-control': r.cacheControl },
    body: JSON.stringify(doc),
  };
}

function allowDetails(r: Resolved, req: IncomingMessage): boolean {
  if (r.details === 'always') return true;
  if (r.details === 'never') return false;
  try {
    return r.details(req) === true;
  } catch {
    return false;
  }
}

/** Which endpoint. @internal */
type Target =
  | { readonly kind: 'live' | 'ready' | 'startup' | 'metrics' }
  | { readonly kind: 'health'; readonly group: string | undefined }
  /** A path under the health endpoint whose group part is not valid percent-encoding. */
  | { readonly kind: 'bad-group' };

/** The endpoint at `pathname`, if any. */
function route(r: Resolved, pathname: string): Target | undefined {
  if (pathname === r.live) return { kind: 'live' };
  if (pathname === r.ready) return { kind: 'ready' };
  if (pathname === r.startup) return { kind: 'startup' };
  if (r.metricsPath !== false && pathname === r.metricsPath) return { kind: 'metrics' };
  if (r.health !== false) {
    if (pathname === r.health) return { kind: 'health', group: undefined };
    if (pathname.startsWith(`${r.health}/`)) {
      try {
        return { kind: 'health', group: decodeURIComponent(pathname.slice(r.health.length + 1)) };
      } catch {
        return { kind: 'bad-group' }; // malformed percent-encoding (URIError): a 400, never a crash
      }
    }
  }
  return undefined;
}

/** Answers one endpoint. */
async function answer(
  monitor: HealthMonitor,
  r: Resolved,
  target: Target,
  req: IncomingMessage,
): Promise<Answer> {
  if (target.kind === 'bad-group') {
    return json(400, { status: 'fail', output: 'malformed health group in the path' }, r);
  }
  if (target.kind === 'health') {
    const group = target.group;
    const doc = monitor.healthJson({
      details: allowDetails(r, req),
      ...(group === undefined ? {} : { group }),
    });
    if (doc === undefined) return json(404, { status: 'fail', output: `no health group "${group}"` }, r);
    return json(doc.status === 'fail' ? 503 : 200, doc, r);
  }
  if (target.kind === 'metrics') {
    try {
      const m = await r.metrics!();
      return {
        status: 200,
        headers: { 'content-type': m.contentType, 'cache-control': r.cacheControl },
        body: m.body,
      };
    } catch (error) {
      // The message may hold hosts, paths or credentials: only callers allowed details see it.
      reportError('health /metrics exporter', error);
      const detail = allowDetails(r, req)
        ? `: ${error instanceof Error ? error.message : String(error)}`
        : ' (the error was reported as a process warning)';
      return {
        status: 500,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': r.cacheControl },
        body: `metrics failed${detail}\n`,
      };
    }
  }
  const doc = monitor.probeJson(target.kind, { details: allowDetails(r, req) });
  return json(doc.status === 'fail' ? 503 : 200, doc, r);
}

function pathnameOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.search(/[?#]/);
  const p = q < 0 ? u : u.slice(0, q);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function write(res: ServerResponse, a: Answer, head: boolean): void {
  res.statusCode = a.status;
  for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
  res.setHeader('content-length', Buffer.byteLength(a.body));
  res.end(head ? undefined : a.body);
}

/** A node:http request handler: true when the request was one of the endpoints. */
export type NodeHealthHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => boolean;

/**
 * A node:http handler for the endpoints. It answers GET and HEAD on its paths and returns true;
 * for anything else it calls `next()` (when given) and returns false.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createHealthMonitor, customCheck, healthHandler } from 'bulwark/health';
 * const monitor = createHealthMonitor({ checks: [customCheck({ name: 'self', run: () => true })] });
 * const health = healthHandler(monitor);
 * const server = createServer((req, res) => {
 *   if (health(req, res)) return;
 *   res.end('hello');
 * });
 * server.listen(0, '127.0.0.1');
 * await new Promise((r) => server.once('listening', r));
 * await monitor.runNow();
 * const { port } = server.address() as { port: number };
 * const res = await fetch(`http://127.0.0.1:${port}/readyz`);
 * console.log(res.status, res.headers.get('content-type')); // 200 application/health+json
 * server.close();
 * await monitor.close();
 * ```
 */
export function healthHandler(monitor: HealthMonitor, options: HealthHandlerOptions = {}): NodeHealthHandler {
  if (typeof monitor !== 'object' || monitor === null || typeof monitor.probeJson !== 'function')
    throw new ConfigError('healthHandler.monitor', 'a HealthMonitor from createHealthMonitor()', monitor);
  const r = resolve('healthHandler', options);
  return (req, res, next) => {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      const target = route(r, pathnameOf(req.url));
      if (target !== undefined) {
        answer(monitor, r, target, req)
          .then((a) => write(res, a, method === 'HEAD'))
          .catch((error: unknown) => {
            // write() throws on a destroyed response or a bad header: never an unhandled rejection.
            try {
              if (next !== undefined) next(error);
              else {
                if (!res.headersSent) res.statusCode = 500;
                res.end();
              }
            } catch (again) {
              reportError('health endpoint', again);
            }
          });
        return true;
      }
    }
    next?.();
    return false;
  };
}

/**
 * Express middleware (Express 4 and 5) serving the endpoints; other requests go to `next()`.
 * Mount it at the root or under a prefix (`app.use('/ops', expressHealth(monitor))`).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createHealthMonitor, customCheck, expressHealth } from 'bulwark/health';
 * const monitor = createHealthMonitor({ checks: [customCheck({ name: 'self', run: () => true })] });
 * const app = express();
 * app.use(expressHealth(monitor, { details: 'always' }));
 * const server = app.listen(0, '127.0.0.1');
 * await new Promise((r) => server.once('listening', r));
 * await monitor.runNow();
 * const { port } = server.address() as { port: number };
 * console.log((await fetch(`http://127.0.0.1:${port}/health`)).status); // 200
 * server.close();
 * await monitor.close();
 * ```
 */
export function expressHealth(
  monitor: HealthMonitor,
  options: HealthHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void {
  const handler = healthHandler(monitor, options);
  return (req, res, next) => {
    handler(req, res, next);
  };
}

/** The part of a Fastify instance `fastifyHealth` uses. */
export interface FastifyLike {
  get(
    path: string,
    handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
}

/** The part of a Fastify request `fastifyHealth` uses. */
export interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly params: unknown;
}

/** The part of a Fastify reply `fastifyHealth` uses. */
export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(body?: unknown): unknown;
}

/** Options of `fastifyHealth`: the monitor plus the handler options. */
export interface FastifyHealthOptions extends HealthHandlerOptions {
  monitor: HealthMonitor;
}

/**
 * A Fastify plugin registering the endpoints without encapsulation (it sets
 * `Symbol.for('skip-override')`, as fastify-plugin would, so no extra dependency is needed): at
 * the root when registered on the root instance, under the prefix of the plugin it is registered
 * in otherwise. HEAD routes come from Fastify's `exposeHeadRoutes`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createHealthMonitor, customCheck, fastifyHealth } from 'bulwark/health';
 * const monitor = createHealthMonitor({ checks: [customCheck({ name: 'self', run: () => true })] });
 * const app = Fastify();
 * await app.register(fastifyHealth, { monitor });
 * await monitor.runNow();
 * const res = await app.inject({ method: 'GET', url: '/readyz' });
 * console.log(res.statusCode); // 200
 * await app.close();
 * await monitor.close();
 * ```
 */
export const fastifyHealth = Object.assign(
  async (fastify: FastifyLike, options: FastifyHealthOptions): Promise<void> => {
    const { monitor, ...rest } = options;
    if (typeof monitor !== 'object' || monitor === null || typeof monitor.probeJson !== 'function') {
      throw new ConfigError('fastifyHealth.monitor', 'a HealthMonitor from createHealthMonitor()', monitor);
    }
    const r = resolve('fastifyHealth', pickHandlerOptions(rest));
    const on = (path: string, target: (request: FastifyRequestLike) => Target) => {
      const handler = async (request: FastifyRequestLike, reply: FastifyReplyLike) => {
        const a = await answer(monitor, r, target(request), request.raw);
        reply.code(a.status);
        for (const [k, v] of Object.entries(a.headers)) reply.header(k, v);
        return reply.send(a.body);
      };
      fastify.get(path, handler);
      // Trailing-slash parity with healthHandler/expressHealth (`/readyz/` answers like `/readyz`).
      // With Fastify's `ignoreTrailingSlash` the second route is a duplicate: it is then not needed.
      if (!path.endsWith('/')) {
        try {
          fastify.get(`${path}/`, handler);
        } catch (error) {
          if ((error as { code?: unknown } | null)?.code !== 'FST_ERR_DUPLICATED_ROUTE') throw error;
        }
      }
    };
    if (r.live !== false) on(r.live, () => ({ kind: 'live' }));
    if (r.ready !== false) on(r.ready, () => ({ kind: 'ready' }));
    if (r.startup !== false) on(r.startup, () => ({ kind: 'startup' }));
    if (r.metricsPath !== false) on(r.metricsPath, () => ({ kind: 'metrics' }));
    if (r.health !== false) {
      on(r.health, () => ({ kind: 'health', group: undefined }));
      on(`${r.health}/:group`, (request) => ({
        kind: 'health',
        group: String((request.params as { group?: unknown } | undefined)?.group ?? ''),
      }));
    }
  },
  { [Symbol.for('skip-override')]: true } as Record<symbol, boolean>,
);

/** Drops keys Fastify adds to plugin options (prefix, logLevel, …). */
function pickHandlerOptions(o: Record<string, unknown>): HealthHandlerOptions {
  const out: Record<string, unknown> = {};
  for (const k of ['details', 'metrics', 'paths', 'cacheControl']) if (o[k] !== undefined) out[k] = o[k];
  return out as HealthHandlerOptions;
}
