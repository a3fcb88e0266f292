/**
 * The fault proxy with no toxics vs a bare Node relay (`socket.pipe`) on the same machine
 * (issue 14, acceptance 4): throughput of a 64 MiB transfer and the added p99 of 1-byte
 * round trips. Goals: >= 0.9x the relay's throughput, <= 100 µs added p99.
 * Results: bench/RESULTS-chaos.md.
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import { faultProxy } from '../src/chaos/proxy/index.js';

const MB = Number(process.env.BENCH_MB ?? 64);
const chunk = Buffer.alloc(64 * 1024, 1);
const listen = (s: Server) =>
  new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

const sink = createServer({ allowHalfOpen: true }, (s) => {
  s.on('data', () => {});
  s.on('end', () => s.end('done'));
});
const echo = createServer((s) => s.pipe(s));
const sinkPort = await listen(sink);
const echoPort = await listen(echo);

function relay(upstream: number): Server {
  return createServer({ allowHalfOpen: true }, (c) => {
    const u = connect({ host: '127.0.0.1', port: upstream, allowHalfOpen: true });
    c.setNoDelay(true);
    u.setNoDelay(true);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
}

async function throughput(port: number): Promise<number> {
  const sock = connect({ host: '127.0.0.1', port });
  await new Promise((r) => sock.once('connect', r));
  const t0 = performance.now();
  for (let i = 0; i < (MB * 1024 * 1024) / chunk.length; i++) {
    if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
  }
  sock.end();
  await new Promise((r) => sock.once('data', r));
  const s = (performance.now() - t0) / 1000;
  sock.destroy();
  return MB / s;
}

async function rtts(port: number, n: number): Promise<number[]> {
  const sock: Socket = connect({ host: '127.0.0.1', port });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    sock.write('x');
    await new Promise((r) => sock.once('data', r));
    out.push((performance.now() - t0) * 1000);
  }
  sock.destroy();
  return out.sort((a, b) => a - b);
}

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const relaySink = relay(sinkPort);
const relayEcho = relay(echoPort);
const [rSink, rEcho] = [await listen(relaySink), await listen(relayEcho)];
const pSink = await faultProxy({ name: 'sink', listen: '127.0.0.1:0', upstream: `127.0.0.1:${sinkPort}` });
const pEcho = await faultProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echoPort}` });
const portOf = (addr: string) => Number(addr.split(':')[1]);

const ratios: number[] = [];
const rows: string[] = [];
for (let round = 0; round < 5; round++) {
  const a = await throughput(rSink);
  const b = await throughput(portOf(pSink.listen));
  ratios.push(b / a);
  rows.push(`| ${round + 1} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)}× |`);
  process.stderr.write(`\rthroughput round ${round + 1}/5`);
}
process.stderr.write('\n');
const direct = await rtts(echoPort, 3000);
const viaRelay = await rtts(rEcho, 3000);
const viaProxy = await rtts(portOf(pEcho.listen), 3000);
ratios.sort((x, y) => x - y);
const median = ratios[2]!;
const added = q(viaProxy, 0.99) - q(direct, 0.99);
const addedRelay = q(viaRelay, 0.99) - q(direct, 0.99);
const md = `# Fault proxy benchmark

Machine: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}; run ${new Date().toISOString()} (\`npm run bench:chaos\`).

## Throughput: ${MB} MiB through the proxy with no toxics vs a bare \`socket.pipe\` relay (MiB/s)

| round | relay | bulwark proxy | ratio |
|---|---|---|---|
${rows.join('\n')}

Median ratio: **${median.toFixed(2)}×** (goal >= 0.9×).

## Latency: 3,000 one-byte round trips (µs)

| path | p50 | p99 |
|---|---|---|
| direct | ${q(direct, 0.5).toFixed(0)} | ${q(direct, 0.99).toFixed(0)} |
| socket.pipe relay | ${q(viaRelay, 0.5).toFixed(0)} | ${q(viaRelay, 0.99).toFixed(0)} |
| bulwark proxy | ${q(viaProxy, 0.5).toFixed(0)} | ${q(viaProxy, 0.99).toFixed(0)} |

Added p99 vs direct: proxy **${added.toFixed(0)} µs** (goal <= 100 µs), relay ${addedRelay.toFixed(0)} µs.
`;
writeFileSync(new URL('./RESULTS-chaos.md', import.meta.url), md);
console.log(md);
await pSink.close();
await pEcho.close();
for (const s of [sink, echo, relaySink, relayEcho]) s.close();
