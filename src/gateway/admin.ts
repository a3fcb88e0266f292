/**
 * The admin port: `/livez`, `/readyz`, `/metrics` (Prometheus text through prom-client, an
 * optional peer, read from component snapshots at scrape time), a small JSON API
 * (`/admin/routes`, `/admin/upstreams`, `/admin/endpoints`, `/admin/ejections`, `/admin/health`, `POST
 * /admin/reload`) and a server-sent events stream of ejections, breaker changes, reloads and
 * broken streams (`/admin/events`).
 *
 * The seam for the control plane: `admin.mount(prefix, handler)` hands every request under
 * `prefix` to the mounted handler (the dashboard and its API mount here later); it reads the
 * gateway only through its registry (Components) and `onEvent`.
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ComponentEvent } from '../core/component.js';
import type { Registry } from '../core/registry.js';
import { createMetrics, prometheusExporter } from '../metrics/index.js';

/** What the admin port reads of a gateway. */
export interface AdminTarget {
  readonly registry: Registry;
  readonly ready: boolean;
  readonly reloads: number;
  onEvent(listener: (e: ComponentEvent) => void): () => void;
  reloadFromFile?(file: string): Promise<unknown>;
}

/** A running admin server. */
export interface AdminServer {
  readonly server: Server;
  readonly url: string;
  /** Hands requests whose path starts with `prefix` to `handler` (the control plane's seam). */
  mount(prefix: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Prometheus text of every component in the gateway's registry, through `bulwark/metrics`. */
function metricsOf(registry: Registry): () => Promise<{ contentType: string; body: string }> {
  return prometheusExporter({ metrics: createMetrics({ registry }) });
}

/** Starts the admin server of `target` on host:port. */
export async function startAdmin(
  target: AdminTarget,
  host: string,
  port: number,
  file?: string,
): Promise<AdminServer> {
  const mounts: [string, (req: IncomingMessage, res: ServerResponse) => void][] = [];
  const scrape = metricsOf(target.registry);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    for (const [prefix, h] of mounts) if (path.startsWith(prefix)) return h(req, res);
    const list = (kind: string) => target.registry.snapshot(kind);
    switch (`${req.method} ${path}`) {
      case 'GET /livez':
        return json(res, 200, { status: 'ok' });
      case 'GET /readyz':
        return json(res, target.ready ? 200 : 503, { status: target.ready ? 'ready' : 'not ready' });
      case 'GET /metrics':
        scrape().then(
          ({ contentType, body }) => {
            res.writeHead(200, { 'content-type': contentType });
            res.end(body);
          },
          () => json(res, 501, { error: 'install prom-client to serve /metrics' }),
        );
        return;
      case 'GET /admin/routes':
        return json(res, 200, list('gatewayRoute'));
      case 'GET /admin/upstreams':
        return json(res, 200, list('gatewayUpstream'));
      case 'GET /admin/endpoints':
        return json(res, 200, list('gatewayEndpoint'));
      case 'GET /admin/ejections':
        return json(
          res,
          200,
          list('gatewayEndpoint')
            .filter((s) => s.state === 'ejected' || s.state === 'breakerOpen' || s.state === 'cooling')
            .map((s) => ({ endpoint: s.name, state: s.state, ...s.details, counters: s.counters })),
        );
      case 'GET /admin/health':
        return json(res, 200, list('healthCheck'));
      case 'GET /admin/components':
        return json(res, 200, target.registry.snapshot());
      case 'POST /admin/reload':
        if (file === undefined || target.reloadFromFile === undefined)
          return json(res, 409, { error: 'no configuration file to reload' });
        target.reloadFromFile(file).then((r) => json(res, 200, r));
        return;
      case 'GET /admin/events': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        res.write(': bulwark gateway events\n\n');
        const stop = target.onEvent((e) => {
          if (e.event === 'success' || e.event === 'failure' || e.event === 'excluded') return;
          res.write(
            `event: ${e.event}\ndata: ${JSON.stringify({ ...e, at: new Date().toISOString() }, (_k, v) => (v instanceof Error ? v.message : v))}\n\n`,
          );
        });
        const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
        res.on('close', () => {
          clearInterval(ping);
          stop();
        });
        return;
      }
      default:
        return json(res, 404, { error: `no admin resource ${req.method} ${path}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    mount: (prefix, handler) => mounts.push([prefix, handler]),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
