/**
 * The proxy API, compatible with toxiproxy's (port 8474 by default): existing toxiproxy clients
 * and scripts work unchanged. Additions: a proxy created with its toxics in one call
 * (`toxics` in `POST /proxies`), `type: 'http'` proxies with HTTP toxics, and a `POST /reset`
 * that never hangs (each proxy's reopen is bounded).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../../core/errors.js';
import type { Registry } from '../../core/registry.js';
import { s } from '../../core/schema.js';
import { FaultProxy, ProxyError, type ProxyJson } from './proxy.js';
import { toxicJson } from './toxic.js';

/** The toxiproxy version this API speaks. */
export const TOXIPROXY_API_VERSION = '2.12.0';

const PROXY = s.object(
  {
    name: s.string({ maxLength: 200 }),
    listen: s.string(),
    upstream: s.string(),
    enabled: s.optional(s.boolean(), true),
    type: s.optional(s.oneOf(['tcp', 'http'] as const), 'tcp'),
    toxics: s.optional(s.array(s.unknown())),
  },
  { strict: false },
);
const UPDATE = s.object(
  { listen: s.optional(s.string()), upstream: s.optional(s.string()), enabled: s.optional(s.boolean()) },
  { strict: false },
);

/** Options of `chaosProxyServer()`. */
export interface ChaosProxyServerOptions {
  readonly host?: string;
  /** Default 8474 (toxiproxy's). */
  readonly port?: number;
  /** Proxies join this registry (so the control plane lists and switches them). */
  readonly registry?: Registry;
  readonly random?: () => number;
}

/** The running proxy API. */
export interface ChaosProxyServer {
  readonly url: string;
  readonly server: Server;
  /** The proxies by name. */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  /** Removes every toxic and enables every proxy (what `POST /reset` does). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 1 << 20) throw new ProxyError(413, 'body larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new ProxyError(400, 'the body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, value: unknown): void {
  if (status === 204) {
    res.writeHead(204);
    res.end();
    return;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  res.writeHead(status, {
    'content-type': typeof value === 'string' ? 'text/plain' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);

/**
 * Starts the toxiproxy-compatible API.
 *
 * @example
 * ```ts
 * import { chaosProxyServer } from 'bulwark/chaos';
 * const api = await chaosProxyServer({ host: '127.0.0.1', port: 0 });
 * const res = await fetch(`${api.url}/proxies`, {
 *   method: 'POST',
 *   body: JSON.stringify({ name: 'redis', listen: '127.0.0.1:0', upstream: '127.0.0.1:6379',
 *     toxics: [{ type: 'latency', attributes: { latency: 100 } }] }),
 * });
 * console.log(res.status); // 201
 * await api.close();
 * ```
 */
export async function chaosProxyServer(options: ChaosProxyServerOptions = {}): Promise<ChaosProxyServer> {
  const proxies = new Map<string, FaultProxy>();
  const find = (name: string): FaultProxy => {
    const p = proxies.get(name);
    if (p === undefined) throw new ProxyError(404, `proxy not found: ${name}`);
    return p;
  };
  const create = async (input: unknown, path: string): Promise<FaultProxy> => {
    const o = PROXY.parse(input, path);
    if (proxies.has(o.name)) throw new ProxyError(409, `proxy already exists: ${o.name}`);
    const p = new FaultProxy({ ...o, ...(options.random !== undefined ? { random: options.random } : {}) });
    await p.start();
    proxies.set(o.name, p);
    options.registry?.register(p);
    return p;
  };
  const remove = async (p: FaultProxy): Promise<void> => {
    proxies.delete(p.name);
    options.registry?.unregister(p);
    await p.close();
  };
  const reset = async (): Promise<void> => {
    await Promise.all(
      [...proxies.values()].map(async (p) => {
        p.clearToxics();
        await within(
          p.setEnabled(true).catch(() => {}),
          2000,
        );
      }),
    );
  };
  const all = (): Record<string, ProxyJson> =>
    Object.fromEntries([...proxies].map(([n, p]) => [n, p.json()]));

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts = new URL(req.url ?? '/', 'http://x').pathname
      .split('/')
      .filter(Boolean)
      .map(decodeURIComponent);
    const m = req.method ?? 'GET';
    const [a, name, b, toxic] = parts;
    if (a === 'version' && m === 'GET') return send(res, 200, TOXIPROXY_API_VERSION);
    if (a === 'reset' && m === 'POST') {
      await reset();
      return send(res, 204, null);
    }
    if (a === 'populate' && m === 'POST') {
      const list = await body(req);
      if (!Array.isArray(list)) throw new ConfigError('body', 'an array of proxies', list);
      const out: ProxyJson[] = [];
      for (const [i, item] of list.entries()) {
        const o = PROXY.parse(item, `body[${i}]`);
        const old = proxies.get(o.name);
        if (
          old !== undefined &&
          old.upstream === o.upstream &&
          (old.listen === o.listen || o.listen.endsWith(':0'))
        ) {
          if (o.enabled !== old.isEnabled) await old.setEnabled(o.enabled);
          out.push(old.json());
          continue;
        }
        if (old !== undefined) await remove(old);
        out.push((await create(item, `body[${i}]`)).json());
      }
      return send(res, 201, { proxies: out });
    }
    if (a !== 'proxies') throw new ProxyError(404, `no route for ${m} ${req.url ?? ''}`);
    if (name === undefined) {
      if (m === 'GET') return send(res, 200, all());
      if (m === 'POST') return send(res, 201, (await create(await body(req), 'body')).json());
    } else if (b === undefined) {
      const p = find(name);
      if (m === 'GET') return send(res, 200, p.json());
      if (m === 'POST' || m === 'PATCH') {
        await p.update(UPDATE.parse(await body(req), 'body'));
        return send(res, 200, p.json());
      }
      if (m === 'DELETE') {
        await remove(p);
        return send(res, 204, null);
      }
    } else if (b === 'toxics') {
      const p = find(name);
      if (toxic === undefined) {
        if (m === 'GET') return send(res, 200, p.json().toxics);
        if (m === 'POST') return send(res, 200, toxicJson(p.addToxic(await body(req), 'body')));
      } else {
        if (m === 'GET') {
          const t = p.toxics.find((x) => x.name === toxic);
          if (t === undefined) throw new ProxyError(404, `toxic not found: ${toxic}`);
          return send(res, 200, toxicJson(t));
        }
        if (m === 'POST' || m === 'PATCH')
          return send(
            res,
            200,
            toxicJson(
              p.updateToxic(
                toxic,
                (await body(req)) as { attributes?: Record<string, unknown>; toxicity?: number },
              ),
            ),
          );
        if (m === 'DELETE') {
          p.removeToxic(toxic);
          return send(res, 204, null);
        }
      }
    }
    throw new ProxyError(405, `method ${m} not allowed on ${req.url ?? ''}`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const status = error instanceof ProxyError ? error.status : error instanceof ConfigError ? 400 : 500;
      send(res, status, { error: error instanceof Error ? error.message : String(error), status });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8474, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${addr.port}`,
    server,
    proxies,
    reset,
    close: async () => {
      await Promise.all([...proxies.values()].map((p) => remove(p)));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
