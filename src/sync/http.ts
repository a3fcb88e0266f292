/**
 * HTTP endpoints of a sync server, for node:http (`syncHttpHandler`) and Fastify
 * (`syncFastifyPlugin`):
 * - `POST <basePath>/push` with `{ ops: [...] }` → `{ results: [...] }`;
 * - `GET <basePath>/pull?cursor=N&limit=M` → `{ changes, cursor, hasMore, reset }`.
 * The client id comes from `clientId(req)` (default: the `x-sync-client` header; put your
 * authentication there). Errors answer JSON `{ error: { code, message } }`: 400 bad request,
 * 401 no client id, 413 body too large, 429 rate limited (with `Retry-After`), 503 store down.
 * @module
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { s } from '../core/schema.js';
import { BulwarkSyncError, SyncRateLimitedError } from './errors.js';
import type { SyncServer } from './server.js';

/** Options of the HTTP handlers. */
export interface SyncHttpOptions {
  /** Path prefix of the two routes. Default `/sync`. */
  basePath?: string;
  /** The client id of a request (authenticate here); `undefined` answers 401. Default: header `x-sync-client`. */
  clientId?: (req: IncomingMessage) => string | undefined;
  /** Largest push body, bytes. Default 5 MiB. */
  maxBodyBytes?: number;
}

const optionsSchema = s.object({
  basePath: s.optional(
    s.string({ pattern: /^\/[A-Za-z0-9_./-]*$/, patternRule: 'a path starting with /' }),
    '/sync',
  ),
  clientId: s.optional(s.fn<(req: IncomingMessage) => string | undefined>()),
  maxBodyBytes: s.optional(s.int({ min: 1 }), 5 * 1024 * 1024),
});

/** An HTTP answer. @internal */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

function headerClient(req: IncomingMessage): string | undefined {
  const v = req.headers['x-sync-client'];
  return typeof v === 'string' && v.length > 0 && v.length <= 100 ? v : undefined;
}

/** Maps an error to an HTTP answer. @internal */
export function errorAnswer(error: unknown): HttpAnswer {
  if (error instanceof SyncRateLimitedError) {
    return {
      status: 429,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) },
      body: { error: { code: error.code, message: error.message, retryAfterMs: error.retryAfterMs } },
    };
  }
  if (error instanceof BulwarkSyncError) {
    const status = error.code === 'BAD_REQUEST' ? 400 : 503;
    return { status, headers: {}, body: { error: { code: error.code, message: error.message } } };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'INTERNAL', message: 'The sync server failed; retry later' } },
  };
}

/** Answers one sync request already parsed. @internal */
export async function answer(
  server: SyncServer,
  method: string,
  route: 'push' | 'pull',
  clientId: string | undefined,
  query: Record<string, unknown>,
  body: unknown,
): Promise<HttpAnswer> {
  if (clientId === undefined) {
    return {
      status: 401,
      headers: {},
      body: { error: { code: 'NO_CLIENT', message: 'Send the client id (x-sync-client header)' } },
    };
  }
  const want = route === 'push' ? 'POST' : 'GET';
  if (method !== want) {
    return {
      status: 405,
      headers: { allow: want },
      body: { error: { code: 'METHOD', message: `Use ${want}` } },
    };
  }
  try {
    const out = route === 'push' ? await server.push(clientId, body) : await server.pull(clientId, query);
    return { status: 200, headers: {}, body: out };
  } catch (error) {
    return errorAnswer(error);
  }
}

function readBody(
  req: IncomingMessage,
  max: number,
): Promise<{ ok: true; value: unknown } | { ok: false; status: number; message: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      else chunks.push(c);
    });
    req.on('error', () => resolve({ ok: false, status: 400, message: 'The request body could not be read' }));
    req.on('end', () => {
      if (over)
        return resolve({
          ok: false,
          status: 413,
          message: `The body is over ${max} bytes; push smaller batches`,
        });
      try {
        resolve({ ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') });
      } catch {
        resolve({ ok: false, status: 400, message: 'The body is not JSON' });
      }
    });
  });
}

function send(res: ServerResponse, a: HttpAnswer): void {
  const text = JSON.stringify(a.body);
  res.writeHead(a.status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...a.headers });
  res.end(text);
}

/**
 * A node:http request handler for the sync routes. Returns `false` (and answers nothing) for a
 * path outside `basePath`, so it can sit in front of other routes.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { memorySyncStore, syncHttpHandler, syncServer } from 'bulwark/sync';
 * const handle = syncHttpHandler(syncServer({ store: memorySyncStore() }));
 * const http = createServer((req, res) => {
 *   void handle(req, res).then((handled) => { if (!handled) { res.statusCode = 404; res.end(); } });
 * });
 * http.listen(0, '127.0.0.1', () => http.close());
 * ```
 */
export function syncHttpHandler(
  server: SyncServer,
  options: SyncHttpOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const o = optionsSchema.parse(options, 'syncHttpHandler');
  const clientIdOf = o.clientId ?? headerClient;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route =
      url.pathname === `${o.basePath}/push` ? 'push' : url.pathname === `${o.basePath}/pull` ? 'pull' : null;
    if (route === null) return false;
    let body: unknown;
    if (route === 'push' && req.method === 'POST') {
      const read = await readBody(req, o.maxBodyBytes);
      if (!read.ok) {
        send(res, {
          status: read.status,
          headers: {},
          body: { error: { code: 'BAD_REQUEST', message: read.message } },
        });
        return true;
      }
      body = read.value;
    }
    const query = Object.fromEntries(url.searchParams);
    send(res, await answer(server, req.method ?? 'GET', route, clientIdOf(req), query, body));
    return true;
  };
}

/** The part of a Fastify instance the plugin uses. */
export interface FastifyLike {
  route(options: {
    method: string | string[];
    url: string;
    bodyLimit?: number;
    handler: (
      req: { raw: IncomingMessage; method: string; query: unknown; body: unknown },
      reply: { code(n: number): unknown; header(k: string, v: string): unknown; send(v: unknown): unknown },
    ) => Promise<unknown>;
  }): unknown;
}

/**
 * A Fastify plugin registering the sync routes (Fastify parses the JSON body).
 *
 * @example
 * ```ts nocheck
 * import Fastify from 'fastify';
 * import { memorySyncStore, syncFastifyPlugin, syncServer } from 'bulwark/sync';
 * const app = Fastify();
 * await app.register(syncFastifyPlugin(syncServer({ store: memorySyncStore() })));
 * await app.listen({ port: 0 });
 * ```
 */
export function syncFastifyPlugin(
  server: SyncServer,
  options: SyncHttpOptions = {},
): (app: FastifyLike) => Promise<void> {
  const o = optionsSchema.parse(options, 'syncFastifyPlugin');
  const clientIdOf = o.clientId ?? headerClient;
  return async (app) => {
    for (const route of ['push', 'pull'] as const) {
      app.route({
        method: ['GET', 'POST'],
        url: `${o.basePath}/${route}`,
        bodyLimit: o.maxBodyBytes,
        handler: async (req, reply) => {
          const a = await answer(
            server,
            req.method,
            route,
            clientIdOf(req.raw),
            (req.query ?? {}) as Record<string, unknown>,
            req.body,
          );
          reply.code(a.status);
          for (const [k, v] of Object.entries(a.headers)) reply.header(k, v);
          return reply.send(a.body);
        },
      });
    }
  };
}
