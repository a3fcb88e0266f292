/**
 * The gateway: builds routes and upstream groups (Components in its own registry) from a
 * configuration, serves them on the listener, serves the admin port, and reloads atomically:
 * a new configuration is validated first; unchanged upstream groups keep their pools, breakers
 * and ejections, unchanged routes keep their client limiters; requests in flight finish on the
 * state they started with; replaced pools close once idle.
 * @module
 */

import { watch } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { basename, dirname } from 'node:path';
import type { Clock, RandomSource } from '../core/clock.js';
import { systemClock, systemRandom } from '../core/clock.js';
import type { Component, ComponentEvent } from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { createRegistry, type Registry } from '../core/registry.js';
import { createControlPlane, type TokenSpec } from '../server/index.js';
import { type AdminServer, startAdmin } from './admin.js';
import { makeVerifier } from './clients.js';
import type { GatewayConfig } from './config.js';
import { Fleet } from './fleet.js';
import { type AccessEntry, createHandler, type HandlerState } from './handler.js';
import { UpstreamHealth } from './health-checks.js';
import { sendProblem } from './http.js';
import { ClientLimitComponent } from './limit-component.js';
import { createListener, type GatewayListener } from './listener.js';
import { loadGatewayConfig } from './load.js';
import { Route } from './route.js';
import { RouteChaos } from './route-chaos.js';
import { RoutePolicies } from './route-policies.js';
import { openWriteKeeper, type WriteKeeperHandle } from './store-and-forward.js';
import { Upstream } from './upstream.js';

/** Options of `startGateway`. */
export interface GatewayOptions {
  /** The configuration (already parsed), or where to read it. */
  readonly config: GatewayConfig;
  /** The file it came from: enables reload on SIGHUP and on change (`watch`). */
  readonly file?: string;
  /** Reload when the file changes. Default true when `file` is given. */
  readonly watch?: boolean;
  /** Reload on SIGHUP. Default true when `file` is given. */
  readonly sighup?: boolean;
  /** Where access log entries go. Default: none (the CLI passes pino). */
  readonly accessLog?: (entry: AccessEntry) => void;
  /** Injected randomness (strategies, jitter, chaos). */
  readonly random?: RandomSource;
  /** Injected time of the response caches (their `Age` and freshness). Default the system clock. */
  readonly clock?: Clock;
  /** Where components register. Default: a new registry. */
  readonly registry?: Registry;
  /**
   * Tokens of the control plane served on the admin port at `/dashboard/` (dashboard and admin
   * API). Default: `BULWARK_ADMIN_TOKENS` from the environment; with none, its API refuses every call.
   */
  readonly adminTokens?: readonly TokenSpec[];
}

/** A reload's outcome. */
export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly kept: { routes: number; upstreams: number };
  readonly replaced: { routes: number; upstreams: number };
}

function addressOf(listen: string | number): { host: string; port: number } {
  if (typeof listen === 'number') return { host: '127.0.0.1', port: listen };
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(listen.slice(i + 1)) };
}

/** A running gateway. */
export class Gateway {
  readonly registry: Registry;
  /** The listening server (HTTP/1.1, HTTPS, HTTP/2 or h2c with HTTP/1.1, per `tls` and `http2`). */
  readonly server: Server;
  /** The listener's protocol handling. */
  readonly listener: GatewayListener;
  admin: AdminServer | null = null;
  private state!: HandlerState;
  private upstreams = new Map<string, Upstream>();
  private routes: Route[] = [];
  private keeper: WriteKeeperHandle | null = null;
  /** What this instance shares with others (Redis, PostgreSQL), or local state; made at start. */
  fleet: Fleet | null = null;
  private health = new Map<Upstream, UpstreamHealth>();
  private readonly events = new Emitter<ComponentEvent>();
  private readonly stops: (() => void)[] = [];
  private reloading: Promise<ReloadResult> | null = null;
  reloads = 0;
  ready = false;

  constructor(
    public config: GatewayConfig,
    private readonly options: GatewayOptions,
  ) {
    this.registry = options.registry ?? createRegistry();
    this.stops.push(this.registry.onEvent((e) => this.events.emit(e)));
    const handler = createHandler(() => this.state);
    this.listener = createListener(
      config,
      (req, res) => {
        try {
          handler(req, res);
        } catch (error) {
          sendProblem(res, 500, 'Gateway error', (error as Error).message);
        }
      },
      {
        maxHeaderSize: config.limits.maxHeaderBytes,
        headersTimeout: config.limits.headersTimeoutMs,
        // node:http checks header timeouts on this period (default 30 s): a tenth of the limit.
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, config.limits.headersTimeoutMs / 10)),
        requestTimeout: 0,
        keepAliveTimeout: 5_000,
      },
    );
    this.server = this.listener.server;
    this.listener.http1?.on('clientError', (err: Error & { code?: string }, socket) => {
      if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage != null) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify({ type: 'about:blank', title: 'Bad request', status, detail: err.message });
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  }

  /** Every component event (ejections, breaker changes, broken streams, …). */
  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  /** The current routes and upstream groups. */
  get components(): { routes: readonly Route[]; upstreams: readonly Upstream[] } {
    return { routes: this.routes, upstreams: [...this.upstreams.values()] };
  }

  /** The listener's address. */
  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** The listener's base URL, e.g. http://127.0.0.1:8080. */
  get url(): string {
    if (this.baseUrl === '') {
      const a = this.address;
      this.baseUrl = `${this.listener.scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    }
    return this.baseUrl;
  }
  private baseUrl = '';

  private async build(
    config: GatewayConfig,
  ): Promise<{ kept: number[]; replaced: number[]; old: Upstream[] }> {
    const random = this.options.random ?? systemRandom;
    if (this.fleet !== null && !this.fleet.sameAs(config))
      throw new Error(
        'redis and postgres cannot change on reload: restart the gateway to move it to another fleet',
      );
    this.fleet ??= await Fleet.open(config);
    const fleet = this.fleet;
    const next = new Map<string, Upstream>();
    const old: Upstream[] = [];
    let keptU = 0;
    let newU = 0;
    const budgetOf = (name: string) => {
      const r = config.routes.find((x) => x.upstream === name && x.retry !== false);
      return r === undefined ? 0.2 : typeof r.retry === 'object' ? r.retry.budgetRatio : 0.2;
    };
    for (const [name, u] of Object.entries(config.upstreams)) {
      const had = this.upstreams.get(name);
      if (had !== undefined && JSON.stringify(had.config) === JSON.stringify(u)) {
        next.set(name, had);
        keptU++;
      } else {
        next.set(name, new Upstream(name, u, random, budgetOf(name), (n, b) => fleet.endpointBreaker(n, b)));
        newU++;
      }
    }
    for (const [name, u] of this.upstreams) if (next.get(name) !== u) old.push(u);
    const routes: Route[] = [];
    let keptR = 0;
    config.routes.forEach((rc, i) => {
      const had = this.routes.find(
        (r) => r.fingerprint === JSON.stringify(rc) && (rc.name !== undefined || r.name === `route-${i}`),
      );
      const up = next.get(rc.upstream)!;
      if (had !== undefined) {
        had.upstream = up;
        routes.push(had);
        keptR++;
      } else {
        const route = new Route(rc, i, up, (...a) => fleet.clientLimiter(...a));
        if (rc.chaos !== undefined) route.chaos = new RouteChaos(route.name, rc.chaos);
        route.policies = RoutePolicies.for(route, this.options.clock ?? systemClock);
        routes.push(route);
      }
    });
    // Swap the registry's membership, then the state (atomically for new requests).
    for (const c of [...this.routes, ...this.upstreams.values()]) {
      if (!routes.includes(c as Route) && ![...next.values()].includes(c as Upstream))
        this.registry.unregister(c);
      if (c instanceof Upstream && !next.has(c.name))
        for (const e of c.endpoints) this.registry.unregister(e);
    }
    for (const u of old) for (const e of u.endpoints) this.registry.unregister(e);
    for (const r of this.routes)
      if (!routes.includes(r)) for (const c of routeParts(r)) this.registry.unregister(c);
    for (const u of old)
      for (const e of u.endpoints) if (e.breaker !== null) this.registry.unregister(e.breaker);
    for (const u of old) {
      void this.health.get(u)?.close();
      this.health.delete(u);
    }
    for (const u of next.values()) {
      this.registry.register(u);
      for (const e of u.endpoints) {
        this.registry.register(e);
        if (e.breaker !== null) this.registry.register(e.breaker);
      }
      if (u.config.healthCheck !== undefined && !this.health.has(u))
        this.health.set(u, new UpstreamHealth(u, u.config.healthCheck, this.registry));
    }
    for (const r of routes) {
      this.registry.register(r);
      for (const c of routeParts(r)) this.registry.register(c);
    }
    fleet.track(this.registry, routes, next.values());
    this.routes = routes;
    this.upstreams = next;
    const trusted = new Set(config.trustedProxies);
    const verify = await makeVerifier(config.auth);
    if (this.keeper === null && config.routes.some((r) => r.storeAndForward)) {
      this.keeper = await openWriteKeeper(config, () => this.upstreams, this.registry, fleet);
    }
    this.keeper?.setUpstreams(() => this.upstreams);
    this.state = {
      routes,
      trusted: (a) => trusted.has(a) || trusted.has(a.replace(/^::ffff:/, '')),
      maxBodyBytes: config.limits.maxBodyBytes,
      verify,
      apiKeyHeader: config.auth?.apiKeyHeader ?? 'x-api-key',
      keeper: this.keeper,
      log: config.accessLog ? (this.options.accessLog ?? null) : null,
      random,
    };
    this.config = config;
    return { kept: [keptR, keptU], replaced: [routes.length - keptR, newU], old };
  }

  /** Builds the state and starts listening (and the admin port). */
  async start(): Promise<this> {
    await this.build(this.config);
    const { host, port } = addressOf(this.config.listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        void this.url;
        resolve();
      });
    });
    if (this.config.admin !== undefined) {
      const a = addressOf(this.config.admin);
      this.admin = await startAdmin(this, a.host, a.port, this.options.file);
      // The control plane (dashboard and admin API) over the gateway's registry.
      const cp = createControlPlane({
        registry: this.registry,
        basePath: '/dashboard',
        title: 'bulwark gateway',
        ...(this.options.adminTokens !== undefined ? { tokens: this.options.adminTokens } : {}),
      });
      this.admin.mount('/dashboard', (req, res) => void cp.handle(req, res));
      this.stops.push(() => cp.close());
    }
    const file = this.options.file;
    if (file !== undefined) {
      if (this.options.sighup !== false) {
        const onHup = () => void this.reloadFromFile(file);
        process.on('SIGHUP', onHup);
        this.stops.push(() => process.off('SIGHUP', onHup));
      }
      if (this.options.watch !== false) {
        let timer: NodeJS.Timeout | null = null;
        // The directory, not the file: editors replace files, and a Kubernetes ConfigMap update
        // swaps the `..data` symlink; a watch on the file itself would miss every later change.
        const name = basename(file);
        const w = watch(dirname(file), (_event, changed) => {
          if (changed !== null && changed !== name && changed !== '..data') return;
          if (timer !== null) clearTimeout(timer);
          timer = setTimeout(() => void this.reloadFromFile(file), 100);
        });
        w.on('error', () => {});
        this.stops.push(() => w.close());
      }
    }
    this.ready = true;
    return this;
  }

  /** Reads, validates and applies the file; a bad file is refused and the old config keeps serving. */
  reloadFromFile(file: string): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      try {
        return await this.reload(await loadGatewayConfig(file));
      } catch (error) {
        const message = (error as Error).message;
        this.events.emit({
          kind: 'gateway',
          name: 'gateway',
          event: 'reloadRefused',
          error: message,
        } as ComponentEvent);
        return {
          ok: false,
          error: message,
          kept: { routes: 0, upstreams: 0 },
          replaced: { routes: 0, upstreams: 0 },
        };
      }
    };
    const p = (this.reloading ?? Promise.resolve()).then(run, run);
    this.reloading = p;
    return p;
  }

  /** Applies a parsed configuration. */
  async reload(config: GatewayConfig): Promise<ReloadResult> {
    const { kept, replaced, old } = await this.build(config);
    this.reloads++;
    for (const u of old) void u.close(); // pools close once their requests are done
    void this.fleet?.release(old.flatMap((u) => u.endpoints.map((e) => e.breaker)));
    const result = {
      ok: true,
      kept: { routes: kept[0]!, upstreams: kept[1]! },
      replaced: { routes: replaced[0]!, upstreams: replaced[1]! },
    };
    this.events.emit({ kind: 'gateway', name: 'gateway', event: 'reloaded', ...result } as ComponentEvent);
    return result;
  }

  /** Stops accepting, lets requests in flight finish (up to `graceMs`), closes pools and the queue. */
  async close(graceMs = 10_000): Promise<void> {
    this.ready = false;
    for (const s of this.stops) s();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.listener.closeIdle();
    const t = setTimeout(() => this.listener.closeAll(), graceMs);
    await closed;
    clearTimeout(t);
    await this.admin?.close();
    await this.keeper?.close();
    await Promise.allSettled([...this.health.values()].map((h) => h.close()));
    await Promise.allSettled([...this.upstreams.values()].map((u) => u.close()));
    await this.fleet?.close();
  }
}

const parts = new WeakMap<Route, Component[]>();

/** The components a route brings besides itself: its chaos, bulkhead and client limits (made once). */
function routeParts(r: Route): Component[] {
  let list = parts.get(r);
  if (list === undefined) {
    list = [...(r.policies?.components() ?? [])];
    if (r.chaos !== null) list.push(r.chaos);
    const seen = new Set<string>();
    r.limits.forEach((l, i) => {
      const name = seen.has(l.name) ? `${l.name}#${i}` : l.name;
      seen.add(name);
      list!.push(new ClientLimitComponent(r, l, name));
    });
    parts.set(r, list);
  }
  return list;
}

/**
 * Starts a gateway.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { parseGatewayConfig, startGateway } from 'bulwark/gateway';
 * const upstream = createServer((_req, res) => res.end('hello')).listen(0, '127.0.0.1');
 * await new Promise((r) => upstream.once('listening', r));
 * const port = (upstream.address() as { port: number }).port;
 * const gw = await startGateway({
 *   config: parseGatewayConfig({
 *     listen: '127.0.0.1:0',
 *     upstreams: { api: { endpoints: [{ url: `http://127.0.0.1:${port}` }] } },
 *     routes: [{ match: { path: '/' }, upstream: 'api' }],
 *   }),
 * });
 * console.log(await (await fetch(`${gw.url}/hi`)).text()); // hello
 * await gw.close();
 * upstream.close();
 * ```
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  return new Gateway(options.config, options).start();
}

/**
 * Starts a gateway from a configuration file, with reload on SIGHUP and on change.
 *
 * @example
 * ```ts nocheck
 * import { startGatewayFromFile } from 'bulwark/gateway';
 * const gw = await startGatewayFromFile('bulwark.yaml');
 * ```
 */
export async function startGatewayFromFile(
  file: string,
  options: Omit<GatewayOptions, 'config' | 'file'> = {},
): Promise<Gateway> {
  return startGateway({ ...options, config: await loadGatewayConfig(file), file });
}
