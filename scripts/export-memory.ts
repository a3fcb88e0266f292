/**
 * Streams N generated rows (default 1 000 000) through an export and reports memory: RSS is
 * sampled every 50 ms; growth = max RSS - RSS after a warm-up of
 * the same rows and format (WARM, default 300 000 rows). Progress goes to stderr.
 *
 *   node --import tsx scripts/export-memory.ts [--rows N] [--format csv|ndjson|sql|json|md] [--out FILE]
 *
 * Prints one JSON line: { rows, format, bytes, seconds, rowsPerSec, rssStartMb, rssMaxMb, growthMb,
 * warmRows, growthFromColdMb }.
 */

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ExportFormat, exportTo, iterableSource, progressLine, type Row } from '../src/export/index.js';

const { values } = parseArgs({
  options: { rows: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' } },
});
const N = Number(values.rows ?? 1_000_000);
const format = (values.format ?? 'csv') as ExportFormat;
const out = values.out ?? join(tmpdir(), `bulwark-export-memory-${process.pid}.${format}`);

async function* rows(n: number): AsyncIterable<Row> {
  for (let i = 1; i <= n; i++) {
    yield {
      id: i,
      name: `customer ${i}`,
      email: `c${i}@example.com`,
      amount: i * 0.25,
      active: i % 2 === 0,
      note: i % 9 === 0 ? '=HYPERLINK("x")' : 'ok',
    };
  }
}

const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
global.gc?.();
const cold = process.memoryUsage().rss;
// Warm-up: the same rows and format (WARM rows, default 300 000) load csv-stringify, JIT the path
// and let V8 size its young generation for this allocation rate (a one-time growth of ~30-40 MB
// that does not depend on the number of rows: 1M and 3M rows grow the same). Growth is measured
// from the end of the warm-up; `growthFromColdMb` is from before it.
const WARM = Number(process.env.WARM ?? 300_000);
await exportTo({ source: iterableSource('warm', rows(WARM)), format, to: out });
global.gc?.();
const start = process.memoryUsage().rss;
let max = start;
const sampler = setInterval(() => {
  max = Math.max(max, process.memoryUsage().rss);
}, 50);
const t0 = performance.now();
const r = await exportTo({
  source: iterableSource('customers', rows(N)),
  format,
  to: out,
  total: N,
  onProgress: (p) => process.stderr.write(`\r${progressLine(p)}   `),
});
clearInterval(sampler);
max = Math.max(max, process.memoryUsage().rss);
const seconds = (performance.now() - t0) / 1000;
process.stderr.write('\n');
if (values.out === undefined) rmSync(out, { force: true });
console.log(
  JSON.stringify({
    rows: r.rows,
    format,
    bytes: r.bytes,
    seconds: Math.round(seconds * 100) / 100,
    rowsPerSec: Math.round(r.rows / seconds),
    rssStartMb: mb(start),
    rssMaxMb: mb(max),
    growthMb: mb(max - start),
    warmRows: WARM,
    growthFromColdMb: mb(max - cold),
  }),
);
