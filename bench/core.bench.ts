/**
 * Core policy overhead on the success path, side by side with the libraries users would
 * otherwise pick, in one process and one run: cockatiel, opossum and p-retry.
 *
 *   npm run bench                 # prints the table and rewrites bench/RESULTS.md
 *   npm run bench -- --no-write   # prints only
 *
 * Every case runs the same function (an async function returning a number) with the same
 * settings. Cases run in interleaved rounds; the median ops/s of the rounds is reported.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as ck from 'cockatiel';
import CircuitBreaker from 'opossum';
import pRetry from 'p-retry';
import {
  bulkhead,
  chaos,
  circuitBreaker,
  createRegistry,
  fallback,
  handle,
  hedge,
  isTransient,
  isTransientResult,
  loadShedder,
  pipeline,
  retry,
  timeout,
} from '../dist/index.js';
import { type Case, formatOps, type Result, runCases } from './harness.js';

async function work(): Promise<number> {
  return 42;
}

// The same settings on both sides.
const TIMEOUT_MS = 10_000;
const ATTEMPTS = 3;
const THRESHOLD = 5;
const HALF_OPEN_AFTER = 30_000;
const LIMIT = 10;
const QUEUE = 100;

const ours = {
  retry: retry({ maxAttempts: ATTEMPTS }),
  'retry (transient errors and results)': retry({ maxAttempts: ATTEMPTS, handle: handle.transient() }),
  circuitBreaker: circuitBreaker({
    breaker: { kind: 'consecutive', threshold: THRESHOLD },
    halfOpenAfterMs: HALF_OPEN_AFTER,
  }),
  timeout: timeout(TIMEOUT_MS),
  'timeout (abandon)': timeout({ timeoutMs: TIMEOUT_MS, strategy: 'abandon' }),
  bulkhead: bulkhead({ limit: LIMIT, queue: QUEUE }),
  fallback: fallback(0),
  pipeline: pipeline(
    timeout(TIMEOUT_MS),
    retry({ maxAttempts: ATTEMPTS }),
    circuitBreaker({
      breaker: { kind: 'consecutive', threshold: THRESHOLD },
      halfOpenAfterMs: HALF_OPEN_AFTER,
    }),
    bulkhead({ limit: LIMIT, queue: QUEUE }),
  ),
};

const cockatiel = {
  retry: ck.retry(ck.handleAll, { maxAttempts: ATTEMPTS - 1, backoff: new ck.ExponentialBackoff() }),
  // the same classification as handle.transient(), written with cockatiel's builders
  'retry (transient errors and results)': ck.retry(
    ck.handleWhen((e) => isTransient(e)).orWhenResult((r) => isTransientResult(r)),
    { maxAttempts: ATTEMPTS - 1, backoff: new ck.ExponentialBackoff() },
  ),
  circuitBreaker: ck.circuitBreaker(ck.handleAll, {
    halfOpenAfter: HALF_OPEN_AFTER,
    breaker: new ck.ConsecutiveBreaker(THRESHOLD),
  }),
  timeout: ck.timeout(TIMEOUT_MS, ck.TimeoutStrategy.Cooperative),
  'timeout (abandon)': ck.timeout(TIMEOUT_MS, ck.TimeoutStrategy.Aggressive),
  bulkhead: ck.bulkhead(LIMIT, QUEUE),
  fallback: ck.fallback(ck.handleAll, () => 0),
  pipeline: ck.wrap(
    ck.timeout(TIMEOUT_MS, ck.TimeoutStrategy.Cooperative),
    ck.retry(ck.handleAll, { maxAttempts: ATTEMPTS - 1, backoff: new ck.ExponentialBackoff() }),
    ck.circuitBreaker(ck.handleAll, {
      halfOpenAfter: HALF_OPEN_AFTER,
      breaker: new ck.ConsecutiveBreaker(THRESHOLD),
    }),
    ck.bulkhead(LIMIT, QUEUE),
  ),
};

// opossum's breaker always carries a timeout (its `timeout` option); same 10 s.
const opossum = new CircuitBreaker(work, {
  timeout: TIMEOUT_MS,
  resetTimeout: HALF_OPEN_AFTER,
  errorThresholdPercentage: 50,
});

type Name = keyof typeof ours;
const names = Object.keys(ours) as Name[];

const cases: Case[] = [{ name: 'bare call', run: work }];
for (const n of names) {
  const o = ours[n];
  const c = cockatiel[n];
  cases.push({ name: `bulwark ${n}`, run: () => o.execute(work) });
  cases.push({ name: `cockatiel ${n}`, run: () => c.execute(work) });
}
// Issue 3: capabilities switched off (or idle) must leave the core pipeline's cost alone.
const corePipeline = () =>
  [
    timeout(TIMEOUT_MS),
    retry({ maxAttempts: ATTEMPTS }),
    circuitBreaker({
      breaker: { kind: 'consecutive', threshold: THRESHOLD },
      halfOpenAfterMs: HALF_OPEN_AFTER,
    }),
    bulkhead({ limit: LIMIT, queue: QUEUE }),
  ] as const;
const withOff = pipeline(
  hedge({ delay: 50, enabled: false }),
  loadShedder({ capacity: 1_000, enabled: false }),
  chaos.fault({ error: new Error('chaos'), enabled: false }),
  ...corePipeline(),
);
const withShedder = pipeline(loadShedder({ capacity: 1_000 }), ...corePipeline());
// Issue 10: a pipeline counts every outcome always, and times EVERY execution while something reads
// its durations (`timing: 'auto'`). `bulwark pipeline` above is the default with nothing reading (no
// clock read beyond its timeout's own); here a reader is declared on its registry, as
// `createMetrics({ registry })` does, so every call is timed (one more clock read per call).
const read = createRegistry();
read.readDurations();
const timed = pipeline({ name: 'timed', registry: read }, ...corePipeline());
if (ours.pipeline.timed || !timed.timed) throw new Error('the pipelines are not timed as this bench says');
cases.push({ name: 'bulwark pipeline, timing every call (durations read)', run: () => timed.execute(work) });
cases.push({ name: 'bulwark pipeline + hedging, shedding and chaos off', run: () => withOff.execute(work) });
cases.push({ name: 'bulwark pipeline + load shedder on, no pressure', run: () => withShedder.execute(work) });
cases.push({ name: 'opossum breaker+timeout', run: () => opossum.fire() });
cases.push({ name: 'p-retry', run: () => pRetry(work, { retries: ATTEMPTS - 1 }) });

const write = !process.argv.includes('--no-write');
const quick = process.argv.includes('--quick');

const results = await runCases(cases, {
  rounds: quick ? 3 : 7,
  msPerRound: quick ? 100 : 250,
  log: (l) => process.stderr.write(`${l}\n`),
});
const by = new Map<string, Result>(results.map((r) => [r.name, r]));
const ops = (name: string) => by.get(name)!.opsPerSec;

interface Target {
  readonly what: string;
  readonly ratio: number;
  readonly goal: number;
}
const targets: Target[] = [
  {
    what: 'pipeline (timeout+retry+breaker+bulkhead; nothing reads its durations) vs cockatiel wrap of the same four',
    ratio: ops('bulwark pipeline') / ops('cockatiel pipeline'),
    goal: 25,
  },
  {
    what: "pipeline (nothing reads its durations) vs opossum's single breaker (with its timeout)",
    ratio: ops('bulwark pipeline') / ops('opossum breaker+timeout'),
    goal: 1.3,
  },
  {
    what: 'pipeline timing every call (a reader of durations on its registry) vs cockatiel wrap',
    ratio: ops('bulwark pipeline, timing every call (durations read)') / ops('cockatiel pipeline'),
    goal: 25,
  },
  {
    what: "pipeline timing every call vs opossum's single breaker",
    ratio: ops('bulwark pipeline, timing every call (durations read)') / ops('opossum breaker+timeout'),
    goal: 1.3,
  },
  {
    what: '(for information) pipeline timing every call vs nothing reading its durations',
    ratio: ops('bulwark pipeline, timing every call (durations read)') / ops('bulwark pipeline'),
    goal: 0,
  },
  {
    what: 'timeout vs cockatiel timeout (cooperative)',
    ratio: ops('bulwark timeout') / ops('cockatiel timeout'),
    goal: 20,
  },
  ...(
    [
      'retry',
      'retry (transient errors and results)',
      'circuitBreaker',
      'bulkhead',
      'fallback',
      'timeout (abandon)',
    ] as const
  ).map((n) => ({
    what: `${n} vs cockatiel ${n}`,
    ratio: ops(`bulwark ${n}`) / ops(`cockatiel ${n}`),
    goal: 1.5,
  })),
  { what: 'retry vs p-retry', ratio: ops('bulwark retry') / ops('p-retry'), goal: 1 },
  {
    what: 'pipeline with hedging, shedding and chaos switched off vs the same pipeline without them',
    ratio: ops('bulwark pipeline + hedging, shedding and chaos off') / ops('bulwark pipeline'),
    goal: 0.95,
  },
  {
    what: '(for information) pipeline with a load shedder on but no pressure vs without it',
    ratio: ops('bulwark pipeline + load shedder on, no pressure') / ops('bulwark pipeline'),
    goal: 0,
  },
];

const pkg = (name: string): string => {
  const path = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url));
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
};
const ourVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const lines: string[] = [];
lines.push('# Benchmark results: core policies', '');
lines.push(
  'Success-path overhead of each policy and of a four-policy pipeline, against the libraries users would',
  'otherwise pick, measured side by side in one process and one run (`npm run bench`, `bench/core.bench.ts`).',
  'Every case runs the same async function with the same settings; cases run in interleaved rounds and the',
  'median of the rounds is reported. Ratios are ops/s of Bulwark divided by ops/s of the other library.',
  '',
);
lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`);
lines.push(
  `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
);
lines.push(
  `- Versions: bulwark ${ourVersion}, cockatiel ${pkg('cockatiel')}, opossum ${pkg('opossum')}, p-retry ${pkg('p-retry')}`,
);
lines.push(
  '- Settings: timeout 10 s (cooperative unless noted), retry 3 attempts with exponential backoff, consecutive breaker',
  '  (5 failures, 30 s break), bulkhead limit 10 / queue 100, fallback to a constant. (cockatiel 3.2.1 is the newest',
  '  release that supports Node 20; 4.x requires Node >= 22.)',
  '- Timing: a Bulwark pipeline counts every outcome and times calls only while something reads its durations',
  "  (`timing: 'auto'`: metrics or the control plane over its registry, a latency SLO); `bulwark pipeline` has no",
  '  reader, the "timing every call" case has one. opossum times every call (two `Date.now()`); cockatiel times none.',
  `- Load average ${loadavg()[0]!.toFixed(1)} at the end of the run (a shared machine: read the ratios, which come from one run).`,
  '',
);
lines.push('## Targets', '', '| Comparison | Ratio | Goal | Met |', '|---|---:|---:|:---:|');
for (const t of targets)
  lines.push(`| ${t.what} | ${t.ratio.toFixed(2)}× | ≥ ${t.goal}× | ${t.ratio >= t.goal ? 'yes' : 'NO'} |`);
lines.push('', '## All cases', '', '| Case | ops/s | ns/op |', '|---|---:|---:|');
for (const r of results) lines.push(`| ${r.name} | ${formatOps(r.opsPerSec)} | ${r.nsPerOp.toFixed(0)} |`);
lines.push('');

const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (write) {
  writeFileSync(new URL('./RESULTS.md', import.meta.url), text);
  process.stderr.write('wrote bench/RESULTS.md\n');
}
opossum.shutdown();
