/**
 * Crash harness for durable queue stores, by store spec (`sqlite:PATH` or `postgres://…`): real
 * child processes (test/fixtures/durable/*.ts, run with tsx) SIGKILLed at random moments.
 *
 * - `producerCrashes`: producers enqueue and print each id only after `enqueue` resolved; they are
 *   killed at random. Every reported id must then be in the store, and no payload twice.
 * - `workerCrashes`: workers run items (logging every handler run to an fsynced side log) and are
 *   killed mid-handler at random; then one worker drains the queue. Every item must end completed
 *   or dead, none lost, none completed twice; duplicate handler runs (at-least-once) are counted.
 *
 * Used by test/durable-sqlite-crash.test.ts, test/durable-pg-crash.test.ts and scripts/soak.ts.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openQueue, storeFromSpec } from '../../src/durable/index.js';
import type { Queue } from '../../src/durable/queue.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const FIXTURES = `${ROOT}test/fixtures/durable/`;

/**
 * The fixtures bundled once to plain ESM with esbuild (tsx's own dependency), so that each child
 * starts in ~0.1 s instead of compiling TypeScript again; falls back to tsx when esbuild is absent.
 */
let bundled: Promise<string | null> | null = null;

/** Deletes bundles left by test processes that are gone (vitest workers may end without 'exit'). */
function removeStaleBundles(): void {
  let names: string[];
  try {
    names = readdirSync(`${ROOT}.tmp`);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^durable-crash-fixtures-(\d+)$/.exec(name);
    if (m === null || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      rmSync(`${ROOT}.tmp/${name}`, { recursive: true, force: true });
    }
  }
}
function bundle(): Promise<string | null> {
  bundled ??= (async () => {
    try {
      const esbuild = (await import('esbuild')) as {
        build(options: Record<string, unknown>): Promise<unknown>;
      };
      removeStaleBundles();
      const outdir = `${ROOT}.tmp/durable-crash-fixtures-${process.pid}/`;
      mkdirSync(outdir, { recursive: true });
      await esbuild.build({
        entryPoints: [`${FIXTURES}producer.ts`, `${FIXTURES}worker.ts`, `${FIXTURES}fleet-worker.ts`],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outdir,
        outExtension: { '.js': '.mjs' },
        packages: 'external',
        logLevel: 'silent',
      });
      process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
      return outdir;
    } catch {
      return null;
    }
  })();
  return bundled;
}

/** Deterministic random numbers for kill timings (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Children not yet exited: killed if this process exits first (no orphans left polling). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) killGroup(p, 'SIGKILL');
});

/** Sends `signal` to a child's whole process group. */
export function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    proc.kill(signal);
  }
}

/** A fixture process: its complete stdout lines, READY, exit, stderr. */
export interface Child {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string;
}

function start(script: string, args: readonly string[], outdir: string | null): Child {
  const [cmd, file] =
    outdir === null
      ? [TSX, `${FIXTURES}${script}`]
      : [process.execPath, `${outdir}${script.replace(/\.ts$/, '.mjs')}`];
  // Its own process group, so that a kill reaches the whole tree (tsx runs the script in a child).
  const proc = spawn(cmd, [file, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    detached: true,
  });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  const lines: string[] = [];
  let buf = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    markReady = r;
  });
  const child: Child = {
    proc,
    lines,
    ready,
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal }))),
    stderr: '',
  };
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'READY') markReady();
      else lines.push(line); // only complete lines: a line cut by the kill is discarded
      nl = buf.indexOf('\n');
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    child.stderr += chunk;
  });
  void child.exited.then(() => markReady());
  return child;
}

/**
 * Starts a fixture (test/fixtures/durable/<script>: `producer.ts` or `worker.ts`) as one process in
 * its own process group (killed as a group by `killGroup`, and when this process exits).
 */
export async function startFixture(script: string, args: readonly string[]): Promise<Child> {
  return start(script, args, await bundle());
}

async function killAfterReady(child: Child, delayMs: number): Promise<void> {
  await child.ready;
  if (child.proc.exitCode !== null) {
    throw new Error(
      `crash fixture exited early (code ${child.proc.exitCode}): ${child.stderr.slice(0, 2000)}`,
    );
  }
  await new Promise((r) => setTimeout(r, delayMs));
  killGroup(child.proc, 'SIGKILL');
  const { signal, code } = await child.exited;
  if (signal !== 'SIGKILL') {
    throw new Error(`crash fixture exited with code ${code} before the kill: ${child.stderr.slice(0, 2000)}`);
  }
}

/** Options shared by both scenarios. */
export interface CrashOptions {
  /** Store spec: `sqlite:PATH` or `postgres://…`. */
  readonly spec: string;
  /** Queue name (unique per run). */
  readonly queue: string;
  /** How many SIGKILLs. */
  readonly kills: number;
  /** Children alive at once. Default 4. */
  readonly parallel?: number;
  /** Seed of the kill timings. Default 1. */
  readonly seed?: number;
  /** Kill delay after READY, in ms: uniform in [min, max]. Default [30, 400]. */
  readonly killDelayMs?: readonly [number, number];
}

/** What `producerCrashes` found. */
export interface ProducerTally {
  readonly kills: number;
  /** Ids reported by producers (after enqueue resolved). */
  readonly reported: number;
  /** Reported ids missing from the store (must be 0). */
  readonly missing: number;
  /** Payloads stored more than once (must be 0). */
  readonly duplicatePayloads: number;
  /** Items stored in all (reported, plus those committed just before a kill, unreported). */
  readonly stored: number;
}

async function withQueue<R>(spec: string, name: string, fn: (q: Queue<unknown>) => Promise<R>): Promise<R> {
  const q = await openQueue<unknown>({ name, store: storeFromSpec(spec), maxAttempts: 1000 });
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

interface Row {
  id: string;
  state: string;
  payload: unknown;
  deadReason: string | null;
}

async function allItems(q: Queue<unknown>): Promise<Row[]> {
  const out: Row[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await q.list({ limit: 1000, ...(after === undefined ? {} : { after }) });
    for (const p of page)
      out.push({ id: p.id, state: p.state, payload: p.payload, deadReason: p.deadReason });
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.id;
  }
}

/** Producers SIGKILLed at random while enqueueing; checks that every acknowledged id survived. */
export async function producerCrashes(options: CrashOptions): Promise<ProducerTally> {
  const rnd = seeded(options.seed ?? 1);
  const parallel = options.parallel ?? 4;
  const [lo, hi] = options.killDelayMs ?? [30, 400];
  const reported = new Set<string>();
  let kills = 0;
  let run = 0;
  // Create the schema once before racing children.
  await withQueue(options.spec, options.queue, async () => {});
  const outdir = await bundle();
  while (kills < options.kills) {
    const n = Math.min(parallel, options.kills - kills);
    const children = Array.from({ length: n }, () =>
      start('producer.ts', [options.spec, options.queue, String(run++)], outdir),
    );
    await Promise.all(children.map((c) => killAfterReady(c, lo + rnd() * (hi - lo))));
    for (const c of children) {
      for (const line of c.lines) {
        const m = /^ID (\S+) /.exec(line);
        if (m !== null) reported.add(m[1]!);
      }
    }
    kills += n;
  }
  return withQueue(options.spec, options.queue, async (q) => {
    const items = await allItems(q);
    const ids = new Set(items.map((i) => i.id));
    let missing = 0;
    for (const id of reported) if (!ids.has(id)) missing++;
    const payloads = new Set<string>();
    let duplicatePayloads = 0;
    for (const i of items) {
      const k = JSON.stringify(i.payload);
      if (payloads.has(k)) duplicatePayloads++;
      payloads.add(k);
    }
    return { kills, reported: reported.size, missing, duplicatePayloads, stored: items.length };
  });
}

/** What `workerCrashes` found. */
export interface WorkerTally {
  readonly kills: number;
  readonly items: number;
  readonly completed: number;
  readonly dead: number;
  /** Items neither completed nor dead at the end (must be 0). */
  readonly unfinished: number;
  /** Items missing from the store (must be 0). */
  readonly lost: number;
  /** Items with two committed completions in the side log (must be 0). */
  readonly doubleCompleted: number;
  /** Handler runs in all. */
  readonly runs: number;
  /** Runs beyond the first per item that were not retries of a failure: the at-least-once cost of crashes. */
  readonly duplicateRuns: number;
  /** Items that ran more than their failure pattern explains. */
  readonly itemsRunTwice: number;
  /** Dead items by reason (`non-retryable` expected for every 17th item). */
  readonly deadReasons: Record<string, number>;
}

/** Workers SIGKILLed mid-handler at random; then a clean worker drains; checks every item's end. */
export async function workerCrashes(
  options: CrashOptions & {
    /** Items enqueued before the kills. Default 60 per kill. */
    readonly items?: number;
    /** Side log path (appended to by the workers). */
    readonly sideLog: string;
    /** Lease of the workers, in ms. Default 1000. */
    readonly leaseMs?: number;
    /** Handler concurrency per worker. Default 4. */
    readonly concurrency?: number;
    /** `prefetch` of the killed workers. Default 0. */
    readonly prefetch?: number;
  },
): Promise<WorkerTally> {
  const rnd = seeded(options.seed ?? 2);
  const parallel = options.parallel ?? 4;
  const [lo, hi] = options.killDelayMs ?? [100, 500];
  const leaseMs = options.leaseMs ?? 1000;
  const concurrency = options.concurrency ?? 4;
  const total = options.items ?? options.kills * 60;
  if (existsSync(options.sideLog)) rmSync(options.sideLog);
  const ids = await withQueue(options.spec, options.queue, async (q) => {
    const out: string[] = [];
    for (let i = 0; i < total; i += 500) {
      const batch = Array.from({ length: Math.min(500, total - i) }, (_, j) => ({
        payload: { run: 0, i: i + j },
      }));
      for (const r of await q.enqueueMany(batch)) out.push(r.id);
    }
    return out;
  });
  const args = [
    options.spec,
    options.queue,
    options.sideLog,
    String(concurrency),
    String(leaseMs),
    String(options.prefetch ?? 0),
  ];
  const outdir = await bundle();
  let kills = 0;
  while (kills < options.kills) {
    const n = Math.min(parallel, options.kills - kills);
    const children = Array.from({ length: n }, () => start('worker.ts', args, outdir));
    await Promise.all(children.map((c) => killAfterReady(c, lo + rnd() * (hi - lo))));
    kills += n;
  }
  // Drain with a worker that is not killed; it stops once nothing is pending or active.
  const drainer = start(
    'worker.ts',
    [options.spec, options.queue, options.sideLog, '32', String(leaseMs)],
    outdir,
  );
  await drainer.ready;
  await withQueue(options.spec, options.queue, async (q) => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const s = await q.stats();
      if (s.pending === 0 && s.active === 0) break;
      if (Date.now() > deadline) throw new Error(`drain timed out: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  killGroup(drainer.proc, 'SIGTERM');
  await drainer.exited;

  return withQueue(options.spec, options.queue, async (q) => {
    const items = await allItems(q);
    const byId = new Map(items.map((i) => [i.id, i]));
    let completed = 0;
    let dead = 0;
    const deadReasons: Record<string, number> = {};
    let unfinished = 0;
    let lost = 0;
    for (const id of ids) {
      const it = byId.get(id);
      if (it === undefined) lost++;
      else if (it.state === 'completed') completed++;
      else if (it.state === 'dead') {
        dead++;
        deadReasons[it.deadReason ?? '?'] = (deadReasons[it.deadReason ?? '?'] ?? 0) + 1;
      } else unfinished++;
    }
    const runsPer = new Map<string, number>();
    const completions = new Map<string, number>();
    const log = readFileSync(options.sideLog, 'utf8').split('\n');
    let runs = 0;
    for (const line of log) {
      const [kind, id] = line.split(' ');
      if (id === undefined) continue;
      if (kind === 'R') {
        runs++;
        runsPer.set(id, (runsPer.get(id) ?? 0) + 1);
      } else if (kind === 'C') completions.set(id, (completions.get(id) ?? 0) + 1);
    }
    let doubleCompleted = 0;
    for (const n of completions.values()) if (n > 1) doubleCompleted++;
    // Expected runs per item: 1, or 2 for items that fail their first attempt (i % 5 === 0, not % 17).
    let duplicateRuns = 0;
    let itemsRunTwice = 0;
    for (const it of items) {
      const i = (it.payload as { i: number }).i;
      const expected = i % 17 === 0 ? 1 : i % 5 === 0 ? 2 : 1;
      const got = runsPer.get(it.id) ?? 0;
      if (got > expected) {
        duplicateRuns += got - expected;
        itemsRunTwice++;
      }
    }
    return {
      kills,
      items: ids.length,
      completed,
      dead,
      unfinished,
      lost,
      doubleCompleted,
      runs,
      duplicateRuns,
      itemsRunTwice,
      deadReasons,
    };
  });
}

/** Deletes every item of a crash-test queue. */
export async function cleanupQueue(spec: string, queue: string): Promise<void> {
  await withQueue(spec, queue, async (q) => {
    for (const s of ['pending', 'active', 'completed', 'dead'] as const) await q.purge(s, { force: true });
  });
}
