/**
 * Control-plane benchmarks (issue 12, acceptance 3):
 * 1. the event stream sustains 1,000 events/s to 20 clients for 60 s: the server's RSS growth
 *    (goal < 20 MB) and the event lag p99 (goal < 250 ms), the server in its own process;
 * 2. a dashboard showing 200 components updating at 1 Hz: the longest task in Chromium's
 *    performance timeline (goal: none over 50 ms).
 * `--seconds N` shortens part 1 (default 60). Results: bench/RESULTS-server.md.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createRegistry } from '../dist/core/registry.js';
import { createControlPlane } from '../dist/server/index.js';
import { FakeBreaker, FakeLimiter, FakeQueue, TOKENS } from '../test/support/control-plane-fixture.js';

const TOKEN = TOKENS.viewer;
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};

/** Child mode: a control plane whose breaker emits `rate` events/s; prints its port, then RSS on request. */
async function serve(): Promise<void> {
  const registry = createRegistry();
  const breaker = registry.register(new FakeBreaker('hot'));
  for (let i = 0; i < 20; i++) registry.register(new FakeBreaker(`dep-${i}`));
  const cp = createControlPlane({ registry, tokens: [{ role: 'viewer', token: TOKEN }] });
  const server = createServer(cp.handle).listen(0, '127.0.0.1', () => {
    process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`);
  });
  // 1,000 events/s: 10 every 10 ms, each stamped with its emit time.
  setInterval(() => {
    for (let i = 0; i < 10; i++)
      (breaker as unknown as { emit(e: string, x: object): void }).emit('tick', {
        t: performance.timeOrigin + performance.now(),
      });
  }, 10);
  process.stdin.on('data', (d) => {
    if (String(d).includes('rss')) process.stdout.write(`rss ${process.memoryUsage().rss}\n`);
    if (String(d).includes('dropped'))
      process.stdout.write(`dropped ${cp.stream.dropped} ${cp.stream.lastId}\n`);
    if (String(d).includes('exit')) process.exit(0);
  });
}

async function streamBench(seconds: number): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    lines.push(...d.trim().split('\n'));
    wake?.();
  });
  const next = async (prefix: string): Promise<string> => {
    for (;;) {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return lines.splice(i, 1)[0]!.slice(prefix.length + 1);
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  const port = Number(await next('port'));
  const lags: number[] = [];
  let received = 0;
  const ac = new AbortController();
  const clients = Array.from({ length: 20 }, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/stream`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: ac.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          end = buf.indexOf('\n\n');
          const m = /"t":([\d.]+)/.exec(frame);
          if (m !== null && frame.includes('event: event')) {
            received++;
            if (received % 7 === 0) lags.push(performance.timeOrigin + performance.now() - Number(m[1]));
          }
        }
      }
    } catch {
      // aborted at the end
    }
  });
  await new Promise((r) => setTimeout(r, 5000)); // warm-up
  child.stdin.write('rss\n');
  const rss0 = Number(await next('rss'));
  lags.length = 0;
  const start = received;
  const t0 = Date.now();
  for (let s = 0; s < seconds; s += 5) {
    await new Promise((r) => setTimeout(r, 5000));
    process.stderr.write(
      `\rstream: ${Math.round((Date.now() - t0) / 1000)}/${seconds} s, ${Math.round((received - start) / ((Date.now() - t0) / 1000))} events/s received`,
    );
  }
  child.stdin.write('rss\n');
  const rss1 = Number(await next('rss'));
  child.stdin.write('dropped\n');
  const [dropped, emitted] = (await next('dropped')).split(' ').map(Number) as [number, number];
  const elapsed = (Date.now() - t0) / 1000;
  ac.abort();
  await Promise.allSettled(clients);
  child.stdin.write('exit\n');
  process.stderr.write('\n');
  lags.sort((a, b) => a - b);
  const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))] ?? Number.NaN;
  return {
    seconds: elapsed,
    eventsPerSecondPerClient: (received - start) / elapsed / 20,
    rssGrowthMb: (rss1 - rss0) / 2 ** 20,
    lagP50Ms: q(0.5),
    lagP99Ms: q(0.99),
    emittedPerSecond: emitted / (elapsed + 5),
    droppedForSlowClients: dropped,
  };
}

async function dashboardBench(): Promise<Record<string, number>> {
  const registry = createRegistry();
  const breakers: FakeBreaker[] = [];
  for (let i = 0; i < 120; i++) breakers.push(registry.register(new FakeBreaker(`dependency-${i}`)));
  for (let i = 0; i < 40; i++) registry.register(new FakeLimiter(`limiter-${i}`));
  for (let i = 0; i < 40; i++) registry.register(new FakeQueue(`queue-${i}`));
  const timer = setInterval(() => {
    for (const b of breakers) for (let k = 0; k < 5; k++) b.call(Math.random() > 0.1);
    const b = breakers[Math.floor(Math.random() * breakers.length)]!;
    b.set(b.state === 'closed' ? 'open' : 'closed');
  }, 100);
  const cp = createControlPlane({ registry, tokens: [{ role: 'viewer', token: TOKEN }] });
  const server = createServer(cp.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.addInitScript(() => {
    const w = window as unknown as { __long: number[] };
    w.__long = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__long.push(e.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(`${base}/`);
  await page.fill('#token', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-key="circuitBreaker/dependency-119"]');
  await page.waitForTimeout(3000);
  await page.evaluate(() => {
    (window as unknown as { __long: number[] }).__long = [];
  });
  const seconds = 20;
  const updates0 = await page.evaluate(() => document.querySelectorAll('.tile').length);
  await page.waitForTimeout(seconds * 1000);
  const long = await page.evaluate(() => (window as unknown as { __long: number[] }).__long);
  await browser.close();
  clearInterval(timer);
  cp.close();
  server.close();
  return {
    components: registry.size,
    tiles: updates0,
    seconds,
    longTasks: long.length,
    longestTaskMs: long.length === 0 ? 0 : Math.max(...long),
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--serve')) return serve();
  const seconds = arg('seconds', 60);
  const stream = await streamBench(seconds);
  console.log('stream', stream);
  const dash = await dashboardBench();
  console.log('dashboard', dash);
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const md = `# Control plane benchmarks

Machine: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; run ${new Date().toISOString()} (\`npm run bench:server\`).

## Event stream: 1,000 events/s to 20 clients for ${Math.round(stream.seconds!)} s (server in its own process)

| figure | value | goal |
|---|---|---|
| events/s emitted (whole run incl. warm-up) | ${stream.emittedPerSecond!.toFixed(0)} | 1,000 |
| events/s received per client | ${stream.eventsPerSecondPerClient!.toFixed(0)} | 1,000 |
| events not sent to congested clients (coalesced away) | ${stream.droppedForSlowClients} | |
| server RSS growth | ${stream.rssGrowthMb!.toFixed(1)} MB | < 20 MB (${verdict(stream.rssGrowthMb! < 20)}) |
| event lag p50 | ${stream.lagP50Ms!.toFixed(1)} ms | |
| event lag p99 | ${stream.lagP99Ms!.toFixed(1)} ms | < 250 ms (${verdict(stream.lagP99Ms! < 250)}) |

## Dashboard: ${dash.components} components updating at 1 Hz, ${dash.seconds} s in headless Chromium

| figure | value | goal |
|---|---|---|
| long tasks (> 50 ms) | ${dash.longTasks} | 0 (${verdict(dash.longTasks === 0)}) |
| longest task | ${dash.longestTaskMs!.toFixed(0)} ms | |
`;
  writeFileSync(new URL('./RESULTS-server.md', import.meta.url), md);
  console.log(md);
}

await main();
