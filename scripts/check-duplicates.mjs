#!/usr/bin/env node
// Lists the repeated blocks under src/ (the `duplicates` tool of the workplace, run from src/) that
// carry no "Deliberate repetition:" comment on either side (inside the block or up to 14 lines
// above it). Exit 1 when there is one: extract a shared helper, or say why the repetition stays.
// Usage: node scripts/check-duplicates.mjs   (needs `duplicates` on PATH)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const src = join(import.meta.dirname, '..', 'src');
const out = execFileSync('duplicates', ['--most', '200', '--seconds', '120'], { cwd: src, encoding: 'utf8' });
const commented = (file, from, to) => {
  let lines;
  try {
    lines = readFileSync(join(src, file), 'utf8').split('\n');
  } catch {
    return false;
  }
  return lines.slice(Math.max(0, from - 15), to).some((l) => /deliberate repetition/i.test(l));
};
const bare = [];
let pairs = 0;
for (const line of out.split('\n')) {
  const m = /^(D\d+) (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)/.exec(line);
  if (m === null) continue;
  pairs++;
  if (!commented(m[2], Number(m[3]), Number(m[4])) && !commented(m[5], Number(m[6]), Number(m[7])))
    bare.push(line);
}
// A cut list (the time limit, or more pairs than --most) would pass without reading the rest.
const cut = out.split('\n').filter((l) => /^incomplete:|more pairs\)/.test(l));
console.log(`${pairs} repeated blocks under src/, ${bare.length} without a "Deliberate repetition:" comment`);
for (const b of bare) console.log(`  ${b}`);
for (const c of cut) console.log(`  the list is not whole: ${c}`);
process.exit(bare.length === 0 && cut.length === 0 ? 0 : 1);
