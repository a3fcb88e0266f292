/**
 * Appends to bench/RESULTS.md a summary of every other benchmark's targets (the first table with a
 * "Goal" column of each RESULTS-*.md), so the one file shows every comparison of the last
 * `npm run bench`. Run last by `npm run bench`; replaces the summary it wrote before.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const MARK = '<!-- summary of the other benchmarks (bench/summary.ts) -->';
const files: [string, string][] = [
  ['RESULTS-ratelimit.md', 'Rate limiters vs rate-limiter-flexible (memory)'],
  ['RESULTS-redis.md', 'Redis rate limiter vs rate-limiter-flexible RateLimiterRedis'],
  ['RESULTS-metrics.md', 'Metrics on vs off'],
  ['RESULTS-durable-sqlite.md', 'Durable queue: SQLite store vs BullMQ'],
  ['RESULTS-durable-pg.md', 'Durable queue: PostgreSQL store vs pg-boss'],
  ['RESULTS-durable.md', 'Durable queue: issue 15 workload (PostgreSQL, SQLite, pg-boss, BullMQ)'],
];

function targets(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|') && /\bGoal\b/.test(l));
  if (start === -1) return [];
  const out: string[] = [];
  for (let i = start; i < lines.length && lines[i]!.startsWith('|'); i++) out.push(lines[i]!);
  return out;
}

const path = `${dir}RESULTS.md`;
const base = readFileSync(path, 'utf8').split(MARK)[0]!.trimEnd();
const parts = [base, '', MARK, '', '## Every other benchmark of the same `npm run bench`', ''];
for (const [file, title] of files) {
  if (!existsSync(`${dir}${file}`)) continue;
  const text = readFileSync(`${dir}${file}`, 'utf8');
  const date = /- Date: (\S+)/.exec(text)?.[1];
  parts.push(
    `### ${title} ([${file}](${file})${date === undefined ? '' : `, ${date}`})`,
    '',
    ...targets(text),
    '',
  );
}
writeFileSync(path, `${parts.join('\n')}\n`);
console.log('bench/RESULTS.md: summary of the other benchmarks appended');
