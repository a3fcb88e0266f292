/**
 * The gateway against Debian's nginx and HAProxy (plain reverse proxies) and against
 * @fastify/http-proxy and http-proxy, in ONE run, same upstream (a 1-worker nginx answering
 * 200), one worker/process each, keep-alive to the upstream everywhere:
 *
 * 1. maximum throughput with `wrk -t1 -c50` (ratios vs nginx and @fastify/http-proxy);
 * 2. the gateway with its default policies on (timeouts, retry with budget, breaker, outlier
 *    ejection, a client rate limit, metrics) vs off: cost ratio;
 * 3. added latency (p50/p99 minus the upstream's own at the same rate) at a fixed rate with an
 *    open-loop generator of ours (bench/gateway/openloop.c, latency from each request's
 *    scheduled time, as wrk2): at half of nginx's maximum and at half of the gateway's own maximum.
 *
 * The gateway runs as users run it: `bin/bulwark.mjs` over the built package (dist/, rebuilt by
 * `tsc` at the start unless BENCH_NO_BUILD=1), the Node peers as plain JavaScript (peers.mjs):
 * no transpiler in any measured process.
 *
 * Every proxy is started first and warmed (JIT, pools) with wrk; then the throughput runs go in
 * ROUNDS rounds, each round running every proxy once in a rotated order, and each ratio is the
 * median of the per-round ratios (so load drifts on a shared machine cancel out). The SSE time to
 * first token alternates direct / gateway request by request.
 *
 * Writes bench/RESULTS-gateway.md. Needs nginx, haproxy and wrk (apt-get install nginx-light
 * haproxy wrk). Run: `npm run bench:gateway` (BENCH_SECONDS for the length of each wrk run,
 * BENCH_PAIRS and BENCH_PAIR_SECONDS for the back-to-back pairs behind the target ratios,
 * BENCH_LAT_TRIALS and BENCH_LAT_SECONDS for the open-loop latency trials,
 * default 4; BENCH_ROUNDS for the rounds, default 3).
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLoop } from './gateway/openloop.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
/**
 * Open-loop latency: BENCH_LAT_TRIALS trials (default 5) of BENCH_LAT_SECONDS (default 3) per proxy
 * and rate, the proxies interleaved within each trial. One trial's p99 on this shared 2-core VM
 * swings by an order of magnitude (a stalled vCPU stalls whichever process is on it), so the report
 * gives the median over the trials and the range.
 */
const LAT_TRIALS = Math.max(1, Number(process.env.BENCH_LAT_TRIALS ?? 5));
/** Back-to-back pairs for the targets' throughput ratios (BENCH_PAIRS, BENCH_PAIR_SECONDS). */
const PAIRS = Math.max(1, Number(process.env.BENCH_PAIRS ?? 8));
const PAIR_SECONDS = Number(process.env.BENCH_PAIR_SECONDS ?? 2);
const LAT_SECONDS = Number(process.env.BENCH_LAT_SECONDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-bench-'));
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
}

/**
 * Cores: with BENCH_PIN (default on with 2+ cores) every proxy runs alone on core 1 and everything
 * else — this script, the upstream, wrk and the open-loop generator — on core 0, the same for
 * every proxy. Without it, three busy processes share two cores wherever the scheduler puts them
 * and a proxy's figure swings by a third from run to run.
 */
const PIN = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;
if (PIN) execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });

/** `cmd args` on the proxies' core (when pinned). */
function onProxyCore(cmd: string, args: string[]): [string, string[]] {
  return PIN ? ['taskset', ['-c', '1', cmd, ...args]] : [cmd, args];
}

function start(
  cmd0: string,
  args0: string[],
  ready: RegExp | null,
  cwd = dir,
  proxy = true,
): Promise<ChildProcess> {
  const [cmd, args] = proxy ? onProxyCore(cmd0, args0) : [cmd0, args0];
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => (ready === null ? resolve(child) : reject(new Error(`${cmd} did not start: ${out}`))),
      ready === null ? 700 : 20_000,
    );
    const on = (d: Buffer) => {
      out += d.toString();
      if (ready?.test(out) === true) {
        clearTimeout(t);
        resolve(child);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${cmd} exited ${code}: ${out}`));
    });
  });
}

function stop(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {}
}

async function nginx(name: string, body: string, proxy = true): Promise<ChildProcess> {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${dir}/${name}.pid; error_log ${dir}/${name}.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/cb-${name}; proxy_temp_path ${dir}/pt-${name};
  fastcgi_temp_path ${dir}/ft-${name}; uwsgi_temp_path ${dir}/ut-${name}; scgi_temp_path ${dir}/st-${name};
  ${body} }`,
  );
  return start('nginx', ['-c', conf, '-p', dir, '-e', `${dir}/${name}.err`], null, dir, proxy);
}

const HZ = existsSync('/proc/self/stat')
  ? Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))
  : 0;

/** CPU time (user + system, clock ticks) of every process in process group `pgid` (Linux /proc). */
function groupTicks(pgid: number): number {
  if (HZ === 0) return Number.NaN;
  let t = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st: string;
    try {
      st = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid) t += Number(f[11]) + Number(f[12]);
  }
  return t;
}

function wrk(
  port: number,
  seconds: number,
): { rps: number; p50: number; p99: number; non2xx: number; requests: number; cpuUs: number } {
  const out = execFileSync(
    'wrk',
    ['-t1', '-c50', `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const ms = (re: RegExp) => {
    const m = re.exec(out);
    if (m === null) return Number.NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  return {
    rps,
    p50: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99: ms(/99%\s+([\d.]+)(us|ms|s)/),
    non2xx,
    requests,
    cpuUs: Number.NaN,
  };
}

/** Latency at a fixed request rate (open loop, from each request's scheduled time), in ms. */
interface AtRate {
  p50: number;
  p99: number;
  rps: number;
  /** How late the generator itself sent at p99 (ms): when near p99, the machine, not the proxy, set it. */
  late99: number;
  failed: number;
}

async function fixedRate(port: number, rate: number): Promise<AtRate> {
  const r = await openLoop({
    host: '127.0.0.1',
    port,
    connections: 32,
    rate: Math.max(1, Math.round(rate)),
    seconds: LAT_SECONDS,
    warmupSeconds: 1,
  });
  return {
    p50: r.p50 / 1000,
    p99: r.p99 / 1000,
    rps: r.achievedRate,
    late99: r.p99Late / 1000,
    failed: r.non2xx + r.errors + r.timeouts,
  };
}

/** One proxy's open-loop figures over the trials at one rate (ms; medians over the trials). */
interface LatStats {
  rps: number;
  failed: number;
  p50: number;
  p99: number;
  /** Per trial: this proxy's percentile minus the upstream's own in the same trial; the median. */
  added50: number;
  added99: number;
  /** The lowest and highest per-trial added p99. */
  added99Lo: number;
  added99Hi: number;
  late99: number;
  /** The share of one core the process (group) used during its runs, warm-ups included. */
  cpuShare: number;
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (
    `${r.stdout}${r.stderr}`
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? cmd
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Time to the first body chunk of one SSE stream, ms. */
async function firstChunkMs(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url);
  const reader = r.body!.getReader();
  await reader.read();
  const ms = performance.now() - t0;
  await reader.cancel();
  return ms;
}

/** Median times to the first SSE chunk, direct and through the gateway, alternating request by request. */
async function ttft(
  direct: string,
  gateway: string,
  n: number,
): Promise<{ direct: number; gateway: number }> {
  const d: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < 10; i++) {
    await firstChunkMs(direct);
    await firstChunkMs(gateway);
  }
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      d.push(await firstChunkMs(direct));
      g.push(await firstChunkMs(gateway));
    } else {
      g.push(await firstChunkMs(gateway));
      d.push(await firstChunkMs(direct));
    }
  }
  return { direct: median(d), gateway: median(g) };
}

function gatewayYaml(port: number, up: number, policies: boolean, ssePort = 0): string {
  const off = `    breaker: { enabled: false }\n    outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 }\n`;
  return `listen: 127.0.0.1:${port}
accessLog: false
upstreams:
  up:
    connections: 64
    endpoints: [{ url: "http://127.0.0.1:${up}" }]
${policies ? '' : off}${ssePort > 0 ? `  sse:\n    endpoints: [{ url: "http://127.0.0.1:${ssePort}" }]\n` : ''}routes:
${ssePort > 0 ? '  - match: { path: /sse }\n    upstream: sse\n' : ''}  - match: { path: / }
    upstream: up
${policies ? '    timeoutMs: 5000\n    perTryTimeoutMs: 2000\n    retry: { maxAttempts: 2 }\n    limits: [{ key: ip, limit: 100000000, windowMs: 1000 }]\n' : '    retry: false\n'}`;
}

async function main(): Promise<void> {
  if (process.env.BENCH_NO_BUILD !== '1') {
    console.error('building dist/ (tsc) so the gateway runs the current source…');
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
  }
  const upPort = await freePort();
  const sse = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    setTimeout(() => res.end('data: [DONE]\n\n'), 5);
  }).listen(0, '127.0.0.1');
  await new Promise((r) => sse.once('listening', r));
  const ssePort = (sse.address() as { port: number }).port;
  const upstream = await nginx(
    'upstream',
    `server { listen 127.0.0.1:${upPort}; location / { return 200 "hello"; } }`,
    false,
  );
  const cases: { name: string; port: number; launch: (port: number) => Promise<ChildProcess> }[] = [
    { name: 'upstream alone (nginx return 200)', port: upPort, launch: async () => upstream },
    {
      name: 'nginx reverse proxy (keepalive 64)',
      port: await freePort(),
      launch: (p) =>
        nginx(
          'nginx-proxy',
          `upstream u { server 127.0.0.1:${upPort}; keepalive 64; } server { listen 127.0.0.1:${p}; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        ),
    },
    {
      name: 'HAProxy (1 thread, http-reuse always)',
      port: await freePort(),
      launch: (p) => {
        const conf = join(dir, 'haproxy.cfg');
        writeFileSync(
          conf,
          `global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\nfrontend f\n  bind 127.0.0.1:${p}\n  default_backend b\nbackend b\n  server s1 127.0.0.1:${upPort} maxconn 64\n`,
        );
        return start('haproxy', ['-f', conf, '-db'], null);
      },
    },
    ...[false, true].map((policies) => ({
      name: policies ? 'bulwark gateway, default policies on' : 'bulwark gateway, no policies',
      port: 0,
      launch: async (p: number) => {
        const file = join(dir, `gw-${policies}.yaml`);
        writeFileSync(file, gatewayYaml(p, upPort, policies, ssePort));
        return start(
          process.execPath,
          [join(ROOT, 'bin/bulwark.mjs'), 'gateway', '-c', file, '--quiet'],
          /listening on/,
          ROOT,
        );
      },
    })),
    {
      name: '@fastify/http-proxy (undici, 64 connections)',
      port: await freePort(),
      launch: (p) =>
        start(
          process.execPath,
          [join(ROOT, 'bench/gateway/peers.mjs'), 'fastify', String(p), `http://127.0.0.1:${upPort}`],
          /listening/,
          ROOT,
        ),
    },
    {
      name: 'bare node:http hello (no proxying: the Node listener ceiling)',
      port: await freePort(),
      launch: (p) =>
        start(
          process.execPath,
          [join(ROOT, 'bench/gateway/peers.mjs'), 'bare', String(p), ''],
          /listening/,
          ROOT,
        ),
    },
    {
      name: 'Node proxying floor (node:http + the gateway upstream pool, no gateway logic)',
      port: await freePort(),
      launch: (p) =>
        start(
          process.execPath,
          [join(ROOT, 'bench/gateway/peers.mjs'), 'floor', String(p), `http://127.0.0.1:${upPort}`],
          /listening/,
          ROOT,
        ),
    },
    {
      name: 'http-proxy (keep-alive agent, 64 sockets)',
      port: await freePort(),
      launch: (p) =>
        start(
          process.execPath,
          [join(ROOT, 'bench/gateway/peers.mjs'), 'http-proxy', String(p), `http://127.0.0.1:${upPort}`],
          /listening/,
          ROOT,
        ),
    },
  ];
  for (const c of cases) if (c.port === 0) c.port = await freePort();
  type Run = ReturnType<typeof wrk>;
  const runs = new Map<string, Run[]>();
  const running = new Map<string, ChildProcess>();
  for (const c of cases) {
    running.set(c.name, await c.launch(c.port));
    runs.set(c.name, []);
  }
  // Warm-up: every proxy twice (JIT tiers, keep-alive pools), in turn.
  for (let i = 0; i < 2; i++) for (const c of cases) wrk(c.port, 2);
  for (let round = 0; round < ROUNDS; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length]!);
    for (const c of order) {
      // The proxy's own CPU time per request (its process group), beside its throughput.
      const pg = running.get(c.name)!.pid!;
      const t0 = groupTicks(pg);
      const r = wrk(c.port, SECONDS);
      r.cpuUs = ((groupTicks(pg) - t0) * 1e6) / HZ / r.requests;
      runs.get(c.name)!.push(r);
      console.error(
        `round ${round + 1}/${ROUNDS} ${c.name}: ${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, CPU ${r.cpuUs.toFixed(1)} µs/req`,
      );
    }
  }
  // Per case: the median run (by req/s); ratios: medians of the per-round ratios.
  const max = new Map<string, Run>();
  for (const c of cases) {
    const rs = [...runs.get(c.name)!].sort((a, b) => a.rps - b.rps);
    max.set(c.name, rs[(rs.length - 1) >> 1]!);
  }
  const cpu = (name: string) => median(runs.get(name)!.map((r) => r.cpuUs));
  const roundRatio = (a: string, b: string) =>
    median(runs.get(a)!.map((r, i) => r.rps / runs.get(b)!.at(i)!.rps));
  const nginxMax = max.get(cases[1]!.name)!.rps;
  const gwMax = max.get(cases[3]!.name)!.rps;
  // The targets' ratios from back-to-back pairs: the VM's speed drifts by a quarter over tens of
  // seconds, and a round puts up to eight other runs between two proxies; a pair puts none.
  const paired = (a: string, b: string) => {
    const pa = cases.find((c) => c.name === a)!.port;
    const pb = cases.find((c) => c.name === b)!.port;
    const ratios: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // Which goes first alternates, so a drift within a pair cancels over the pairs.
      const [x, y] =
        i % 2 === 0 ? [wrk(pa, PAIR_SECONDS), wrk(pb, PAIR_SECONDS)] : [null, wrk(pb, PAIR_SECONDS)];
      ratios.push((x ?? wrk(pa, PAIR_SECONDS)).rps / y.rps);
    }
    console.error(`pairs ${a} ÷ ${b}: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
    return { ratios, median: median(ratios) };
  };
  const pairNginx = paired(cases[3]!.name, cases[1]!.name);
  const pairFastify = paired(cases[3]!.name, cases[5]!.name);
  const pairOn = paired(cases[3]!.name, cases[4]!.name);
  const latencyAt = async (rate: number, names: string[]) => {
    const per = new Map<string, { r: AtRate; cpu: number }[]>(names.map((n) => [n, []]));
    for (let t = 0; t < LAT_TRIALS; t++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(k + t) % names.length]!;
        const c = cases.find((x) => x.name === n)!;
        const pg = running.get(n)!.pid!;
        const t0 = groupTicks(pg);
        const w0 = performance.now();
        const r = await fixedRate(c.port, rate);
        const cpu = (groupTicks(pg) - t0) / HZ / ((performance.now() - w0) / 1000);
        per.get(n)!.push({ r, cpu });
      }
      console.error(`latency at ${Math.round(rate)} req/s: trial ${t + 1}/${LAT_TRIALS} done`);
    }
    const up = per.get(names[0]!)!;
    const out = new Map<string, LatStats>();
    for (const n of names) {
      const xs = per.get(n)!;
      const added99 = xs.map((x, i) => x.r.p99 - up[i]!.r.p99);
      out.set(n, {
        rps: median(xs.map((x) => x.r.rps)),
        failed: xs.reduce((a, x) => a + x.r.failed, 0),
        p50: median(xs.map((x) => x.r.p50)),
        p99: median(xs.map((x) => x.r.p99)),
        added50: median(xs.map((x, i) => x.r.p50 - up[i]!.r.p50)),
        added99: median(added99),
        added99Lo: Math.min(...added99),
        added99Hi: Math.max(...added99),
        late99: median(xs.map((x) => x.r.late99)),
        cpuShare: median(xs.map((x) => x.cpu)),
      });
    }
    return out;
  };
  const latNames = [cases[0]!.name, cases[1]!.name, cases[2]!.name, cases[3]!.name, cases[4]!.name];
  const t = await ttft(`http://127.0.0.1:${ssePort}/sse`, `http://127.0.0.1:${cases[3]!.port}/sse`, 100);
  const ttftDirect = t.direct;
  const ttftGateway = t.gateway;
  sse.close();
  const atNginxHalf = await latencyAt(nginxMax / 2, latNames);
  const atGwHalf = await latencyAt(gwMax / 2, latNames);
  for (const child of running.values()) stop(child);

  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  const rows = cases.map((c) => {
    const r = max.get(c.name)!;
    const non2xx = runs.get(c.name)!.reduce((n, x) => n + x.non2xx, 0);
    return `| ${c.name} | ${Math.round(r.rps)} | ${non2xx} | ${roundRatio(c.name, cases[1]!.name).toFixed(2)} | ${roundRatio(c.name, cases[5]!.name).toFixed(2)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${cpu(c.name).toFixed(1)} |`;
  });
  const perRound = runs
    .get(cases[3]!.name)!
    .map(
      (r, i) =>
        `| ${i + 1} | ${(r.rps / runs.get(cases[1]!.name)![i]!.rps).toFixed(2)} | ${(r.rps / runs.get(cases[5]!.name)![i]!.rps).toFixed(2)} | ${(r.rps / runs.get(cases[4]!.name)![i]!.rps).toFixed(2)} | ${(r.rps / runs.get(cases[7]!.name)![i]!.rps).toFixed(2)} |`,
    );
  const latRows = (m: Map<string, LatStats>) =>
    latNames.map((n, i) => {
      const r = m.get(n)!;
      const added =
        i === 0
          ? '— | — | —'
          : `${fmt(r.added50)} | **${fmt(r.added99)}** | ${fmt(r.added99Lo)} – ${fmt(r.added99Hi)}`;
      return `| ${n} | ${Math.round(r.rps)} | ${r.failed} | ${Math.round(r.cpuShare * 100)}% | ${fmt(r.p50)} | ${fmt(r.p99)} | ${added} | ${fmt(r.late99)} |`;
    });
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  const onCost = pairOn.median;
  const cpuOf = (i: number) => cpu(cases[i]!.name);
  const vsNginx = pairNginx.median;
  const vsFastify = pairFastify.median;
  const pairRow = (label: string, p: { ratios: number[]; median: number }) =>
    `| ${label} | **${p.median.toFixed(2)}** | ${Math.min(...p.ratios).toFixed(2)} – ${Math.max(...p.ratios).toFixed(2)} | ${p.ratios.map((r) => r.toFixed(2)).join(' ')} |`;
  const report = `# Gateway benchmark (bench/gateway.bench.ts)

One run, ${new Date().toISOString()}. Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average
${loadavg()
  .map((x) => x.toFixed(1))
  .join(' / ')} at the end (the machine is shared: read ratios, not absolute figures).
Versions: Node ${process.version}; ${version('nginx', ['-v'])}; ${version('haproxy', ['-v'])}; ${version('wrk', ['-v'])};
undici ${pkg('undici')}; @fastify/http-proxy ${pkg('@fastify/http-proxy')}; fastify ${pkg('fastify')}; http-proxy ${pkg('http-proxy')}; the open-loop generator built with ${version('gcc', ['--version'])}.

Same upstream for all (a 1-worker nginx answering \`200 hello\`), one worker / process / thread per
proxy, keep-alive to the upstream everywhere. Throughput: \`wrk -t1 -c50 -d${SECONDS}s\`, every proxy
warmed twice for 2 s first, then ${ROUNDS} rounds (each proxy once per round, the order rotated each
round). req/s, p50, p99: the median run; ratios: the median of the per-round ratios.
${PIN ? 'Cores: each proxy alone on core 1; the upstream, wrk and the open-loop generator on core 0 (so the "upstream alone" row is bounded by wrk sharing its core).' : 'Cores: not pinned (BENCH_PIN=0 or no taskset): proxies, upstream and load generators share the cores.'}

| Proxy | req/s | non-2xx | × nginx | × @fastify/http-proxy | p50 ms | p99 ms | CPU µs/req |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

CPU µs/req: the proxy's own CPU time (user + system, all its processes, from /proc) per request
during its wrk runs (median over the rounds; for the upstream row, the upstream's). On a machine
where the proxy's core is the limit, throughput ratios tend to the inverse CPU ratios — nginx ÷
gateway ${(cpuOf(1) / cpuOf(3)).toFixed(2)}×, @fastify/http-proxy ÷ gateway ${(cpuOf(5) / cpuOf(3)).toFixed(2)}×, policies on ÷ off ${(cpuOf(4) / cpuOf(3)).toFixed(2)}×,
gateway ÷ the Node proxying floor ${(cpuOf(3) / cpuOf(7)).toFixed(2)}×. On a shared machine it moves with the load too (caches,
other tenants), so read it beside the throughput ratios, not instead of them.

Targets (issue 13), from ${PAIRS} back-to-back pairs of ${PAIR_SECONDS} s runs each (which of the two runs first
alternates; the median pair): gateway without policies ≥ 0.6× nginx → **${vsNginx.toFixed(2)}×**; ≥ 1.5×
@fastify/http-proxy → **${vsFastify.toFixed(2)}×**; default policies on ≤ 1.15× the cost of off →
**${onCost.toFixed(2)}×** (off req/s ÷ on req/s).

| Pairs | median | range | every pair |
|---|---|---|---|
${pairRow('gateway ÷ nginx', pairNginx)}
${pairRow('gateway ÷ @fastify/http-proxy', pairFastify)}
${pairRow('gateway off ÷ on (cost of the default policies)', pairOn)}

Per round of the table above (gateway without policies ÷ the other, same round; the runs of a
round are up to 30 s apart, so these move with the machine more than the pairs do):

| round | × nginx | × @fastify/http-proxy | off ÷ on | × Node proxying floor |
|---|---|---|---|---|
${perRound.join('\n')}

## Added latency at a fixed rate (open loop, 32 connections, ${LAT_TRIALS} trials of 1 s warm-up + ${LAT_SECONDS} s)

Latency counts from each request's scheduled send time (coordinated omission corrected). Each
trial runs every row once (the order rotated per trial); figures are medians over the trials.
Added = the row's percentile minus the upstream's own in the same trial (median over trials; the
range shows the lowest and highest trial). "CPU": the share of one core the row's process used
during its runs — a proxy near 100% is at its limit and queues. "gen. late p99": how late the
generator itself was at sending, at p99 — where it is close to a row's p99, the machine's
scheduling (2 cores shared by the generator, the proxy and the upstream), not the proxy, set it.

At half of nginx's maximum (${Math.round(nginxMax / 2)} req/s requested):

| Proxy | req/s done | failed | CPU | p50 ms | p99 ms | added p50 ms | added p99 ms | added p99 range | gen. late p99 ms |
|---|---|---|---|---|---|---|---|---|---|
${latRows(atNginxHalf).join('\n')}

At half of the gateway's own maximum (${Math.round(gwMax / 2)} req/s requested):

| Proxy | req/s done | failed | CPU | p50 ms | p99 ms | added p50 ms | added p99 ms | added p99 range | gen. late p99 ms |
|---|---|---|---|---|---|---|---|---|---|
${latRows(atGwHalf).join('\n')}

## Time to first token (SSE)

Median over 100 streams each (fetch, first body chunk; direct and through the gateway alternating, after 10 warm-up pairs): direct ${ttftDirect.toFixed(2)} ms, through the
gateway ${ttftGateway.toFixed(2)} ms (**+${(ttftGateway - ttftDirect).toFixed(2)} ms**; target: within 5 ms of direct).

Target: added p99 ≤ 2 ms at half of nginx's maximum rate (where a row's "req/s done" is below the
rate requested, the proxy could not keep up and its latency includes queueing).

## How the gateway is set up here

- Upstream transport: the gateway's own HTTP/1.1 keep-alive pool for \`http://\` endpoints
  (src/gateway/h1-pool.ts, h1-parse.ts: one write per request head, the response parsed in JS,
  reads straight into a per-socket buffer through \`onread\`, no promise/stream/closure per
  request); undici only for other endpoints, health checks and store-and-forward deliveries.
- "No policies": \`retry: false\`, breaker off, outlier ejection thresholds 0. "Default policies
  on": route \`timeoutMs\` 5 s, \`perTryTimeoutMs\` 2 s, retry (2 attempts) with the upstream's
  retry budget, the endpoint breaker, outlier ejection, a per-client-IP rate limit (with IETF
  RateLimit response headers). Metrics are on in both (plain counters and a duration histogram
  per route, counters and a latency EWMA per endpoint, read only when scraped).
- Access log: off in both rows (\`accessLog: false\`). When on, the CLI writes it through pino
  with an asynchronous destination (\`pino.destination({ sync: false })\`): one entry per
  request, no sampling.
- Plain HTTP/1.1 on the listener is served by the gateway's own front end (h1-server.ts) for
  bodiless GET/HEAD/OPTIONS, node:http for the rest (docs/gateway.md).
- "Node proxying floor": node:http in front of the same upstream pool with none of the gateway's
  work (routing, header hygiene, X-Forwarded-*, request ids, policies, metrics): what a Node
  proxy costs on this machine before any gateway logic.
`;
  writeFileSync(join(ROOT, 'bench/RESULTS-gateway.md'), report);
  console.log(report);
}

try {
  await main();
} finally {
  for (const c of children) stop(c);
  rmSync(dir, { recursive: true, force: true });
}
