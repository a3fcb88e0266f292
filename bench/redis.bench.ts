/**
 * Redis rate limiting: Bulwark's `redisRateLimiter` against rate-limiter-flexible's
 * `RateLimiterRedis` (ioredis `storeClient`), on the same local Redis, same limit (fixed window
 * of 1 s), same 100 keys round robin, in one process, at concurrency 1 (sequential awaits) and
 * 64 (64 concurrent loops on one client each, so ioredis pipelines what is in flight).
 *
 *   npx tsx bench/redis.bench.ts              # prints and writes bench/RESULTS-redis.md
 *   npx tsx bench/redis.bench.ts --no-write   # prints only
 *
 * Rounds are interleaved (every case once per round, fixed time each); the median ops/s is
 * reported. Commands per decision are counted twice: by Redis (`INFO commandstats`, delta of the
 * calls of every command over a counting run / decisions; Redis 7 also counts the commands a Lua
 * script runs) and on the client (commands ioredis writes to the socket = round trips when
 * awaited one by one). Keys use a random prefix and are deleted at the end (never FLUSHALL).
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { redisRateLimiter } from '../dist/redis/rate-limiter.js';

const write = !process.argv.includes('--no-write');
const ROUNDS = 15;
const MS_PER_ROUND = 300;
const KEYS = Array.from({ length: 100 }, (_, i) => `user-${i}`);
const HIGH = 1_000_000_000;
const LOW = 10;
const CONCURRENCIES = [1, 64] as const;
const PREFIX = `bench:rl:${randomBytes(6).toString('hex')}:`;

interface Lib {
  readonly label: string;
  readonly client: Redis;
  /** Client-side count of commands written (wraps `sendCommand`). */
  sent: number;
  /** One decision: true when allowed. */
  readonly decide: (key: string) => Promise<boolean>;
}

interface Case {
  readonly name: string;
  readonly lib: Lib;
  readonly concurrency: number;
  readonly limit: 'high' | 'low';
}

function connect(): Redis {
  const c = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  c.on('error', () => {});
  return c;
}

function counted(lib: Omit<Lib, 'sent'>): Lib {
  const l: Lib = { ...lib, sent: 0 };
  const orig = l.client.sendCommand.bind(l.client);
  l.client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    l.sent++;
    return orig(...args);
  }) as Redis['sendCommand'];
  return l;
}

function ours(label: string, points: number, prefix: string): Lib {
  const client = connect();
  const limiter = redisRateLimiter({
    client,
    limits: [{ algorithm: 'fixed-window', limit: points, windowMs: 1_000 }],
    prefix,
    // RLF waits for Redis however long it takes: so do we here (a loaded machine must not turn
    // our calls into insurance decisions, counted below).
    timeoutMs: 1_000,
  });
  const lib = counted({
    label,
    client,
    decide: (key) => limiter.consume(key).then((d) => d.allowed),
  });
  oursLimiters.push(limiter);
  return lib;
}
const oursLimiters: ReturnType<typeof redisRateLimiter>[] = [];

function rlf(label: string, points: number, prefix: string): Lib {
  const client = connect();
  const limiter = new RateLimiterRedis({ storeClient: client, points, duration: 1, keyPrefix: prefix });
  const yes = () => true;
  const no = (e: unknown) => {
    if (e instanceof Error) throw e; // a Redis error, not a rejection by the limit
    return false;
  };
  return counted({ label, client, decide: (key) => limiter.consume(key).then(yes, no) });
}

/** Runs `concurrency` loops for `ms`; returns ops/s and the allowed share. */
async function measure(c: Case, ms: number): Promise<{ ops: number; allowed: number }> {
  let ops = 0;
  let allowed = 0;
  let i = 0;
  const decide = c.lib.decide;
  const start = performance.now();
  const end = start + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const k = KEYS[i]!;
      i = i + 1 === KEYS.length ? 0 : i + 1;
      if (await decide(k)) allowed++;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, loop));
  return { ops: (ops * 1000) / (performance.now() - start), allowed: ops === 0 ? 0 : allowed / ops };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function formatOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)} M`;
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(1)} k`;
  return ops.toFixed(0);
}

/** Calls per command, and the server time (µs) spent in scripts (EVALSHA + EVAL). */
async function commandstats(admin: Redis): Promise<{ calls: Map<string, number>; scriptUsec: number }> {
  const info = await admin.info('commandstats');
  const calls = new Map<string, number>();
  let scriptUsec = 0;
  for (const line of info.split('\n')) {
    const r = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (!r) continue;
    calls.set(r[1]!, Number(r[2]));
    if (r[1] === 'evalsha' || r[1] === 'eval') scriptUsec += Number(r[3]);
  }
  return { calls, scriptUsec };
}

interface Count {
  readonly total: number;
  readonly clientSent: number;
  readonly breakdown: string;
  /** Server time in the script per decision, µs (includes the commands it runs). */
  readonly scriptUsec: number;
}

/** Sequential decisions of one library alone; commandstats delta minus the admin's own INFO. */
async function countCommands(admin: Redis, lib: Lib, n: number): Promise<Count> {
  const before = await commandstats(admin);
  const sent0 = lib.sent;
  for (let i = 0; i < n; i++) await lib.decide(KEYS[i % KEYS.length]!);
  const sent = lib.sent - sent0;
  const after = await commandstats(admin);
  const parts: string[] = [];
  let total = 0;
  for (const [cmd, calls] of after.calls) {
    let d = calls - (before.calls.get(cmd) ?? 0);
    if (cmd === 'info') d -= 1; // the first INFO itself
    if (d <= 0) continue;
    total += d;
    parts.push(`${cmd} ${(d / n).toFixed(2)}`);
  }
  return {
    total: total / n,
    clientSent: sent / n,
    breakdown: parts.join(', '),
    scriptUsec: (after.scriptUsec - before.scriptUsec) / n,
  };
}

async function deleteKeys(admin: Redis): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await admin.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const admin = connect();
  await admin.connect();
  const server = await admin.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(server)?.[1] ?? '?';
  const rlfVersion = (
    JSON.parse(
      readFileSync(new URL('../node_modules/rate-limiter-flexible/package.json', import.meta.url), 'utf8'),
    ) as { version: string }
  ).version;
  const ioredisVersion = (
    JSON.parse(readFileSync(new URL('../node_modules/ioredis/package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

  const libs = {
    high: {
      ours: ours('bulwark redisRateLimiter', HIGH, `${PREFIX}b:h:`),
      rlf: rlf('RLF RateLimiterRedis', HIGH, `${PREFIX}r:h`),
    },
    low: {
      ours: ours('bulwark redisRateLimiter', LOW, `${PREFIX}b:l:`),
      rlf: rlf('RLF RateLimiterRedis', LOW, `${PREFIX}r:l`),
    },
  };
  const all = [libs.high.ours, libs.high.rlf, libs.low.ours, libs.low.rlf];
  await Promise.all(all.map((l) => l.client.connect()));

  const cases: Case[] = [];
  for (const limit of ['high', 'low'] as const) {
    for (const concurrency of CONCURRENCIES) {
      for (const lib of [libs[limit].ours, libs[limit].rlf]) {
        cases.push({ name: `${lib.label}, ${limit}, c=${concurrency}`, lib, concurrency, limit });
      }
    }
  }

  let counts: { ours: Count; rlf: Count; oursLow: Count; rlfLow: Count };
  const per = new Map<Case, { ops: number[]; allowed: number[] }>(
    cases.map((c) => [c, { ops: [], allowed: [] }]),
  );
  try {
    // Warm-up (JIT, script cache: the first EVALSHA of ours may get NOSCRIPT and EVAL once).
    for (const c of cases) await measure(c, 150);
    counts = {
      ours: await countCommands(admin, libs.high.ours, 2_000),
      rlf: await countCommands(admin, libs.high.rlf, 2_000),
      oursLow: await countCommands(admin, libs.low.ours, 2_000),
      rlfLow: await countCommands(admin, libs.low.rlf, 2_000),
    };
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order each round so no case always follows the same one.
      for (let j = 0; j < cases.length; j++) {
        const c = cases[(j + r) % cases.length]!;
        const m = await measure(c, MS_PER_ROUND);
        per.get(c)!.ops.push(m.ops);
        per.get(c)!.allowed.push(m.allowed);
      }
      console.error(`round ${r + 1}/${ROUNDS} done`);
    }
  } finally {
    const deleted = await deleteKeys(admin);
    console.error(`deleted ${deleted} keys under ${PREFIX}`);
    await Promise.all([...all.map((l) => l.client.quit()), admin.quit()]);
  }

  const med = (c: Case) => median(per.get(c)!.ops);
  const find = (limit: 'high' | 'low', concurrency: number, lib: Lib) =>
    cases.find((c) => c.limit === limit && c.concurrency === concurrency && c.lib === lib)!;
  const fallbacks = oursLimiters.reduce((s, l) => s + l.stats.fallback, 0);

  const targets: string[] = [
    '| Comparison | Bulwark ops/s (median) | RLF ops/s (median) | Ratio (median of per-round ratios) | Goal | Met |',
    '|---|---:|---:|---:|---:|:---:|',
  ];
  for (const limit of ['high', 'low'] as const) {
    for (const concurrency of CONCURRENCIES) {
      const oc = find(limit, concurrency, libs[limit].ours);
      const fc = find(limit, concurrency, libs[limit].rlf);
      const o = med(oc);
      const f = med(fc);
      const goal = concurrency === 1 ? 1.0 : 1.5;
      // The two cases of a comparison run back to back in every round: the median of the
      // per-round ratios absorbs the load bursts of a shared machine better than a ratio of medians.
      const ratio = median(per.get(oc)!.ops.map((x, r) => x / per.get(fc)!.ops[r]!));
      const what = limit === 'high' ? 'mostly allowed' : `with rejections (${LOW}/s per key)`;
      targets.push(
        `| ${what}, concurrency ${concurrency} | ${formatOps(o)} | ${formatOps(f)} | ${ratio.toFixed(2)}× | ≥ ${goal.toFixed(1)}× | ${ratio >= goal ? 'yes' : '**no**'} |`,
      );
    }
  }

  const allCases = [
    '| Case | median ops/s | µs/op | allowed | rounds (k ops/s) |',
    '|---|---:|---:|---:|---|',
  ];
  for (const c of cases) {
    const p = per.get(c)!;
    const o = median(p.ops);
    allCases.push(
      `| ${c.name} | ${formatOps(o)} | ${(1e6 / o).toFixed(1)} | ${(median(p.allowed) * 100).toFixed(1)} % | ${p.ops.map((x) => (x / 1e3).toFixed(1)).join(' ')} |`,
    );
  }

  const cmd = [
    '| Library, limit | Redis commands / decision (commandstats) | sent by the client / decision | server µs in the script / decision | breakdown (per decision) |',
    '|---|---:|---:|---:|---|',
    `| bulwark, mostly allowed | ${counts.ours.total.toFixed(2)} | ${counts.ours.clientSent.toFixed(2)} | ${counts.ours.scriptUsec.toFixed(2)} | ${counts.ours.breakdown} |`,
    `| RLF, mostly allowed | ${counts.rlf.total.toFixed(2)} | ${counts.rlf.clientSent.toFixed(2)} | ${counts.rlf.scriptUsec.toFixed(2)} | ${counts.rlf.breakdown} |`,
    `| bulwark, with rejections | ${counts.oursLow.total.toFixed(2)} | ${counts.oursLow.clientSent.toFixed(2)} | ${counts.oursLow.scriptUsec.toFixed(2)} | ${counts.oursLow.breakdown} |`,
    `| RLF, with rejections | ${counts.rlfLow.total.toFixed(2)} | ${counts.rlfLow.clientSent.toFixed(2)} | ${counts.rlfLow.scriptUsec.toFixed(2)} | ${counts.rlfLow.breakdown} |`,
  ];

  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`;
  const md = [
    '# Benchmark results: rate limiting on Redis',
    '',
    'Bulwark `redisRateLimiter` against rate-limiter-flexible `RateLimiterRedis` (ioredis `storeClient`):',
    `same local Redis, same limit (fixed window of 1 s; ${HIGH.toLocaleString('en')} points "mostly allowed",`,
    `${LOW} points "with rejections"), same ${KEYS.length} keys round robin, one process, one ioredis client per`,
    `limiter, interleaved rounds (${ROUNDS} × ${MS_PER_ROUND} ms per case), median ops/s (\`bench/redis.bench.ts\`).`,
    'Concurrency 1 = one loop of sequential awaits; 64 = 64 such loops on the same client (ioredis',
    'writes what is in flight back to back, i.e. pipelines). RLF sends one EVALSHA per decision; Bulwark',
    'sends at most one: the calls of one tick share one EVALSHA (at concurrency 1 that is one per decision).',
    'Bulwark`s script for a lone fixed window in server time is a counter (INCRBY, PEXPIREAT at the end',
    'of the window); RLF`s is SET NX PX + INCRBY + PTTL.',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${machine}`,
    `- Versions: Redis ${redisVersion} (127.0.0.1:6379), ioredis ${ioredisVersion}, rate-limiter-flexible ${rlfVersion}`,
    `- Load average (1 min) before / after: ${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} (other processes on the machine make the rounds noisy; compare the per-round figures)`,
    `- Bulwark calls decided by the insurance (timeout 1 s or error) during the run: ${fallbacks}`,
    '',
    '## Targets',
    '',
    ...targets,
    '',
    '## Commands per decision',
    '',
    'Sequential decisions of one library alone (2 000 each). Redis 7 counts the commands a Lua script',
    'runs in `INFO commandstats` too, so the total includes them; the round trips are the commands the',
    'client sends. Other clients of the same Redis running at the same time would inflate these counts.',
    '',
    ...cmd,
    '',
    '## All cases',
    '',
    ...allCases,
    '',
  ].join('\n');
  console.log(md);
  if (write) writeFileSync(fileURLToPath(new URL('./RESULTS-redis.md', import.meta.url)), md);
}

await main();
