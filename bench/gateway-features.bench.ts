/**
 * What the gateway's route policies cost, in ONE run (alternating rounds, median of per-round
 * ratios, `wrk -t1 -c50`), every gateway a separate process in front of the same upstream (a
 * Node process answering 200 with `cache-control: max-age=60`):
 *
 * - the gateway with no policies vs the same at the commit before the route policies
 *   (`BASE`, default 1a02d41): the cost of the new code when every feature is off;
 * - with a bulkhead (limit 1000, never full), a hedge that never fires (delayMs 10 s),
 *   coalescing, and a response cache (every request a hit), each vs no policies.
 *
 * Writes bench/RESULTS-gateway-features.md. Needs wrk. Run: `npm run bench:gateway-features`
 * (BENCH_SECONDS per run, default 3; BENCH_ROUNDS, default 3).
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BASE = process.env.BASE ?? '1a02d41';
const children: ChildProcess[] = [];

function spawnReady(args: string[], cwd: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`did not start: ${out}`)), 60_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(t);
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

function wrk(port: number, seconds = SECONDS): number {
  const out = execFileSync('wrk', ['-t1', '-c50', `-d${seconds}s`, `http://127.0.0.1:${port}/api/x`], {
    encoding: 'utf8',
  });
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  if (non2xx > 0) throw new Error(`${non2xx} non-2xx answers on port ${port}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// The base commit's src/, beside a node_modules link so its imports resolve.
const baseDir = mkdtempSync(join(tmpdir(), 'bulwark-gwf-base-'));
mkdirSync(join(baseDir, 'src'));
execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${BASE} src | tar -x -C "${baseDir}"`]);
symlinkSync(join(ROOT, 'node_modules'), join(baseDir, 'node_modules'));
writeFileSync(join(baseDir, 'package.json'), '{"type":"module"}');

const upstream = await spawnReady(
  [
    '-e',
    `require('node:http').createServer((q, s) => { s.setHeader('cache-control', 'max-age=60'); s.end('ok'); })
       .listen(0, '127.0.0.1', function () { console.log('ready ' + this.address().port); });`,
  ],
  ROOT,
);

function cfg(route: Record<string, unknown>): string {
  return JSON.stringify({
    listen: '127.0.0.1:0',
    accessLog: false,
    // No endpoint breaker: wrk cutting its connections at the end of a run would count as
    // endpoint failures (a client that leaves is counted against the endpoint: see the report).
    upstreams: {
      api: { endpoints: [{ url: `http://127.0.0.1:${upstream.port}` }], breaker: { enabled: false } },
    },
    routes: [{ name: 'api', match: { path: '/api' }, upstream: 'api', ...route }],
  });
}

const runner = join(ROOT, 'bench/gateway/features-run.ts');
const cases: [string, string, string][] = [
  ['base: no policies', join(baseDir, 'src'), cfg({})],
  ['no policies', join(ROOT, 'src'), cfg({})],
  ['bulkhead', join(ROOT, 'src'), cfg({ bulkhead: { limit: 1000 } })],
  ['hedge (never fires)', join(ROOT, 'src'), cfg({ hedge: { delayMs: 10_000 } })],
  ['coalesce', join(ROOT, 'src'), cfg({ coalesce: true })],
  ['cache (hits)', join(ROOT, 'src'), cfg({ cache: true })],
];
const ports: number[] = [];
for (const [, src, config] of cases)
  ports.push((await spawnReady(['--import', 'tsx', runner, src, config], ROOT)).port);

for (const p of ports) wrk(p, 1); // warm-up (JIT)
const load0 = loadavg()[0]!;
const rps: number[][] = cases.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < cases.length; i++) {
    const k = round % 2 === 0 ? i : cases.length - 1 - i; // alternate the order
    rps[k]!.push(wrk(ports[k]!));
  }
}
const load1 = loadavg()[0]!;
const ratio = (a: number, b: number) => median(rps[a]!.map((x, r) => x / rps[b]![r]!));
const rows = cases.map(
  ([name], i) =>
    `| ${name} | ${Math.round(median(rps[i]!))} | ${i === 0 ? '—' : `${ratio(i, i === 1 ? 0 : 1).toFixed(2)}× ${i === 1 ? '(vs base)' : '(vs no policies)'}`} |`,
);
const md = `# Gateway route policies: cost (bench/gateway-features.bench.ts)

One run, \`wrk -t1 -c50 -d${SECONDS}s\`, ${ROUNDS} alternating rounds, median of per-round ratios; every
gateway a separate process (one each) in front of the same Node upstream. Base = commit ${BASE}
(before the route policies). Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version},
load average ${load0.toFixed(2)} → ${load1.toFixed(2)}; ${new Date().toISOString()}.

| gateway | req/s (median) | ratio |
|---|---|---|
${rows.join('\n')}

${load0 > cpus().length ? `**Loaded machine** (load average above the ${cpus().length} cores): the spread between rounds is larger than the differences measured; these ratios say nothing — rerun on a quiet machine.\n\n` : ''}Read: "no policies vs base" is the cost of the new code on a route with every feature off (1.00×
= none). Coalescing with 50 connections on one URL shares upstream requests; a cache hit skips
the upstream entirely.
`;
writeFileSync(join(ROOT, 'bench/RESULTS-gateway-features.md'), md);
console.log(md);
for (const c of children) {
  try {
    process.kill(-c.pid!, 'SIGKILL');
  } catch {}
}
rmSync(baseDir, { recursive: true, force: true });
