/**
 * The cost of metrics on the success path: the four-policy pipeline of bench/core.bench.ts
 * (timeout + retry + breaker + bulkhead) with Prometheus metrics ON vs OFF, in one process and one
 * run. Metrics read components' snapshots at scrape time, so "ON" is: the pipeline registered in a
 * registry (when it is a `Component`) next to a health monitor, an alert manager and an SLO, with
 * `prometheusExporter` scraping that registry once every 100 000 calls (far more often than a real
 * 15 s scrape interval, so the scrape cost is over-counted). A separate case times one scrape.
 *
 *   npx tsx bench/metrics.bench.ts              # prints the table and rewrites bench/RESULTS-metrics.md
 *   npx tsx bench/metrics.bench.ts --no-write   # prints only
 *   npx tsx bench/metrics.bench.ts --quick      # fewer, shorter rounds
 */

import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import type { Component } from '../dist/core/component.js';
import { createHealthMonitor, customCheck } from '../dist/health/index.js';
import {
  bulkhead,
  circuitBreaker,
  createRegistry,
  isComponent,
  pipeline,
  retry,
  timeout,
} from '../dist/index.js';
import { createAlerts, createMetrics, prometheusExporter, sloTracker } from '../dist/metrics/index.js';
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

// OFF: no registry, no exporter: nothing reads the pipeline's durations, so (timing 'auto', the
// default) it times nothing (outcomes are still counted: one increment). ON: the pipeline is
// registered and `createMetrics` reads that registry, so it times EVERY call into its latency
// histogram (`_count` is the call count), and the registry is scraped.
const off = make();
const on = make();
const registry = createRegistry();
const pipelineIsComponent = isComponent(on);
if (!pipelineIsComponent) throw new Error('the pipeline is not a Component');
registry.register(on as unknown as Component);
const monitor = createHealthMonitor({
  registry,
  autoStart: false,
  checks: [customCheck({ name: 'self', run: () => true })],
});
await monitor.runNow();
const metrics = createMetrics({ registry });
createAlerts({ metrics, registry });
sloTracker({
  source: on as unknown as Component,
  objective: 0.99,
  registry,
  latency: { thresholdMs: 300, objective: 0.99 },
}).stop();
const exporter = prometheusExporter({ metrics });
if (off.timed || !on.timed) throw new Error('metrics did not switch timing as this bench says');

// A registry of 100 components (25 of each kind above, and 25 more checks) for the scrape case.
const big = createRegistry();
for (let i = 0; i < 25; i++) {
  const m = createHealthMonitor({
    name: `m${i}`,
    registry: big,
    autoStart: false,
    checks: [
      customCheck({ name: `c${i}`, run: () => true }),
      customCheck({ name: `d${i}`, run: () => true }),
    ],
  });
  await m.runNow();
  createAlerts({ name: `a${i}`, metrics: createMetrics({ registry: big }), registry: big });
}
const bigExporter = prometheusExporter({ metrics: createMetrics({ registry: big }) });

let calls = 0;
const cases: Case[] = [
  { name: 'pipeline, metrics off', run: () => off.execute(work) },
  {
    name: 'pipeline, Prometheus metrics on',
    run: () => {
      if (++calls % 100_000 === 0) return Promise.all([on.execute(work), exporter()]);
      return on.execute(work);
    },
  },
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
const ratioOfMedians = ops('pipeline, metrics off') / ops('pipeline, Prometheus metrics on');
const body = (await exporter()).body;
if (!body.includes('bulwark_component_state{kind="healthMonitor"'))
  throw new Error('the exporter did not report the registry');
// Every call of the ON pipeline is in its latency histogram: its count equals the calls made.
const snap = (on as unknown as Component).snapshot();
const timedCalls = Object.values(snap.histograms ?? {})[0]?.count ?? 0;
const countedCalls = Object.values(snap.counters ?? {}).reduce((a, b) => a + b, 0);
// One scrape of the 100-component registry, timed alone.
const scrapes = quick ? 50 : 400;
await bigExporter();
const t0 = performance.now();
for (let i = 0; i < scrapes; i++) await bigExporter();
const scrapeMs = (performance.now() - t0) / scrapes;
const bigSize = big.size;

const lines: string[] = [];
lines.push('# Benchmark results: metrics', '');
lines.push(
  'The four-policy pipeline of `bench/core.bench.ts` (timeout 10 s + retry 3 attempts + consecutive breaker + bulkhead',
  '10/100) with metrics OFF and with Prometheus metrics ON: the pipeline in a registry (when it is a Component) with a',
  'health monitor, an alert manager and an SLO, timing EVERY call into its latency histogram, and `prometheusExporter`',
  'scraping the registry every 100 000 calls (~100× a 15 s scrape interval); OFF is the same pipeline unregistered, which',
  "(`timing: 'auto'`, the default, with nothing reading its durations) times no call. One process, one run",
  '(`npx tsx bench/metrics.bench.ts`).',
  `Check at the end of the run: the ON pipeline's latency histogram holds ${timedCalls} observations for ${countedCalls} counted outcomes (every call timed: ${timedCalls === countedCalls ? 'yes' : 'NO'}).`,
  'Cases run in interleaved rounds (the median of the rounds is reported per case). The cost is ops/s OFF ÷ ops/s ON,',
  'taken per round (the cases of a round run back to back) and the median over rounds reported, so that bursts of',
  'load elsewhere on the machine hit both sides alike; the ratio of the two medians is shown too.',
  '',
);
lines.push(`- Date: ${new Date().toISOString().slice(0, 10)}`);
lines.push(
  `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; load average ${loadavg()[0]!.toFixed(1)} at the end of the run (a shared machine: absolute figures are slow, ratios are paired per round)`,
  '',
);
lines.push('## Target', '', '| Comparison | Cost | Goal | Met |', '|---|---:|---:|:---:|');
lines.push(
  `| pipeline with Prometheus metrics on vs off | ${ratio.toFixed(2)}× | ≤ 1.3× | ${ratio <= 1.3 ? 'yes' : 'NO'} |`,
);
lines.push(
  `| (for information) the same, as the ratio of the two cases' medians | ${ratioOfMedians.toFixed(2)}× | — | — |`,
  `| (for information) one Prometheus scrape of a registry of ${bigSize} components | ${(scrapeMs * 1000).toFixed(0)} µs | — | — |`,
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
