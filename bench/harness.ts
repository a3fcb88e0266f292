/**
 * A small benchmark harness: cases run in interleaved rounds in one process, each for a
 * fixed time per round; the median ops/s across rounds is reported. Interleaving spreads
 * machine noise (GC, a neighbour's load) over every case alike, so ratios are fair.
 */

export interface Case {
  readonly name: string;
  /** Runs the operation once. */
  readonly run: () => Promise<unknown> | unknown;
}

export interface Result {
  readonly name: string;
  readonly opsPerSec: number;
  readonly nsPerOp: number;
  readonly rounds: number[];
}

const BATCH = 256;

async function measure(c: Case, ms: number): Promise<number> {
  const run = c.run;
  let ops = 0;
  const start = performance.now();
  let now = start;
  const end = start + ms;
  while (now < end) {
    for (let i = 0; i < BATCH; i++) await run();
    ops += BATCH;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function runCases(
  cases: readonly Case[],
  opts: { rounds?: number; msPerRound?: number; warmupMs?: number; log?: (line: string) => void } = {},
): Promise<Result[]> {
  const rounds = opts.rounds ?? 7;
  const ms = opts.msPerRound ?? 250;
  const log = opts.log ?? (() => {});
  for (const c of cases) await measure(c, opts.warmupMs ?? 150); // warm-up: JIT and caches
  const per = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) per.get(c.name)!.push(await measure(c, ms));
    log(`round ${r + 1}/${rounds} done`);
  }
  return cases.map((c) => {
    const xs = per.get(c.name)!;
    const ops = median(xs);
    return { name: c.name, opsPerSec: ops, nsPerOp: 1e9 / ops, rounds: xs };
  });
}

export function formatOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)} M`;
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(1)} k`;
  return ops.toFixed(0);
}
