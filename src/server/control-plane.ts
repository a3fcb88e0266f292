/**
 * The control plane: an admin API over a registry, with roles, an audit trail of every mutating
 * call, a live event stream and the dashboard. It is one node:http handler; the Fastify plugin,
 * the Express router and the standalone server mount it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { duck, registrySchema } from '../core/common-schemas.js';
import type { Component, ComponentOperation, OperationRole } from '../core/component.js';
import { readRegistryDurations } from '../core/durations.js';
import { defaultRegistry, type Registry } from '../core/registry.js';
import { type Infer, s } from '../core/schema.js';
import {
  type AuthLimitOptions,
  allows,
  type Principal,
  TokenAuth,
  type TokenSpec,
  tokensFromEnv,
} from './auth.js';
import { readJson, sendJson } from './http-io.js';
import { type AuditSink, memoryAudit } from './memory-audit.js';
import { openApiDocument } from './openapi.js';
import { HttpProblem, sendProblem, toProblem } from './problem.js';
import { serveDashboard } from './static.js';
import { EventStream, type EventStreamOptions } from './stream.js';

/** Options of `createControlPlane()`. */
export interface ControlPlaneOptions {
  /** The components to serve. Default `defaultRegistry`. */
  readonly registry?: Registry;
  /**
   * Bearer tokens with roles. Default: `BULWARK_ADMIN_TOKENS` from the environment. With no
   * token at all every API call is refused (401): the control plane never runs open.
   */
  readonly tokens?: readonly TokenSpec[];
  /** Where every mutating call is recorded (a `bulwark/audit` log). Default: a bounded in-memory trail. */
  readonly audit?: AuditSink;
  /** The path the control plane is mounted under, e.g. `/admin` (stripped from URLs). Default ''. */
  readonly basePath?: string;
  /** Serves Prometheus text at `/metrics` (e.g. from `bulwark/metrics`). */
  readonly metrics?: () =>
    | Promise<{ contentType: string; body: string }>
    | { contentType: string; body: string };
  /** Origins allowed by CORS. Default none: CORS is off. */
  readonly corsOrigins?: readonly string[];
  /** Failed-authentication limit per client address. Default 10 per minute. */
  readonly authLimit?: AuthLimitOptions;
  /** The live stream's pacing and buffers. */
  readonly stream?: EventStreamOptions;
  /** Serve the dashboard at `/`. Default true. */
  readonly dashboard?: boolean;
  /** Largest JSON body accepted. Default 65 536 bytes. */
  readonly maxBodyBytes?: number;
  /** The service's name, shown on the dashboard. Default `bulwark`. */
  readonly title?: string;
}

/** A mounted control plane. */
export interface ControlPlane {
  /** The node:http handler (`http.createServer(cp.handle)`). Resolves when the response is written. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The OpenAPI 3.1 document of the API. */
  openApi(): Record<string, unknown>;
  /** The registry served. */
  readonly registry: Registry;
  /** The live stream (for its figures: clients, dropped events). */
  readonly stream: EventStream;
  /** Stops the stream's timers and ends open streams. */
  close(): void;
}

const ACTION_BODY = s.object({
  input: s.optional(s.unknown()),
  reason: s.string({ minLength: 3, maxLength: 500, patternRule: 'a reason of 3 to 500 characters' }),
  dryRun: s.optional(s.boolean(), false),
});
type ActionBody = Infer<typeof ACTION_BODY>;

/** Plural names of the category shortcuts (`/api/breakers` lists category `breaker`). */
const CATEGORY_PATHS: Readonly<Record<string, string>> = {
  breakers: 'breaker',
  limiters: 'limiter',
  bulkheads: 'bulkhead',
  shedders: 'shedder',
  queues: 'queue',
  health: 'health',
  alerts: 'alerts',
  slos: 'slo',
  chaos: 'chaos',
  audit: 'audit',
  policies: 'policy',
  gateway: 'gateway',
};

interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly principal: Principal;
}

function categoryOf(c: Component): string {
  return c.descriptor.category ?? 'policy';
}

function operationsOf(c: Component): readonly ComponentOperation[] {
  return c.operations?.() ?? [];
}

function neededRole(op: ComponentOperation): OperationRole {
  return op.role ?? (op.type === 'view' ? 'viewer' : 'operator');
}

/** A component's summary as listed by the API. */
function describe(c: Component, principal: Principal, withSchemas: boolean): Record<string, unknown> {
  return {
    kind: c.kind,
    name: c.name,
    category: categoryOf(c),
    help: c.descriptor.help,
    states: c.descriptor.states,
    snapshot: c.snapshot(),
    operations: operationsOf(c)
      .filter((op) => op.type === 'view' || allows(principal.role, neededRole(op)))
      .map((op) => ({
        name: op.name,
        type: op.type,
        summary: op.summary,
        role: neededRole(op),
        destructive: op.destructive === true,
        ...(withSchemas ? { input: op.input.json() } : {}),
      })),
  };
}

/** Parses query values: numbers and booleans as such, the rest as strings. */
function queryInput(query: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of query) {
    if (v === 'true' || v === 'false') out[k] = v === 'true';
    else if (v !== '' && /^-?\d+(\.\d+)?$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

/** The options' schema (the one validator: `ConfigError` naming the dotted path). */
const OPTIONS = s.object({
  registry: s.optional(registrySchema),
  tokens: s.optional(
    s.array(
      s.object({
        name: s.optional(s.string()),
        role: s.oneOf(['viewer', 'operator', 'admin']),
        token: s.optional(s.string()),
        sha256: s.optional(s.string()),
      }),
    ),
  ),
  audit: s.optional(duck<AuditSink>('an AuditSink (append(entry))', ['append'])),
  basePath: s.optional(s.string({ minLength: 0 })),
  metrics: s.optional(s.fn()),
  corsOrigins: s.optional(s.array(s.string())),
  authLimit: s.optional(
    s.object({
      failures: s.optional(s.int({ min: 1 })),
      windowMs: s.optional(s.duration({ positive: true })),
    }),
  ),
  stream: s.optional(
    s.object({
      figuresMs: s.optional(s.duration({ positive: true })),
      heartbeatMs: s.optional(s.duration({ positive: true })),
      replayEvents: s.optional(s.int({ min: 0 })),
      maxBufferedBytes: s.optional(s.int({ min: 1 })),
    }),
  ),
  dashboard: s.optional(s.boolean()),
  maxBodyBytes: s.optional(s.int({ min: 1 })),
  title: s.optional(s.string()),
});

/**
 * Creates the control plane over a registry.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { circuitBreaker, createRegistry } from 'bulwark';
 * import { createControlPlane } from 'bulwark/server';
 * const registry = createRegistry();
 * circuitBreaker({ name: 'payments', registry });
 * const cp = createControlPlane({ registry, tokens: [{ role: 'admin', token: 'an-admin-token-of-32-chars-min!' }] });
 * const server = createServer(cp.handle).listen(0, '127.0.0.1', async () => {
 *   const { port } = server.address() as { port: number };
 *   const res = await fetch(`http://127.0.0.1:${port}/api/components`, {
 *     headers: { authorization: 'Bearer an-admin-token-of-32-chars-min!' },
 *   });
 *   console.log(res.status); // 200
 *   cp.close();
 *   server.close();
 * });
 * ```
 */
export function createControlPlane(options: ControlPlaneOptions = {}): ControlPlane {
  OPTIONS.parse(options, 'createControlPlane');
  const registry = options.registry ?? defaultRegistry;
  const auth = new TokenAuth(options.tokens ?? tokensFromEnv(), options.authLimit);
  let audit = options.audit;
  if (audit === undefined) {
    const trail = memoryAudit();
    if (registry.get(trail.kind, trail.name) === undefined) registry.register(trail);
    audit = trail;
  }
  const sink = audit;
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const stream = new EventStream(registry, options.stream);
  // The dashboard shows durations: the registry's pipelines time every execution while it is open.
  const stopDurations = readRegistryDurations(registry);
  const maxBody = options.maxBodyBytes ?? 65_536;
  const cors = new Set(options.corsOrigins ?? []);
  const title = options.title ?? 'bulwark';

  const find = (kind: string, name: string): Component => {
    const c = registry.get(kind, name);
    if (c === undefined)
      throw new HttpProblem(404, 'Not found', `No component of kind "${kind}" named "${name}"`);
    return c;
  };
  const findOp = (c: Component, name: string, type: 'view' | 'action'): ComponentOperation => {
    const op = operationsOf(c).find((o) => o.name === name && o.type === type);
    if (op === undefined) {
      const known = operationsOf(c)
        .filter((o) => o.type === type)
        .map((o) => o.name);
      throw new HttpProblem(
        404,
        'Not found',
        `${c.kind} "${c.name}" has no ${type} "${name}" (known: ${known.join(', ') || 'none'})`,
      );
    }
    return op;
  };

  async function runAction(r: Request, kind: string, name: string, opName: string): Promise<void> {
    const c = find(kind, name);
    const op = findOp(c, opName, 'action');
    const resource = `${kind}/${name}`;
    const action = `${kind}.${opName}`;
    if (!allows(r.principal.role, neededRole(op))) {
      await sink.append({ actor: r.principal.name, action, resource, outcome: 'denied', tags: ['admin'] });
      throw new HttpProblem(
        403,
        'Forbidden',
        `${action} needs the ${neededRole(op)} role; ${r.principal.name} is a ${r.principal.role}`,
      );
    }
    const body = await readJson(r.req, maxBody);
    let parsed: ActionBody;
    let input: unknown;
    try {
      parsed = ACTION_BODY.parse(body ?? {}, 'body');
      input = op.input.parse(parsed.input ?? {}, 'body.input');
    } catch (error) {
      throw toProblem(error);
    }
    if (parsed.dryRun && op.destructive !== true) {
      throw new HttpProblem(
        400,
        'Invalid request',
        `${action} has no dry run (only destructive actions do)`,
        {
          field: 'body.dryRun',
        },
      );
    }
    const before = c.snapshot();
    let result: unknown;
    let outcome: 'success' | 'failure' = 'success';
    let failure: HttpProblem | undefined;
    try {
      result = await op.run(input, { actor: r.principal.name, reason: parsed.reason, dryRun: parsed.dryRun });
    } catch (error) {
      outcome = 'failure';
      failure = toProblem(error);
    }
    const after = c.snapshot();
    await sink.append({
      actor: r.principal.name,
      action,
      resource,
      outcome,
      tags: ['admin', ...(parsed.dryRun ? ['dry-run'] : [])],
      payload: {
        input,
        reason: parsed.reason,
        dryRun: parsed.dryRun,
        before,
        after,
        ...(failure ? { error: failure.message } : {}),
      },
    });
    if (failure !== undefined) throw failure;
    sendJson(r.res, 200, { action, resource, dryRun: parsed.dryRun, result: result ?? null, before, after });
  }

  async function runView(r: Request, kind: string, name: string, opName: string): Promise<void> {
    const c = find(kind, name);
    const op = findOp(c, opName, 'view');
    let input: unknown;
    try {
      input = op.input.parse(queryInput(r.query), 'query');
    } catch (error) {
      throw toProblem(error);
    }
    const result = await op.run(input, { actor: r.principal.name, reason: '', dryRun: false });
    sendJson(r.res, 200, result ?? null);
  }

  async function route(r: Request): Promise<void> {
    const parts = r.path
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    const method = r.req.method ?? 'GET';
    const [, first, kind, name, type, op] = parts;
    if (method === 'GET' && parts.length === 2 && first === 'me') return sendJson(r.res, 200, r.principal);
    if (method === 'GET' && parts.length === 2 && first === 'stream') return stream.attach(r.req, r.res);
    if (first === 'components') {
      if (method === 'GET' && parts.length === 2) {
        const items = registry.list().map((c) => describe(c, r.principal, false));
        return sendJson(r.res, 200, { title, components: items });
      }
      if (method === 'GET' && parts.length === 4)
        return sendJson(r.res, 200, describe(find(kind!, name!), r.principal, true));
      if (parts.length === 6 && type === 'views' && method === 'GET') return runView(r, kind!, name!, op!);
      if (parts.length === 6 && type === 'actions' && method === 'POST')
        return runAction(r, kind!, name!, op!);
      if (parts.length === 6 && (type === 'views' || type === 'actions')) {
        throw new HttpProblem(405, 'Method not allowed', `${type} use ${type === 'views' ? 'GET' : 'POST'}`);
      }
    }
    const category = first === undefined ? undefined : CATEGORY_PATHS[first];
    if (category !== undefined && method === 'GET' && parts.length === 2) {
      const items = registry.list().filter((c) => categoryOf(c) === category);
      return sendJson(r.res, 200, {
        category,
        components: items.map((c) => describe(c, r.principal, false)),
      });
    }
    throw new HttpProblem(
      404,
      'Not found',
      `No API resource at ${method} ${r.path}; GET /openapi.json lists them`,
    );
  }

  const doc = (): Record<string, unknown> => openApiDocument(registry, title);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://control-plane');
      let path = url.pathname;
      if (basePath !== '' && path.startsWith(basePath)) path = path.slice(basePath.length) || '/';
      const origin = req.headers.origin;
      const corsHeaders: Record<string, string> =
        origin !== undefined && cors.has(origin)
          ? {
              'access-control-allow-origin': origin,
              vary: 'Origin',
              'access-control-allow-headers': 'authorization, content-type, last-event-id',
            }
          : {};
      for (const [k, v] of Object.entries(corsHeaders)) res.setHeader(k, v);
      if (req.method === 'OPTIONS' && Object.keys(corsHeaders).length > 0) {
        res.writeHead(204, { 'access-control-allow-methods': 'GET, POST' });
        res.end();
        return;
      }
      if (path === '/openapi.json' && req.method === 'GET') return sendJson(res, 200, doc());
      if (path === '/metrics' && options.metrics !== undefined && req.method === 'GET') {
        await authenticate(req, 'viewer');
        const m = await options.metrics();
        res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
        res.end(m.body);
        return;
      }
      if (path === '/api' || path.startsWith('/api/')) {
        const principal = await authenticate(req, 'viewer');
        return await route({ req, res, path, query: url.searchParams, principal });
      }
      if (options.dashboard !== false && (req.method === 'GET' || req.method === 'HEAD')) {
        if (await serveDashboard(path, req, res, title)) return;
      }
      throw new HttpProblem(404, 'Not found', `Nothing at ${req.method ?? 'GET'} ${path}`);
    } catch (error) {
      const problem = toProblem(error);
      const headers: Record<string, string> = {};
      if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="bulwark"';
      if (problem.status === 429)
        headers['retry-after'] = String(Math.ceil(Number(problem.extra.retryAfterMs ?? 1000) / 1000));
      sendProblem(res, problem, headers);
    }
  }

  async function authenticate(req: IncomingMessage, needed: OperationRole): Promise<Principal> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const wait = auth.blockedFor(address);
    if (wait > 0) {
      throw new HttpProblem(
        429,
        'Too many failed attempts',
        `Too many failed authentications from this address; try again in ${Math.ceil(wait / 1000)} s`,
        {
          retryAfterMs: wait,
        },
      );
    }
    const principal = auth.size === 0 ? null : auth.authenticate(req.headers.authorization, address);
    if (principal === null) {
      throw new HttpProblem(
        401,
        'Unauthorized',
        auth.size === 0
          ? 'The control plane has no token configured: set BULWARK_ADMIN_TOKENS or the tokens option'
          : 'Send a valid token as "Authorization: Bearer <token>"',
      );
    }
    if (!allows(principal.role, needed))
      throw new HttpProblem(403, 'Forbidden', `This needs the ${needed} role`);
    return principal;
  }

  return {
    handle,
    openApi: doc,
    registry,
    stream,
    close: () => {
      stream.close();
      stopDurations();
    },
  };
}
