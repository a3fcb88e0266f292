/**
 * `bulwark chaos run experiment.yaml`: runs an experiment with a progress line, prints the
 * summary, writes the JSON result and the HTML report; exit 0 when the hypothesis held, 1 when
 * not (failed, aborted, not steady), 2 for a bad file or usage, 130 on Ctrl-C.
 *   bulwark chaos run FILE [--ci] [--json] [--out DIR] [--html FILE] [--result FILE] [--quiet]
 * @module
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { ExperimentFileError, loadExperiment } from './load.js';
import { htmlReport, textReport } from './report.js';
import { type ExperimentProgress, runExperiment } from './runner.js';
import { experimentJsonSchema } from './schema.js';

interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const RUN_USAGE = `Usage: bulwark chaos run FILE [--ci] [--out DIR] [--html FILE] [--result FILE] [--json] [--quiet]
       bulwark chaos schema        print the JSON Schema of experiment files

Runs a chaos experiment (YAML or JSON): setup, a control run without faults, then the experiment
run with the method, under open-loop load; abort conditions are checked continuously, and every
fault is removed and every rollback run at the end, on abort and on Ctrl-C.
  --ci            apply the file's \`ci\` overrides (short durations; also BULWARK_CHAOS_CI=1)
  --out DIR       where the report and result go (default: chaos-reports/)
  --html FILE     the HTML report's path (default: DIR/NAME.html)
  --result FILE   the JSON result's path (default: DIR/NAME.json)
  --json          print the JSON result instead of the summary
  --quiet         no progress line
Exit: 0 hypothesis held, 1 it did not (failed, aborted, not steady, error), 2 bad file/usage, 130 Ctrl-C.`;

function flag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

function progressLine(p: ExperimentProgress): string {
  const n = p.lastSecond.ok + p.lastSecond.errors;
  const okPct = n === 0 ? '—' : `${((100 * p.lastSecond.ok) / n).toFixed(1)}%`;
  const faults = p.faults.length === 0 ? 'no fault' : `faults: ${p.faults.join(', ')}`;
  return `[${p.phase}] ${(p.elapsedMs / 1_000).toFixed(0)}/${(p.durationMs / 1_000).toFixed(0)} s  ${n} req/s  ok ${okPct}  p99 ${p.lastSecond.p99 ?? '—'} ms  ${faults}`;
}

/**
 * Runs `bulwark chaos run …` (argv from `chaos`); resolves to the exit code.
 *
 * @example
 * ```ts nocheck
 * import { runMain } from 'bulwark/chaos/experiment/cli';
 * process.exitCode = await runMain(['chaos', 'run', 'examples/chaos/redis-slowed.yaml', '--ci'], { out: console.log, err: console.error });
 * ```
 */
export async function runMain(argv: readonly string[], io: Io): Promise<number> {
  if (argv[1] === 'schema') {
    io.out(JSON.stringify(experimentJsonSchema(), null, 2));
    return 0;
  }
  const file = argv[2];
  if (file === undefined || file.startsWith('--') || argv.includes('--help')) {
    (argv.includes('--help') ? io.out : io.err)(RUN_USAGE);
    return argv.includes('--help') ? 0 : 2;
  }
  let experiment: Awaited<ReturnType<typeof loadExperiment>>;
  try {
    experiment = await loadExperiment(file, {
      ci: argv.includes('--ci') || process.env.BULWARK_CHAOS_CI === '1',
    });
  } catch (error) {
    const message = error instanceof ExperimentFileError ? error.message : String(error);
    if (argv.includes('--json')) {
      const code = (error as { code?: unknown }).code;
      io.out(
        JSON.stringify({ error: { code: typeof code === 'string' ? code : 'INVALID_EXPERIMENT', message } }),
      );
    } else io.err(message);
    return 2;
  }
  const quiet = argv.includes('--quiet');
  const tty = process.stderr.isTTY === true;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let lastLine = 0;
  const result = await runExperiment(experiment, {
    baseDir: dirname(resolve(file)),
    signal: controller.signal,
    log: (line) => {
      if (!quiet) io.err(`${tty ? '\r\x1b[K' : ''}${line}`);
    },
    onEvent: (e) => {
      if (quiet) return;
      if (e.event === 'phase' && (e.phase === 'warmup' || e.phase === 'control' || e.phase === 'experiment'))
        io.err(`${tty ? '\r\x1b[K' : ''}— ${e.phase} run —`);
      if (e.event === 'activity')
        io.err(
          `${tty ? '\r\x1b[K' : ''}  ${e.ok ? '✓' : '✗'} ${e.label}${e.error !== undefined ? `: ${e.error}` : ''}`,
        );
      if (e.event === 'abort') io.err(`${tty ? '\r\x1b[K' : ''}  ABORT: ${e.reason}`);
      if (e.event === 'faultsCleared')
        io.err(`  every fault removed ${e.afterMs.toFixed(1)} ms after the abort decision`);
    },
    onProgress: (p) => {
      if (quiet) return;
      if (tty) process.stderr.write(`\r\x1b[K${progressLine(p)}`);
      else if (p.elapsedMs - lastLine >= 5_000 || p.elapsedMs < lastLine) {
        lastLine = p.elapsedMs;
        io.err(progressLine(p));
      }
    },
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (tty && !quiet) process.stderr.write('\r\x1b[K');
  const outDir = flag(argv, 'out') ?? 'chaos-reports';
  const name = basename(file, extname(file));
  const htmlPath = flag(argv, 'html') ?? join(outDir, `${name}.html`);
  const jsonPath = flag(argv, 'result') ?? join(outDir, `${name}.json`);
  for (const p of [htmlPath, jsonPath]) mkdirSync(dirname(p), { recursive: true });
  writeFileSync(htmlPath, htmlReport(result));
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  if (argv.includes('--json')) io.out(JSON.stringify(result));
  else io.out(`${textReport(result)}\n  report: ${htmlPath}\n  result: ${jsonPath}`);
  if (result.status === 'interrupted') return 130;
  return result.status === 'passed' ? 0 : 1;
}
