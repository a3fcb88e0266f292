/**
 * A fault proxy: listens on one address and relays to an upstream, injecting the toxics added
 * to it. `type: 'tcp'` (toxiproxy's model: latency, bandwidth, slow_close, timeout, reset_peer,
 * slicer, limit_data, down) or `type: 'http'` (HTTP-aware: inject a status with a body and
 * Retry-After, delay headers or body, abort after N bytes, for the first N requests or a time
 * window, by path and method).
 */
import {
  Agent,
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type {
  Component,
  ComponentDescriptor,
  ComponentEvent,
  ComponentOperation,
  Snapshot,
} from '../../core/component.js';
import { BulwarkError, ConfigError } from '../../core/errors.js';
import { type Disposer, Emitter, type Listener } from '../../core/events.js';
import { s } from '../../core/schema.js';
import { Link, type LinkHost, sleep } from './link.js';
import { HTTP_TOXICS, parseToxic, type Stream, type Toxic, type ToxicJson, toxicJson } from './toxic.js';

/** A proxy as the API shows it (toxiproxy's JSON shape, plus `type`). */
export interface ProxyJson {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
  readonly type: 'tcp' | 'http';
  readonly toxics: ToxicJson[];
}

/** Options of a fault proxy. */
export interface FaultProxyOptions {
  readonly name: string;
  /** `host:port` to listen on (port 0: any free port; `listen` then reports the real one). */
  readonly listen: string;
  /** `host:port` to relay to. */
  readonly upstream: string;
  readonly enabled?: boolean;
  readonly type?: 'tcp' | 'http';
  /** Toxics to add at once (a proxy and its toxics in one call). */
  readonly toxics?: readonly unknown[];
  /** Source of randomness for toxicity and jitter. Default Math.random. */
  readonly random?: () => number;
}

/** An API error with toxiproxy's shape (`{ error, status }`). */
export class ProxyError extends BulwarkError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(status === 404 ? 'NOT_FOUND' : status === 409 ? 'CONFLICT' : 'BAD_REQUEST', message);
  }
}

const NO_TOXICS: readonly Toxic[] = Object.freeze([]);

/** Runs `fn` after `ms`, precisely (see `sleep`). */
const later = (fn: () => void, ms: number): void => {
  void sleep(ms).then(fn);
};

const ADDRESS = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/;

function parseAddress(value: string, path: string): { host: string; port: number } {
  const m = ADDRESS.exec(value);
  if (m === null || Number(m[2]) > 65535) throw new ConfigError(path, 'a host:port address', value);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

// Deliberate repetition: a descriptor literal (the same keys in every component; the values differ in meaning).
const DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'faultProxy',
  help: 'A fault-injecting proxy (toxiproxy-compatible)',
  category: 'chaos',
  states: ['enabled', 'disabled'],
  gauges: { connections: 'Open connections', toxics: 'Active toxics' },
  counters: {
    accepted: 'Connections or requests accepted',
    injected: 'Faults injected (HTTP toxics applied, resets, timeouts)',
  },
});

interface Conn extends LinkHost {
  readonly client: Socket;
  readonly upstream: Socket;
}

/** The options' schema (the one validator: `ConfigError` naming the dotted path). */
const FAULT_PROXY_OPTIONS = s.object({
  name: s.string(),
  listen: s.string(),
  upstream: s.string(),
  enabled: s.optional(s.boolean()),
  type: s.optional(s.oneOf(['tcp', 'http'])),
  toxics: s.optional(s.array(s.unknown())),
  random: s.optional(s.fn()),
});

/** See the module doc. Create with `faultProxy()` or through the proxy API server. */
export class FaultProxy implements Component {
  readonly kind = 'faultProxy';
  readonly descriptor = DESCRIPTOR;
  readonly name: string;
  readonly type: 'tcp' | 'http';
  private listenAddr: string;
  private upstreamAddr: string;
  private enabled: boolean;
  private server: Server | HttpServer | null = null;
  private readonly conns = new Set<Conn>();
  private readonly sockets = new Set<Socket>();
  private toxicList: Toxic[] = [];
  private accepted = 0;
  private injected = 0;
  private readonly random: () => number;
  private readonly emitter = new Emitter<ComponentEvent>();
  private readonly agent = new Agent({ keepAlive: true });

  constructor(options: FaultProxyOptions) {
    FAULT_PROXY_OPTIONS.parse(options, 'faultProxy');
    this.name = options.name;
    this.type = options.type ?? 'tcp';
    parseAddress(options.listen, 'proxy.listen');
    parseAddress(options.upstream, 'proxy.upstream');
    this.listenAddr = options.listen;
    this.upstreamAddr = options.upstream;
    this.enabled = options.enabled ?? true;
    this.random = options.random ?? Math.random;
    (options.toxics ?? []).forEach((t, i) => {
      this.addToxic(t, `proxy.toxics[${i}]`);
    });
  }

  // Deliberate repetition: read-only getters over private fields (one per figure), as other components
  // expose theirs.
  /** The address it listens on (with the real port once started). */
  get listen(): string {
    return this.listenAddr;
  }

  get upstream(): string {
    return this.upstreamAddr;
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** Starts listening (when enabled). */
  async start(): Promise<this> {
    if (this.enabled && this.server === null) await this.open();
    return this;
  }

  private async open(): Promise<void> {
    const { host, port } = parseAddress(this.listenAddr, 'proxy.listen');
    const server =
      this.type === 'http'
        ? createHttpServer((req, res) => this.onRequest(req, res))
        : createServer({ allowHalfOpen: true }, (c) => this.onConnection(c));
    if (this.type === 'http') server.on('connection', (sock: Socket) => this.track(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr !== null && typeof addr === 'object')
      this.listenAddr = `${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    this.server = server;
  }

  private track(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
  }

  private async shut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const c of this.conns) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.conns.clear();
    for (const sock of this.sockets) sock.destroy();
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Enables (listens again) or disables (closes the listener and every connection: toxiproxy's "down"). */
  async setEnabled(enabled: boolean): Promise<void> {
    if (enabled === this.enabled && (enabled ? this.server !== null : this.server === null)) return;
    this.enabled = enabled;
    if (enabled) await this.open();
    else await this.shut();
    this.emit(enabled ? 'enabled' : 'disabled');
    const [from, to] = enabled ? ['disabled', 'enabled'] : ['enabled', 'disabled'];
    this.emit('stateChange', { from, to });
  }

  /** Changes the listen or upstream address (reopening the listener) and/or the enabled flag. */
  async update(input: { listen?: string; upstream?: string; enabled?: boolean }): Promise<void> {
    if (input.upstream !== undefined) {
      parseAddress(input.upstream, 'proxy.upstream');
      this.upstreamAddr = input.upstream;
    }
    if (input.listen !== undefined && input.listen !== this.listenAddr) {
      parseAddress(input.listen, 'proxy.listen');
      await this.shut();
      this.listenAddr = input.listen;
      if (this.enabled) await this.open();
    }
    if (input.enabled !== undefined) await this.setEnabled(input.enabled);
  }

  /** The toxics, in the order they apply. */
  get toxics(): readonly Toxic[] {
    return this.toxicList;
  }

  /** Adds a toxic (toxiproxy's JSON); a name already in use → 409. */
  addToxic(input: unknown, path = 'toxic'): Toxic {
    const t = parseToxic(input, path);
    const http = (HTTP_TOXICS as string[]).includes(t.type);
    if (http !== (this.type === 'http') && !(this.type === 'http' && t.type === 'latency')) {
      throw new ConfigError(
        `${path}.type`,
        `a ${this.type === 'http' ? 'HTTP' : 'TCP'} toxic for a ${this.type} proxy`,
        t.type,
      );
    }
    if (this.toxicList.some((x) => x.name === t.name))
      throw new ProxyError(409, `toxic "${t.name}" already exists on proxy "${this.name}"`);
    this.toxicList = [...this.toxicList, t];
    this.emit('toxicAdded', { toxic: t.name, type: t.type });
    return t;
  }

  /** Updates a toxic's attributes and/or toxicity. */
  updateToxic(name: string, input: { attributes?: Record<string, unknown>; toxicity?: number }): Toxic {
    const old = this.toxicList.find((t) => t.name === name);
    if (old === undefined) throw new ProxyError(404, `toxic "${name}" not found on proxy "${this.name}"`);
    const t = parseToxic(
      {
        name,
        type: old.type,
        stream: old.stream,
        toxicity: input.toxicity ?? old.toxicity,
        attributes: { ...old.attributes, ...(input.attributes ?? {}) },
      },
      'toxic',
      old.addedAt,
    );
    this.toxicList = this.toxicList.map((x) => (x.name === name ? t : x));
    return t;
  }

  /** Removes a toxic (404 when absent). */
  removeToxic(name: string): void {
    if (!this.toxicList.some((t) => t.name === name))
      throw new ProxyError(404, `toxic "${name}" not found on proxy "${this.name}"`);
    this.toxicList = this.toxicList.filter((t) => t.name !== name);
    this.emit('toxicRemoved', { toxic: name });
  }

  /** Removes every toxic. */
  clearToxics(): void {
    if (this.toxicList.length === 0) return;
    this.toxicList = [];
    this.emit('toxicsCleared');
  }

  private onConnection(client: Socket): void {
    this.accepted++;
    const { host, port } = parseAddress(this.upstreamAddr, 'proxy.upstream');
    // Half-open both ways: a client that ends its side still gets the rest of the response.
    const upstream = connect({ host, port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const draws = new Map<string, boolean>();
    const conn: Conn = {
      client,
      upstream,
      random: this.random,
      toxics: (stream: Stream) =>
        this.toxicList.length === 0
          ? NO_TOXICS
          : this.toxicList.filter((t) => {
              if (t.stream !== stream) return false;
              let hit = draws.get(t.name);
              if (hit === undefined) {
                hit = t.toxicity >= 1 || (t.toxicity > 0 && this.random() < t.toxicity);
                draws.set(t.name, hit);
              }
              return hit;
            }),
      reset: () => {
        this.injected++;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      },
      close: () => {
        this.injected++;
        client.destroy();
        upstream.destroy();
      },
    };
    this.conns.add(conn);
    const gone = () => {
      this.conns.delete(conn);
      if (!client.destroyed && client.writableEnded && upstream.writableEnded) client.destroy();
    };
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      gone();
    });
    // A clean end travels through the downstream link (after its queued data); only a broken
    // upstream cuts the client at once.
    upstream.on('close', (hadError) => {
      if (hadError) client.destroy();
      gone();
    });
    new Link(conn, 'upstream', client, upstream);
    new Link(conn, 'downstream', upstream, client);
  }

  private matches(t: Toxic, req: IncomingMessage): boolean {
    const a = t.attributes as {
      path?: string;
      method?: string;
      first?: number;
      fromMs?: number;
      untilMs?: number;
    };
    if (a.path !== undefined && !(req.url ?? '/').startsWith(a.path)) return false;
    if (a.method !== undefined && a.method.toUpperCase() !== req.method) return false;
    const age = performance.now() - t.addedAt;
    if (a.fromMs !== undefined && age < a.fromMs) return false;
    if (a.untilMs !== undefined && age >= a.untilMs) return false;
    if (a.first !== undefined && t.applied >= a.first) return false;
    if (t.toxicity < 1 && this.random() >= t.toxicity) return false;
    t.applied++;
    return true;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.accepted++;
    const active = this.toxicList.filter((t) => this.matches(t, req));
    const status = active.find((t) => t.type === 'http_status') as Toxic<'http_status'> | undefined;
    const delay = active.find((t) => t.type === 'http_delay') as Toxic<'http_delay'> | undefined;
    const abort = active.find((t) => t.type === 'http_abort') as Toxic<'http_abort'> | undefined;
    const latency = active.find((t) => t.type === 'latency') as Toxic<'latency'> | undefined;
    const headersMs = (delay?.attributes.headers_ms ?? 0) + (latency?.attributes.latency ?? 0);
    if (status !== undefined) {
      this.injected++;
      req.resume();
      const a = status.attributes;
      const body = a.body ?? JSON.stringify({ error: 'injected by bulwark chaos', status: a.status });
      later(() => {
        res.writeHead(a.status, {
          'content-type': a.body === undefined ? 'application/json' : 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          ...(a.retry_after !== undefined ? { 'retry-after': String(a.retry_after) } : {}),
          'x-bulwark-chaos': status.name,
        });
        res.end(body);
      }, headersMs);
      return;
    }
    const { host, port } = parseAddress(this.upstreamAddr, 'proxy.upstream');
    const out = request(
      { host, port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (up) => {
        later(() => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          const pipeBody = () => {
            if (abort === undefined) {
              up.pipe(res);
              return;
            }
            this.injected++;
            let left = abort.attributes.after_bytes;
            const cut = () => {
              up.destroy();
              res.socket?.destroy();
            };
            res.flushHeaders();
            if (left === 0) {
              setImmediate(cut);
              return;
            }
            up.on('data', (chunk: Buffer) => {
              if (left <= 0) return;
              const part = chunk.subarray(0, left);
              left -= part.length;
              if (left <= 0) res.write(part, () => setImmediate(cut));
              else res.write(part);
            });
          };
          const bodyMs = delay?.attributes.body_ms ?? 0;
          if (bodyMs > 0) {
            res.flushHeaders();
            later(pipeBody, bodyMs);
          } else pipeBody();
        }, headersMs);
      },
    );
    out.on('error', (error) => {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `upstream ${this.upstreamAddr} failed: ${error.message}` }));
      }
    });
    req.pipe(out);
  }

  /** The toxiproxy JSON of this proxy. */
  json(): ProxyJson {
    return {
      name: this.name,
      listen: this.listenAddr,
      upstream: this.upstreamAddr,
      enabled: this.enabled,
      type: this.type,
      toxics: this.toxicList.map(toxicJson),
    };
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.enabled ? 'enabled' : 'disabled',
      gauges: {
        connections: this.type === 'tcp' ? this.conns.size : this.sockets.size,
        toxics: this.toxicList.length,
      },
      counters: { accepted: this.accepted, injected: this.injected },
      details: { ...this.json() },
    };
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.emitter.on(listener);
  }

  private emit(event: string, extra: Record<string, unknown> = {}): void {
    if (this.emitter.size !== 0)
      this.emitter.emit({ kind: this.kind, name: this.name, event, ...extra } as ComponentEvent);
  }

  operations(): readonly ComponentOperation[] {
    const none = s.object({});
    return [
      {
        name: 'disable',
        type: 'action',
        summary: 'Take the proxy down (close the listener and every connection)',
        input: none,
        run: () => this.setEnabled(false),
      },
      {
        name: 'enable',
        type: 'action',
        summary: 'Bring the proxy back up',
        input: none,
        run: () => this.setEnabled(true),
      },
      {
        name: 'addToxic',
        type: 'action',
        summary: 'Add a toxic (toxiproxy JSON: type, stream, toxicity, attributes)',
        input: s.object({ toxic: s.unknown() }),
        run: (i: { toxic: unknown }) => toxicJson(this.addToxic(i.toxic, 'body.input.toxic')),
      } as ComponentOperation,
      {
        name: 'removeToxic',
        type: 'action',
        summary: 'Remove a toxic by name',
        input: s.object({ name: s.string() }),
        run: (i: { name: string }) => this.removeToxic(i.name),
      } as ComponentOperation,
      {
        name: 'clearToxics',
        type: 'action',
        summary: 'Remove every toxic',
        input: none,
        run: () => this.clearToxics(),
      },
    ];
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    await this.shut();
    this.agent.destroy();
  }
}

/**
 * Creates and starts a fault proxy.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:net';
 * import { faultProxy } from 'bulwark/chaos';
 * const echo = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
 * await new Promise((r) => echo.once('listening', r));
 * const port = (echo.address() as { port: number }).port;
 * const proxy = await faultProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${port}` });
 * proxy.addToxic({ type: 'latency', attributes: { latency: 50 } });
 * console.log(proxy.json().toxics[0]?.name); // latency_downstream
 * await proxy.close();
 * echo.close();
 * ```
 */
export async function faultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return new FaultProxy(options).start();
}
