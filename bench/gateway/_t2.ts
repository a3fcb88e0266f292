import { createServer } from 'node:http';
import { parseGatewayConfig, startGateway } from '../../src/gateway/index.js';
const sse = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('data: first\n\n');
  setTimeout(() => res.end('data: [DONE]\n\n'), 5);
}).listen(0, '127.0.0.1');
await new Promise((r) => sse.once('listening', r));
const port = (sse.address() as { port: number }).port;
const gw = await startGateway({ config: parseGatewayConfig({ listen: '127.0.0.1:0', accessLog: false, upstreams: { s: { endpoints: [{ url: `http://127.0.0.1:${port}` }] } }, routes: [{ match: { path: '/' }, upstream: 's' }] }) });
if (process.env.UNDICI) for (const u of gw.components.upstreams) for (const e of u.endpoints) (e as { h1: unknown }).h1 = null;
async function first(url: string) { const t0 = performance.now(); const r = await fetch(url); const t1 = performance.now() - t0; const rd = r.body!.getReader(); await rd.read(); const ms = performance.now() - t0; await rd.cancel(); return [t1, ms]; }
const g: string[] = [];
for (let i = 0; i < 30; i++) { const [a, b] = await first(`${gw.url}/`); g.push(`${a!.toFixed(1)}/${b!.toFixed(1)}`); }
console.log(process.env.UNDICI ? 'undici' : 'h1', g.join(' '));
await gw.close(); sse.close();
