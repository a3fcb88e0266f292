/**
 * The fault proxy with no toxics vs a bare Node relay (`socket.pipe`) on the same machine
 * (issue 14, acceptance 4): throughput of a 64 MiB transfer (median of the per-round ratios),
 * and the added p99 latency of 1-byte round trips sent at a FIXED rate (open loop, over 4
 * connections; per round p99 via the proxy minus p99 via the relay, median over the rounds).
 * Rounds alternate relay / proxy so the machine's load cancels out. Goals: >= 0.9x the relay's
 * throughput, <= 100 µs added p99. Results: bench/RESULTS-chaos.md.
 *   npm run bench:chaos      (BENCH_MB, BENCH_RATE, BENCH_LAT_S, BENCH_ROUNDS to shorten)
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import { faultProxy } from '../dist/chaos/proxy/index.js';

const MB = Number(process.env.BENCH_MB ?? 64);
const RATE = Number(process.env.BENCH_RATE ?? 2_000);
const LAT_S = Number(process.env.BENCH_LAT_S ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
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

/** 1-byte round trips at RATE per second for LAT_S seconds over 4 connections: latencies in µs. */
async function fixedRate(port: number, seconds = LAT_S): Promise<number[]> {
  const conns: Socket[] = [];
  const sentAt: number[][] = [];
  const out: number[] = [];
  const total = Math.round(RATE * seconds);
  for (let c = 0; c < 4; c++) {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setNoDelay(true);
    await new Promise((r) => sock.once('connect', r));
    const queue: number[] = [];
    sock.on('data', (chunk: Buffer) => {
      const now = performance.now();
      for (let i = 0; i < chunk.length; i++) out.push((now - queue.shift()!) * 1000);
    });
    conns.push(sock);
    sentAt.push(queue);
  }
  const one = Buffer.from('x');
  const interval = 1000 / RATE;
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      while (i < due) {
        sentAt[i % 4]!.push(performance.now());
        conns[i % 4]!.write(one);
        i++;
      }
      if (i >= total) resolve();
      else setImmediate(tick);
    };
    tick();
  });
  const deadline = performance.now() + 5_000;
  while (out.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  for (const s of conns) s.destroy();
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
for (let round = 0; round < ROUNDS; round++) {
  const a = await throughput(rSink);
  const b = await throughput(portOf(pSink.listen));
  ratios.push(b / a);
  rows.push(`| ${round + 1} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)}× |`);
  process.stderr.write(`\rthroughput round ${round + 1}/${ROUNDS}`);
}
process.stderr.write('\n');
const added: number[] = [];
const addedP50: number[] = [];
const latRows: string[] = [];
const direct = await fixedRate(echoPort);
for (let round = 0; round < ROUNDS; round++) {
  // Ten interleaved slices per round, pooled per path: a burst of load hits both paths alike.
  const viaRelay: number[] = [];
  const viaProxy: number[] = [];
  for (let slice = 0; slice < 10; slice++) {
    viaRelay.push(...(await fixedRate(rEcho, LAT_S / 10)));
    viaProxy.push(...(await fixedRate(portOf(pEcho.listen), LAT_S / 10)));
  }
  viaRelay.sort((x, y) => x - y);
  viaProxy.sort((x, y) => x - y);
  const d = q(viaProxy, 0.99) - q(viaRelay, 0.99);
  added.push(d);
  addedP50.push(q(viaProxy, 0.5) - q(viaRelay, 0.5));
  latRows.push(
    `| ${round + 1} | ${q(viaRelay, 0.5).toFixed(0)} | ${q(viaRelay, 0.99).toFixed(0)} | ${q(viaProxy, 0.5).toFixed(0)} | ${q(viaProxy, 0.99).toFixed(0)} | ${d.toFixed(0)} |`,
  );
  process.stderr.write(`\rlatency round ${round + 1}/${ROUNDS}`);
}
process.stderr.write('\n');
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const ratio = median(ratios);
const addedP99 = median(added);
const md = `# Fault proxy benchmark

Machine: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}, Node ${process.version}, load average ${os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(
    ' / ',
  )}; run ${new Date().toISOString()} (\`npm run bench:chaos\`; BENCH_MB=${MB} BENCH_RATE=${RATE} BENCH_LAT_S=${LAT_S} BENCH_ROUNDS=${ROUNDS}).

The proxy has no toxic; the relay is a bare \`socket.pipe\` in both directions. Rounds alternate relay / proxy; the figures are medians of the per-round comparisons.

## Throughput: ${MB} MiB through each (MiB/s)

| round | relay | bulwark proxy | ratio |
|---|---|---|---|
${rows.join('\n')}

Median ratio: **${ratio.toFixed(2)}×** (goal >= 0.9×) — ${ratio >= 0.9 ? 'met' : 'NOT met'}.

## Latency at a fixed rate: ${RATE} one-byte round trips/s for ${LAT_S} s over 4 connections (µs)

Sent on schedule (open loop), each measured from its write to its echo; each round is ten interleaved slices per path, pooled. Direct to the echo server: p50 ${q(direct, 0.5).toFixed(0)}, p99 ${q(direct, 0.99).toFixed(0)}.

| round | relay p50 | relay p99 | proxy p50 | proxy p99 | added p99 (proxy − relay) |
|---|---|---|---|---|---|
${latRows.join('\n')}

Median added p99: **${addedP99.toFixed(0)} µs** (goal <= 100 µs) — ${addedP99 <= 100 ? 'met' : 'NOT met'}; median added p50: ${median(addedP50).toFixed(0)} µs.
${os.loadavg()[0]! > os.cpus().length ? `\nThe load average (${os.loadavg()[0]!.toFixed(1)}) is above the core count (${os.cpus().length}): p99 differences of this size are scheduling noise here; rerun on a quiet machine for the verdict.\n` : ''}`;
writeFileSync(new URL('./RESULTS-chaos.md', import.meta.url), md);
console.log(md);
await pSink.close();
await pEcho.close();
for (const s of [sink, echo, relaySink, relayEcho]) s.close();
