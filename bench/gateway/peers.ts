// The Node proxies the gateway is compared with, one process each: `fastify <port> <upstream>`,
// `http-proxy <port> <upstream>`, or `bare <port>` (a node:http hello server, no proxying). Prints "listening" when ready.
import { Agent, createServer } from 'node:http';

const [kind, port, target] = process.argv.slice(2) as [string, string, string];
if (kind === 'bare') {
  // Not a proxy: a node:http "hello" server, the Node listener's own ceiling on this machine.
  await new Promise<void>((r) =>
    createServer((_req, res) => res.end('hello')).listen(Number(port), '127.0.0.1', () => r()),
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
    (res as import('node:http').ServerResponse).writeHead?.(502);
    res.end();
  });
  await new Promise<void>((r) =>
    createServer((req, res) => p.web(req, res)).listen(Number(port), '127.0.0.1', () => r()),
  );
}
console.log('listening');
