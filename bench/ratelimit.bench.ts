/**
 * In-memory rate limiting: Bulwark's `rateLimiter` against rate-limiter-flexible's
 * `RateLimiterMemory`, same limit, same keys (1 000 keys round robin), in one process.
 *
 *   npx tsx bench/ratelimit.bench.ts              # prints and writes bench/RESULTS-ratelimit.md
 *   npx tsx bench/ratelimit.bench.ts --no-write   # prints only
 *
 * "mostly allowed": a limit so high that every call is admitted. "with rejections": 10 per
 * second per key, so after the first rounds almost every call is rejected. Both libraries use
 * a fixed window of 1 s (RLF's starts at a key's first hit, ours is aligned on the clock).
 * The other algorithms run with a huge capacity and a modest refill, so that keys are never
 * back to full between visits (a key that is full again may be dropped and made anew).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { rateLimit } from '../dist/limits/rate-limit.js';
import { rateLimiter } from '../dist/limits/rate-limiter.js';
import { type Case, formatOps, runCases } from './harness.js';

const write = !process.argv.includes('--no-write');
const KEYS = Array.from({ length: 1_000 }, (_, i) => `user-${i}`);
const HIGH = 1_000_000_000;
const LOW = 10;

function roundRobin(): () => string {
  let i = 0;
  return () => {
    const k = KEYS[i]!;
    i = i + 1 === KEYS.length ? 0 : i + 1;
    return k;
  };
}

function oursCase(name: string, limit: number): Case {
  const l = rateLimiter({ limits: [{ algorithm: 'fixed-window', limit, windowMs: 1_000 }] });
  const next = roundRobin();
  return { name, run: () => l.consume(next()).allowed };
}

function rlfCase(name: string, points: number): Case {
  const l = new RateLimiterMemory({ points, duration: 1 });
  const next = roundRobin();
  const no = () => false;
  return { name, run: () => l.consume(next()).then(() => true, no) };
}

function otherAlgorithm(name: string, spec: Parameters<typeof rateLimiter>[0]['limits'][number]): Case {
  const l = rateLimiter({ limits: [spec] });
  const next = roundRobin();
  return { name, run: () => l.consume(next()).allowed };
}

async function work(): Promise<number> {
  return 42;
}

function policyCase(name: string): Case {
  const p = rateLimit({
    limits: [{ algorithm: 'fixed-window', limit: HIGH, windowMs: 1_000 }],
    key: (ctx) => ctx.props.user as string,
  });
  const next = roundRobin();
  return { name, run: () => p.execute(work, { props: { user: next() } }) };
}

function rlfGuardCase(name: string): Case {
  const l = new RateLimiterMemory({ points: HIGH, duration: 1 });
  const next = roundRobin();
  return { name, run: () => l.consume(next()).then(work) };
}

const cases: Case[] = [
  oursCase('bulwark fixed window, mostly allowed', HIGH),
  rlfCase('RLF memory, mostly allowed', HIGH),
  oursCase('bulwark fixed window, with rejections', LOW),
  rlfCase('RLF memory, with rejections', LOW),
  policyCase('bulwark rateLimit policy around an async fn'),
  rlfGuardCase('RLF consume then the async fn'),
  otherAlgorithm('bulwark token bucket (no RLF equivalent)', {
    algorithm: 'token-bucket',
    capacity: HIGH,
    refillRate: 1_000,
  }),
  otherAlgorithm('bulwark GCRA (no RLF equivalent)', {
    algorithm: 'gcra',
    rate: 1_000,
    periodMs: 1_000,
    burst: HIGH,
  }),
  otherAlgorithm('bulwark sliding-window counter (no RLF equivalent)', {
    algorithm: 'sliding-window-counter',
    limit: HIGH,
    windowMs: 1_000,
  }),
  {
    name: 'bulwark 2 limits at once (token bucket + fixed window)',
    run: (() => {
      const l = rateLimiter({
        limits: [
          { algorithm: 'token-bucket', capacity: HIGH, refillRate: 1_000 },
          { algorithm: 'fixed-window', limit: HIGH, windowMs: 60_000 },
        ],
      });
      const next = roundRobin();
      return () => l.consume(next()).allowed;
    })(),
  },
];

const results = await runCases(cases, { rounds: 11, log: (l) => process.stderr.write(`${l}\n`) });
const ops = (n: string) => results.find((r) => r.name === n)!.opsPerSec;
const targets = [
  { what: 'mostly allowed (1 000 keys)', ratio: ops(cases[0]!.name) / ops(cases[1]!.name) },
  { what: 'with rejections (10/s per key)', ratio: ops(cases[2]!.name) / ops(cases[3]!.name) },
  { what: 'policy around an async fn vs RLF consume + fn', ratio: ops(cases[4]!.name) / ops(cases[5]!.name) },
];

const pkgVersion = (path: string) => (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
const rlfVersion = pkgVersion(
  fileURLToPath(new URL('../node_modules/rate-limiter-flexible/package.json', import.meta.url)),
);
const lines: string[] = [
  '# Benchmark results: in-memory rate limiting',
  '',
  'Bulwark `rateLimiter` against rate-limiter-flexible `RateLimiterMemory`: same limit (fixed window of 1 s),',
  'same 1 000 keys round robin, one process, interleaved rounds, median ops/s (`bench/ratelimit.bench.ts`).',
  "Bulwark's `consume` is synchronous; RLF's returns a promise (rejecting when limited).",
  '',
  `- Date: ${new Date().toISOString().slice(0, 10)}`,
  `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
  `- Versions: rate-limiter-flexible ${rlfVersion}`,
  '',
  '## Targets',
  '',
  '| Comparison | Ratio | Goal | Met |',
  '|---|---:|---:|:---:|',
  ...targets.map((t) => `| ${t.what} | ${t.ratio.toFixed(2)}× | ≥ 2× | ${t.ratio >= 2 ? 'yes' : 'NO'} |`),
  '',
  '## All cases',
  '',
  '| Case | ops/s | ns/op |',
  '|---|---:|---:|',
  ...results.map((r) => `| ${r.name} | ${formatOps(r.opsPerSec)} | ${r.nsPerOp.toFixed(0)} |`),
  '',
];
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (write) {
  writeFileSync(new URL('./RESULTS-ratelimit.md', import.meta.url), text);
  process.stderr.write('wrote bench/RESULTS-ratelimit.md\n');
}
