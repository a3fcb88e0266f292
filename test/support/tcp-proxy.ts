/**
 * A TCP proxy for fault tests: forwards 127.0.0.1:<random port> to a target (e.g. PostgreSQL at
 * 127.0.0.1:5432) and can
 * - drop every connection (`dropAll`), and refuse new ones for a while (`outage(ms)`): what a
 *   database restart looks like from the client, without restarting the shared server;
 * - blackhole connections (`blackhole()`): bytes are swallowed in both directions and sockets stay
 *   open, so clients see a half-open connection (no FIN, no RST) until their own timeouts fire;
 *   `heal()` lets new connections through again (blackholed ones stay dead, as half-open ones do);
 * - stop listening (`stop()`: the port is closed, connections get ECONNREFUSED, as with a stopped
 *   server) and listen again on the same port (`start()`).
 */
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** The local port clients connect to. */
  readonly port: number;
  /** Connections currently open (client side). */
  readonly connections: number;
  /** Connections accepted so far (including refused ones). */
  readonly accepted: number;
  /** Closes every open connection at once (the client sees the connection reset). */
  dropAll(): void;
  /** Drops every connection and resets new ones for `ms` milliseconds (like a restarting server). */
  outage(ms: number): Promise<void>;
  /** Refuses (resets) new connections until `accept()`; open ones are dropped when `drop` is true. */
  refuse(drop?: boolean): void;
  /** Lets new connections through again after `refuse`. */
  accept(): void;
  /** Swallows all bytes of every open and new connection without closing them (half-open). */
  blackhole(): void;
  /** New connections flow again; connections blackholed so far stay blackholed. */
  heal(): void;
  /** Drops every connection and closes the listening port (a stopped server: ECONNREFUSED). */
  stop(): Promise<void>;
  /** Listens again on the same port after `stop()`. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  holed: boolean;
}

/**
 * Starts a proxy to `target` on a random local port.
 *
 * @example
 * ```ts nocheck
 * const proxy = await startTcpProxy({ port: 5432 });
 * const url = `postgres://postgres@127.0.0.1:${proxy.port}/test`;
 * await proxy.outage(2000); // every connection dropped, new ones refused for 2 s
 * ```
 */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  const pairs = new Set<Pair>();
  let refusing = false;
  let holing = false;
  let accepted = 0;

  const hole = (p: Pair): void => {
    if (p.holed) return;
    p.holed = true;
    p.client.unpipe();
    p.upstream?.unpipe();
    // Swallow whatever arrives from now on; never end or reset.
    p.client.removeAllListeners('data');
    p.client.on('data', () => {});
    if (p.upstream !== undefined) {
      p.upstream.removeAllListeners('data');
      p.upstream.on('data', () => {});
    }
  };

  const kill = (p: Pair): void => {
    pairs.delete(p);
    p.client.resetAndDestroy();
    p.upstream?.destroy();
  };

  const onConnection = (client: Socket): void => {
    accepted++;
    client.on('error', () => {});
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const p: Pair = { client, upstream: undefined, holed: false };
    pairs.add(p);
    client.on('close', () => {
      pairs.delete(p);
      if (!p.holed) p.upstream?.destroy();
    });
    if (holing) {
      hole(p);
      return;
    }
    const up = tcpConnect({ host, port: target.port });
    p.upstream = up;
    up.on('error', () => {});
    up.on('close', () => {
      if (!p.holed) client.destroy();
    });
    up.setNoDelay(true);
    client.setNoDelay(true);
    client.pipe(up);
    up.pipe(client);
  };
  const listen = (server: Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  let server: Server = createServer(onConnection);
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;

  const proxy: TcpProxy = {
    port,
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    dropAll() {
      for (const p of [...pairs]) kill(p);
    },
    async outage(ms) {
      refusing = true;
      proxy.dropAll();
      await new Promise((r) => setTimeout(r, ms));
      refusing = false;
    },
    refuse(drop = true) {
      refusing = true;
      if (drop) proxy.dropAll();
    },
    accept() {
      refusing = false;
    },
    blackhole() {
      holing = true;
      for (const p of pairs) hole(p);
    },
    heal() {
      holing = false;
    },
    async stop() {
      if (!server.listening) return;
      const closed = new Promise<void>((r) => server.close(() => r()));
      proxy.dropAll();
      await closed;
    },
    async start() {
      if (server.listening) return;
      server = createServer(onConnection);
      await listen(server, port);
    },
    close() {
      return proxy.stop();
    },
  };
  return proxy;
}
