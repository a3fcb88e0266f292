/** Helpers for gateway tests: real upstream servers on ephemeral ports, raw HTTP over sockets. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach } from 'vitest';
import {
  type Gateway,
  type GatewayOptions,
  parseGatewayConfig,
  startGateway,
} from '../../src/gateway/index.js';

export interface TestUpstream {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1:0 (or `port`) running `handler`. */
export function upstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<TestUpstream> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const p = (server.address() as { port: number }).port;
      resolve({
        server,
        port: p,
        url: `http://127.0.0.1:${p}`,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** Sends raw bytes and returns everything the server answers until it closes (or `timeoutMs`). */
export function rawRequest(port: number, data: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, timeoutMs);
    socket.on('data', (d) => (out += d.toString()));
    socket.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    socket.on('error', () => {});
    socket.write(data);
  });
}

/** A minimal gateway config object for `upstreams` (name → endpoint URLs) and `routes`. */
export function config(
  upstreams: Record<string, string[] | Record<string, unknown>>,
  routes: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const ups: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(upstreams))
    ups[k] = Array.isArray(v) ? { endpoints: v.map((url) => ({ url })) } : v;
  return { listen: '127.0.0.1:0', accessLog: false, ...extra, upstreams: ups, routes };
}

/**
 * Upstreams and gateways that close after each test (call once per test file, at top level):
 * `up(handler)` starts an upstream, `gateway(config, options)` a gateway, `later(fn)` registers
 * any other cleanup; everything is closed in reverse order after each test.
 */
export function gatewayTestKit(defaults: Partial<GatewayOptions> = {}) {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    later: (fn: () => Promise<unknown>) => cleanups.push(fn),
    up: async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestUpstream> => {
      const u = await upstream(handler);
      cleanups.push(() => u.close());
      return u;
    },
    gateway: async (
      value: Record<string, unknown>,
      options: Partial<GatewayOptions> = {},
    ): Promise<Gateway> => {
      const gw = await startGateway({ ...defaults, ...options, config: parseGatewayConfig(value) });
      cleanups.push(() => gw.close(100));
      return gw;
    },
  };
}
