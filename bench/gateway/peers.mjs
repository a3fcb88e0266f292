// The Node proxies the gateway is compared with, one process each: `fastify <port> <upstream>`,
// `http-proxy <port> <upstream>`, `floor <port> <upstream>` (node:http + the gateway's upstream pool, no
// gateway logic), or `bare <port>` (a node:http hello server, no proxying). Prints "listening" when ready.
// Plain JavaScript run by `node` (no transpiler in the measured process), with the gateway's pool
// taken from the built package (dist/), as every peer runs its published code.
import { Agent, createServer } from 'node:http';

const [kind, port, target] = process.argv.slice(2);
if (kind === 'bare') {
  // Not a proxy: a node:http "hello" server, the Node listener's own ceiling on this machine.
  await new Promise((r) =>
    createServer((_req, res) => res.end('hello')).listen(Number(port), '127.0.0.1', () => r()),
  );
} else if (kind === 'floor') {
  // The Node proxying floor: node:http in front of the gateway's own upstream pool (h1-pool),
  // none of the gateway's routing, headers, policies or metrics.
  const { H1Pool } = await import('../../dist/gateway/h1-pool.js');
  const u = new URL(target);
  const pool = new H1Pool({
    host: u.hostname,
    port: Number(u.port),
    connections: 64,
    keepAliveTimeoutMs: 60_000,
    connectTimeoutMs: 2000,
  });
  await new Promise((r) =>
    createServer((req, res) => {
      pool.request(req.method, req.url, ['host', u.host], null, 5000, 5000, true, {
        onResponseStart: (_c, status, headers) => {
          delete headers.connection;
          delete headers['keep-alive'];
          res.writeHead(status, headers);
        },
        onResponseData: (_c, chunk, last) => {
          if (last) res.end(chunk);
          else res.write(chunk);
        },
        onResponseEnd: () => {
          if (!res.writableEnded) res.end();
        },
        onResponseError: () => res.destroy(),
      });
    }).listen(Number(port), '127.0.0.1', () => r()),
  );
} else if (kind === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  await app.register(proxy, { upstream: target, undici: { connections: 64, pipelining: 1 } });
  await app.listen({ port: Number(port), host: '127.0.0.1' });
} else {
  const { default: httpProxy } = await import('http-proxy');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const p = httpProxy.createProxyServer({ target, agent });
  p.on('error', (_e, _req, res) => {
    res.writeHead?.(502);
    res.end();
  });
  await new Promise((r) =>
    createServer((req, res) => p.web(req, res)).listen(Number(port), '127.0.0.1', () => r()),
  );
}
console.log('listening');
