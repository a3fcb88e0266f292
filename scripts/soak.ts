/**
 * Soak test of a durable queue store under SIGKILL: many rounds of the crash harness
 * (test/support/durable-crash.ts), producers and workers killed at random, and a tally.
 *
 *   npx tsx scripts/soak.ts                                    # sqlite in a temp dir, 500 kills
 *   npx tsx scripts/soak.ts --store postgres://postgres@127.0.0.1/test --kills 500
 *   npx tsx scripts/soak.ts --store sqlite:/tmp/soak.db --kills 1000 --parallel 6
 *
 * Exits 1 when any acknowledged enqueue is missing, any item is lost, unfinished or completed
 * twice. Duplicate handler runs are expected (at-least-once) and reported.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupQueue, producerCrashes, workerCrashes } from '../test/support/durable-crash.js';

const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    kills: { type: 'string', default: '500' },
    parallel: { type: 'string', default: '4' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
  },
});
const dir = mkdtempSync(join(tmpdir(), 'bulwark-soak-'));
const spec = values.store ?? `sqlite:${join(dir, 'soak.db')}`;
const kills = Number(values.kills);
const parallel = Number(values.parallel);
const seed = Number(values.seed);
const shown = spec.replace(/:[^:@/]*@/, ':***@');
const run = randomBytes(4).toString('hex');
console.log(`soak: ${shown}, ${kills} kills, ${parallel} at once, seed ${seed}`);

const totals = {
  producerKills: 0,
  reported: 0,
  missing: 0,
  duplicatePayloads: 0,
  workerKills: 0,
  items: 0,
  completed: 0,
  dead: 0,
  lost: 0,
  unfinished: 0,
  doubleCompleted: 0,
  runs: 0,
  duplicateRuns: 0,
};
const t0 = Date.now();
let round = 0;
try {
  // A third of the kills hit producers, the rest workers, in rounds of up to 60 kills.
  while (totals.producerKills + totals.workerKills < kills) {
    const left = kills - totals.producerKills - totals.workerKills;
    const pk = Math.min(Math.max(parallel, Math.round(left / 3)), 20, left);
    const pq = `soak_p_${run}_${round}`;
    const p = await producerCrashes({ spec, queue: pq, kills: pk, parallel, seed: seed + round });
    await cleanupQueue(spec, pq);
    totals.producerKills += p.kills;
    totals.reported += p.reported;
    totals.missing += p.missing;
    totals.duplicatePayloads += p.duplicatePayloads;
    const wk = Math.min(40, kills - totals.producerKills - totals.workerKills);
    if (wk > 0) {
      const wq = `soak_w_${run}_${round}`;
      const w = await workerCrashes({
        spec,
        queue: wq,
        kills: wk,
        parallel,
        seed: seed + 1000 + round,
        items: wk * 40,
        sideLog: join(dir, `runs-${round}.log`),
        leaseMs: 800,
      });
      await cleanupQueue(spec, wq);
      totals.workerKills += w.kills;
      totals.items += w.items;
      totals.completed += w.completed;
      totals.dead += w.dead;
      totals.lost += w.lost;
      totals.unfinished += w.unfinished;
      totals.doubleCompleted += w.doubleCompleted;
      totals.runs += w.runs;
      totals.duplicateRuns += w.duplicateRuns;
    }
    round++;
    console.log(
      `round ${round}: kills ${totals.producerKills + totals.workerKills}/${kills} (${Math.round((Date.now() - t0) / 1000)} s)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const bad =
  totals.missing + totals.duplicatePayloads + totals.lost + totals.unfinished + totals.doubleCompleted;
console.log('\n| Measure | Count |\n|---|---:|');
for (const [k, v] of Object.entries(totals)) console.log(`| ${k} | ${v} |`);
console.log(`| seconds | ${Math.round((Date.now() - t0) / 1000)} |`);
console.log(bad === 0 ? '\nOK: nothing lost, nothing completed twice.' : `\nFAILED: ${bad} violations.`);
process.exitCode = bad === 0 ? 0 : 1;
