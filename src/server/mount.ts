/**
 * Mounting the control plane: a Fastify plugin, an Express router, or a standalone server with
 * optional TLS (TLS 1.3 minimum by option).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { ControlPlane } from './control-plane.js';

/** The slice of Fastify the plugin uses (no import of fastify itself). */
interface FastifyLike {
  all(
    path: string,
    handler: (
      request: { raw: IncomingMessage },
      reply: { raw: ServerResponse; hijack(): void },
    ) => Promise<void>,
  ): unknown;
}

/**
 * A Fastify plugin serving the control plane; register it with the same `prefix` as the control
 * plane's `basePath`.
 *
 * @example
 * ```ts nocheck
 * import Fastify from 'fastify';
 * import { createControlPlane, fastifyControlPlane } from 'bulwark/server';
 * const app = Fastify();
 * const cp = createControlPlane({ basePath: '/admin' });
 * await app.register(fastifyControlPlane(cp), { prefix: '/admin' });
 * ```
 */
export function fastifyControlPlane(cp: ControlPlane): (app: FastifyLike) => Promise<void> {
  return async (app) => {
    const handler = async (
      request: { raw: IncomingMessage },
      reply: { raw: ServerResponse; hijack(): void },
    ) => {
      reply.hijack();
      await cp.handle(request.raw, reply.raw);
    };
    app.all('/', handler);
    app.all('/*', handler);
  };
}

/**
 * An Express middleware serving the control plane: `app.use('/admin', expressControlPlane(cp))`
 * (Express strips the mount path, so leave the control plane's `basePath` empty).
 *
 * @example
 * ```ts nocheck
 * import express from 'express';
 * import { createControlPlane, expressControlPlane } from 'bulwark/server';
 * const app = express();
 * app.use('/admin', expressControlPlane(createControlPlane()));
 * ```
 */
export function expressControlPlane(cp: ControlPlane): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void cp.handle(req, res);
  };
}

/** Options of `listenControlPlane()`. */
export interface ListenOptions {
  readonly host?: string;
  /** Default 9901. Use 0 for an ephemeral port. */
  readonly port?: number;
  /** PEM key and certificate for HTTPS; `minVersion` defaults to TLSv1.3. */
  readonly tls?: {
    readonly key: string | Buffer;
    readonly cert: string | Buffer;
    readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
  };
}

/**
 * Serves the control plane on its own port (HTTPS when `tls` is given).
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createControlPlane, listenControlPlane } from 'bulwark/server';
 * const cp = createControlPlane({ registry: createRegistry(), tokens: [{ role: 'viewer', token: 'viewer-token-0123456789' }] });
 * const server = await listenControlPlane(cp, { host: '127.0.0.1', port: 0 });
 * console.log(typeof server.address()); // 'object'
 * cp.close();
 * server.close();
 * ```
 */
export async function listenControlPlane(cp: ControlPlane, options: ListenOptions = {}): Promise<Server> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void cp.handle(req, res);
  };
  const server: Server =
    options.tls === undefined
      ? createHttpServer(handler)
      : (createHttpsServer(
          { key: options.tls.key, cert: options.tls.cert, minVersion: options.tls.minVersion ?? 'TLSv1.3' },
          handler,
        ) as unknown as Server);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 9901, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
