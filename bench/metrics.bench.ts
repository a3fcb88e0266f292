/**
 * The cost of metrics on the success path: the four-policy pipeline of bench/core.bench.ts
 * (timeout + retry + breaker + bulkhead) with Prometheus metrics ON (tracked by a sink that a
 * prom-client exporter reads) vs the same pipeline with metrics OFF, in one process and one run.
 *
 *   npx tsx bench/metrics.bench.ts              # prints the table and rewrites bench/RESULTS-metrics.md
 *   npx tsx bench/metrics.bench.ts --no-write   # prints only
 *   npx tsx bench/metrics.bench.ts --quick      # fewer, shorter rounds
 */

import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { bulkhead, circuitBreaker, pipeline, retry, timeout } from '../src/index.js';
import { createMetrics, prometheusExporter, sloTracker } from '../src/metrics/index.js';
import { type Case, formatOps, runCases } from './harness.js';

async function work(): Promise<number> {
  return 42;
}

const make = () =>
  pipeline(
    timeout(10_000),
    retry({ maxAttempts: 3 }),
    circuitBreaker({ breaker: { kind: 'consecutive', threshold: 5 }, halfOpenAfterMs: 30_000 }),
    bulkhead({ limit: 10, queue: 100 }),
  );

const off = make();
const metrics = createMetrics();
const on = metrics.track(make(), 'bench');
const exporter = prometheusExporter({ metrics });
const withSlo = createMetrics();
const onSlo = withSlo.track(make(), 'bench-slo');
sloTracker({
  metrics: withSlo,
  name: 'bench-slo',
  objective: 0.99,
  latency: { thresholdMs: 300, objective: 0.99 },
});

const cases: Case[] = [
  { name: 'pipeline, metrics off', run: () => off.execute(work) },
  { name: 'pipeline, Prometheus metrics on', run: () => on.execute(work) },
  { name: 'pipeline, Prometheus metrics + SLO tracker on', run: () => onSlo.execute(work) },
];

const write = !process.argv.includes('--no-write');
const quick = process.argv.includes('--quick');
// Scraped before the run (prom-client loaded, collectors registered) and after it. (The benchmark
// loop never yields to timers, so a periodic scrape would not run during it; a scrape only reads
// the counters.)
await exporter();
const results = await runCases(cases, {
  rounds: quick ? 5 : 41,
  msPerRound: 100,
  log: (l) => process.stderr.write(`${l}\n`),
});
const ops = (n: string) => results.find((r) => r.name === n)!.opsPerSec;
const rounds = (n: string) => results.find((r) => r.name === n)!.rounds;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
// The cost: the median over rounds of OFF ÷ ON measured in the same round (paired: the cases of a
// round run back to back, so a burst of load elsewhere on the machine hits both alike).
const paired = (on: string) => {
  const a = rounds('pipeline, metrics off');
  const b = rounds(on);
  return median(a.map((x, i) => x / b[i]!));
};
const ratio = paired('pipeline, Prometheus metrics on');
const ratioSlo = paired('pipeline, Prometheus metrics + SLO tracker on');
const ratioOfMedians = ops('pipeline, metrics off') / ops('pipeline, Prometheus metrics on');
const body = (await exporter()).body;
if (!body.includes('bulwark_calls_total{policy="pipeline",name="bench",outcome="success"}'))
  throw new Error('the exporter did not report the benchmarked calls');

const lines: string[] = [];
lines.push('# Benchmark results: metrics', '');
lines.push(
  'The four-policy pipeline of `bench/core.bench.ts` (timeout 10 s + retry 3 attempts + consecutive breaker + bulkhead',
  '10/100) with metrics OFF and with Prometheus metrics ON (tracked by `createMetrics()` with its defaults, exported by',
  '`prometheusExporter`, scraped before and after), in one process and one run (`npx tsx bench/metrics.bench.ts`).',
  'Cases run in interleaved rounds (the median of the rounds is reported per case). The cost is ops/s OFF ÷ ops/s ON,',
  'taken per round (the cases of a round run back to back) and the median over rounds reported, so that bursts of',
  'load elsewhere on the machine hit both sides alike; the ratio of the two medians is shown too.',
  '',
);
lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`);
lines.push(
  `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
  '',
);
lines.push('## Target', '', '| Comparison | Cost | Goal | Met |', '|---|---:|---:|:---:|');
lines.push(
  `| pipeline with Prometheus metrics on vs off | ${ratio.toFixed(2)}× | ≤ 1.3× | ${ratio <= 1.3 ? 'yes' : 'NO'} |`,
);
lines.push(
  `| (for information) the same, as the ratio of the two cases' medians | ${ratioOfMedians.toFixed(2)}× | — | — |`,
  `| (for information) metrics + an SLO tracker (success and latency) vs off | ${ratioSlo.toFixed(2)}× | — | — |`,
);
lines.push('', '## All cases', '', '| Case | ops/s | ns/op |', '|---|---:|---:|');
for (const r of results) lines.push(`| ${r.name} | ${formatOps(r.opsPerSec)} | ${r.nsPerOp.toFixed(0)} |`);
lines.push('');
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (write) {
  writeFileSync(new URL('./RESULTS-metrics.md', import.meta.url), text);
  process.stderr.write('wrote bench/RESULTS-metrics.md\n');
}
