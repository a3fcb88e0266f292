import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
const sse = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('data: first\n\n');
  setTimeout(() => res.end('data: [DONE]\n\n'), 5);
}).listen(0, '127.0.0.1');
await new Promise((r) => sse.once('listening', r));
const port = (sse.address() as { port: number }).port;
writeFileSync('/tmp/gwp/sse.yaml', `listen: 127.0.0.1:18720\naccessLog: false\nupstreams:\n  s:\n    endpoints: [{ url: "http://127.0.0.1:${port}" }]\nroutes:\n  - match: { path: / }\n    upstream: s\n    retry: false\n`);
const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/gateway-run.ts', '/tmp/gwp/sse.yaml'], { stdio: ['ignore', 'pipe', 'pipe'] });
await new Promise((r) => { child.stdout!.on('data', (d) => String(d).includes('listening') && r(0)); child.stderr!.on('data', (d) => String(d).includes('listening') && r(0)); });
async function first(url: string) { const t0 = performance.now(); const r = await fetch(url); const rd = r.body!.getReader(); await rd.read(); const ms = performance.now() - t0; if (process.env.DRAIN) { while (!(await rd.read()).done); } else await rd.cancel(); return ms; }
const d: number[] = [], g: number[] = [];
for (let i = 0; i < 60; i++) { d.push(await first(`http://127.0.0.1:${port}/`)); g.push(await first(`http://127.0.0.1:18720/`)); }
const med = (x: number[]) => x.sort((a, b) => a - b)[x.length >> 1]!.toFixed(2);
console.log(process.env.GWTEST_UNDICI ? 'undici' : 'h1', 'direct', med(d), 'gateway', med(g), g.map((x) => x.toFixed(0)).join(' '));
child.kill(); sse.close();
