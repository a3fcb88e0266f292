/**
 * Request audit: middleware for node:http, Express and Fastify that records every request in
 * the audit log — method, route, status, actor (from the auth in front), timing, SHA-256
 * digests of the request and response bodies — after redaction. Authorization, Cookie,
 * Set-Cookie, Proxy-Authorization and X-Api-Key headers, secret-looking query parameters and
 * the configured headers and JSON paths never reach the log.
 * @module
 */

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, systemClock } from '../core/clock.js';
import { clockSchema, duck } from '../core/common-schemas.js';
import { reportError } from '../core/events.js';
import { s } from '../core/schema.js';
import type { AuditLog } from './log.js';

const ALWAYS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key'];
const QUERY = [
  'token',
  'access_token',
  'id_token',
  'api_key',
  'apikey',
  'key',
  'password',
  'secret',
  'signature',
  'code',
];
export const REDACTED = '[REDACTED]';

/** Options of `requestAudit`. */
export interface RequestAuditOptions {
  readonly log: AuditLog;
  /** Who made the request (from the auth in front); default `anonymous`. */
  readonly actor?: (req: IncomingMessage) => string | undefined;
  /** The data subject of the request, when there is one. */
  readonly subject?: (req: IncomingMessage) => string | undefined;
  readonly tags?: readonly string[];
  /** Extra header names to redact (case-insensitive). */
  readonly redactHeaders?: readonly string[];
  /** JSON paths (dot-separated, `*` for any key or index) to redact in the recorded request body. */
  readonly redactJsonPaths?: readonly string[];
  /** Also record the (redacted) parsed JSON request body, not only its digest. Default false. */
  readonly recordBody?: boolean;
  /** Record these (redacted) request headers. Default none. */
  readonly recordHeaders?: readonly string[];
  readonly clock?: Clock;
}

/** Replaces the values at `paths` in a JSON value with `[REDACTED]` (returns a copy). */
export function redactJson(value: unknown, paths: readonly string[]): unknown {
  const split = paths.map((p) => p.split('.'));
  const walk = (v: unknown, at: string[][]): unknown => {
    if (typeof v !== 'object' || v === null || at.length === 0) return v;
    const out: Record<string, unknown> | unknown[] = Array.isArray(v)
      ? [...v]
      : { ...(v as Record<string, unknown>) };
    for (const key of Object.keys(out)) {
      const here = at.filter((p) => p[0] === '*' || p[0] === key);
      if (here.some((p) => p.length === 1)) (out as Record<string, unknown>)[key] = REDACTED;
      else if (here.length > 0)
        (out as Record<string, unknown>)[key] = walk(
          (out as Record<string, unknown>)[key],
          here.map((p) => p.slice(1)),
        );
    }
    return out;
  };
  return walk(value, split);
}

/** The URL path with secret-looking query parameters redacted. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const k of [...params.keys()]) if (QUERY.includes(k.toLowerCase())) params.set(k, REDACTED);
  return `${url.slice(0, q)}?${params.toString()}`;
}

interface Tracked {
  readonly started: number;
  readonly hash: ReturnType<typeof createHash>;
  bytes: number;
}

/** Hooks `res.write`/`res.end` to digest the response body as it is sent. */
function trackResponse(res: ServerResponse, clock: Clock): Tracked {
  const t: Tracked = { started: clock.now(), hash: createHash('sha256'), bytes: 0 };
  const add = (chunk: unknown, enc?: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const b =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof enc === 'string' ? (enc as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array);
    t.hash.update(b);
    t.bytes += b.length;
  };
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  res.write = ((chunk: unknown, enc?: unknown, cb?: unknown) => {
    add(chunk, enc);
    return (write as (...a: unknown[]) => boolean)(chunk, enc, cb);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, enc?: unknown, cb?: unknown) => {
    add(chunk, enc);
    return (end as (...a: unknown[]) => ServerResponse)(chunk, enc, cb);
  }) as typeof res.end;
  return t;
}

/** The options' schema (the one validator: `ConfigError` naming the dotted path). */
const REQUEST_AUDIT_OPTIONS = s.object({
  log: duck<AuditLog>('an AuditLog (openAuditLog())', ['append']),
  actor: s.optional(s.fn()),
  subject: s.optional(s.fn()),
  tags: s.optional(s.array(s.string())),
  redactHeaders: s.optional(s.array(s.string())),
  redactJsonPaths: s.optional(s.array(s.string())),
  recordBody: s.optional(s.boolean()),
  recordHeaders: s.optional(s.array(s.string())),
  clock: s.optional(clockSchema),
});

/**
 * The request auditor: `.node(handler)`, `.express()`, `.fastify` (a plugin).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { openAuditLog, requestAudit } from 'bulwark/audit';
 * const log = openAuditLog({ store: 'sqlite::memory:' });
 * const audit = requestAudit({ log, actor: (req) => req.headers['x-user'] as string | undefined });
 * const server = createServer(audit.node((req, res) => res.end('ok'))).listen(0, '127.0.0.1');
 * await new Promise((r) => server.once('listening', r));
 * const { port } = server.address() as { port: number };
 * await fetch(`http://127.0.0.1:${port}/orders?token=secret`, { headers: { authorization: 'Bearer x', 'x-user': 'alice' } });
 * for (let i = 0; i < 200 && (await log.list()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
 * console.log((await log.list())[0]?.resource); // /orders?token=%5BREDACTED%5D
 * server.close();
 * await log.close();
 * ```
 */
export function requestAudit(options: RequestAuditOptions) {
  REQUEST_AUDIT_OPTIONS.parse(options, 'requestAudit');
  const clock = options.clock ?? systemClock;
  const redact = new Set([...ALWAYS, ...(options.redactHeaders ?? []).map((h) => h.toLowerCase())]);
  const record = (
    req: IncomingMessage,
    res: ServerResponse,
    t: Tracked,
    route: string | undefined,
    body: unknown,
  ) => {
    const headers: Record<string, string> = {};
    for (const h of options.recordHeaders ?? []) {
      const v = req.headers[h.toLowerCase()];
      if (v !== undefined) headers[h.toLowerCase()] = redact.has(h.toLowerCase()) ? REDACTED : String(v);
    }
    const redactedBody = body === undefined ? undefined : redactJson(body, options.redactJsonPaths ?? []);
    const subject = options.subject?.(req);
    options.log
      .append({
        actor: options.actor?.(req) ?? 'anonymous',
        action: `${req.method ?? 'GET'} ${route ?? (req.url ?? '/').split('?')[0]}`,
        resource: redactUrl(req.url ?? '/').slice(0, 1024),
        outcome:
          res.statusCode >= 500
            ? 'failure'
            : res.statusCode === 401 || res.statusCode === 403
              ? 'denied'
              : 'success',
        tags: ['request', ...(options.tags ?? [])],
        ...(subject === undefined ? {} : { subject }),
        payload: {
          method: req.method,
          route: route ?? null,
          status: res.statusCode,
          durationMs: Math.round((clock.now() - t.started) * 1000) / 1000,
          requestBodyDigest:
            redactedBody === undefined
              ? null
              : createHash('sha256').update(JSON.stringify(redactedBody)).digest('hex'),
          responseBodyDigest: t.hash.copy().digest('hex'),
          responseBytes: t.bytes,
          ...(Object.keys(headers).length > 0 ? { headers } : {}),
          ...(options.recordBody === true && redactedBody !== undefined ? { body: redactedBody } : {}),
        },
      })
      .catch((e: unknown) => reportError('Request audit', e));
  };
  return {
    /** Wraps a node:http handler. */
    node<H extends (req: IncomingMessage, res: ServerResponse) => unknown>(handler: H) {
      return (req: IncomingMessage, res: ServerResponse) => {
        const t = trackResponse(res, clock);
        res.once('finish', () => record(req, res, t, undefined, undefined));
        return handler(req, res);
      };
    },
    /** Express middleware (put it after the body parser and the auth). */
    express() {
      return (
        req: IncomingMessage & { route?: { path?: string }; body?: unknown; baseUrl?: string },
        res: ServerResponse,
        next: () => void,
      ) => {
        const t = trackResponse(res, clock);
        res.once('finish', () =>
          record(
            req,
            res,
            t,
            req.route?.path === undefined ? undefined : `${req.baseUrl ?? ''}${req.route.path}`,
            req.body,
          ),
        );
        next();
      };
    },
    /** A Fastify plugin (register it with `fastify-plugin` semantics: `{ [Symbol.for('skip-override')]: true }` is set). */
    fastify: Object.assign(
      async (app: { addHook(name: string, fn: (...a: never[]) => unknown): void }) => {
        const started = new WeakMap<object, number>();
        app.addHook('onRequest', (async (request: { raw: IncomingMessage }) => {
          started.set(request, clock.now());
        }) as never);
        app.addHook('onSend', (async (
          request: { raw: IncomingMessage; body?: unknown; routeOptions?: { url?: string } },
          reply: { raw: ServerResponse },
          payload: unknown,
        ) => {
          const t: Tracked = {
            started: started.get(request) ?? clock.now(),
            hash: createHash('sha256'),
            bytes: 0,
          };
          if (typeof payload === 'string' || payload instanceof Uint8Array) {
            const b = Buffer.from(payload as string);
            t.hash.update(b);
            t.bytes = b.length;
          }
          reply.raw.once('finish', () =>
            record(request.raw, reply.raw, t, request.routeOptions?.url, request.body),
          );
          return payload;
        }) as never);
      },
      { [Symbol.for('skip-override')]: true },
    ),
  };
}
