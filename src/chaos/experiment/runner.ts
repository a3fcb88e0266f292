/**
 * `runExperiment`: set up, run the control (no faults) under open-loop load, then the experiment
 * run with the method, checking the abort conditions continuously; judge the steady-state
 * hypothesis on both, score the result, and always remove every fault and run the rollbacks.
 * @module
 */

import { type Clock, systemClock } from '../../core/clock.js';
import type { FaultProxy } from '../proxy/proxy.js';
import { type ActionEnv, describeActivity, runActivity, type Undo } from './actions.js';
import { measure, type ProbeEnv, type ProbeResult, runProbe } from './probes.js';
import { type ActivitySpec, type Experiment, parseExperiment } from './schema.js';
import { SCORE_FORMULA, scoreOf } from './score.js';
import { World } from './setup.js';
import { httpSender, percentile, Recorder, type Sender, startTraffic } from './traffic.js';

/** One second of a run, for the charts. */
export interface SeriesPoint {
  readonly t: number;
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
}

/** A span during which a fault was active (ms since the run began). */
export interface FaultWindow {
  readonly label: string;
  readonly startMs: number;
  endMs: number | null;
}

/** What an activity did. */
export interface ActivityRecord {
  readonly label: string;
  readonly type: ActivitySpec['type'];
  readonly atMs: number;
  ok: boolean;
  error?: string;
}

/** One run (control or experiment). */
export interface RunResult {
  readonly phase: 'control' | 'experiment';
  readonly durationMs: number;
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly latency: {
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
    readonly max: number | null;
  };
  readonly series: readonly SeriesPoint[];
  readonly probes: readonly ProbeResult[];
  readonly hypothesisMet: boolean;
  readonly faults: readonly FaultWindow[];
  readonly activities: readonly ActivityRecord[];
}

/** The outcome of an experiment. */
export interface ExperimentResult {
  readonly title: string;
  readonly description: string;
  readonly status: 'passed' | 'failed' | 'aborted' | 'not-steady' | 'interrupted' | 'error';
  /** Weighted probe success of the experiment run, 0–100. */
  readonly score: number;
  readonly scoreFormula: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly load: { readonly rate: number; readonly url: string } | null;
  readonly control: RunResult | null;
  readonly experiment: RunResult | null;
  readonly abort: {
    readonly reason: string;
    /** ms since the experiment run began. */
    readonly decidedAtMs: number;
    /** ms from the decision until every fault was removed. */
    readonly clearedAfterMs: number;
  } | null;
  readonly rollbacks: readonly ActivityRecord[];
  readonly error?: string;
}

/** Progress of a run, about once a second. */
export interface ExperimentProgress {
  readonly phase: 'control' | 'experiment';
  readonly elapsedMs: number;
  readonly durationMs: number;
  /** Requests answered in the last second, ok and not. */
  readonly lastSecond: { readonly ok: number; readonly errors: number; readonly p99: number | null };
  readonly faults: readonly string[];
}

/** Events of a run. */
export type ExperimentEvent =
  | {
      readonly event: 'phase';
      readonly phase: 'setup' | 'warmup' | 'control' | 'experiment' | 'rollbacks' | 'teardown';
    }
  | { readonly event: 'activity'; readonly label: string; readonly ok: boolean; readonly error?: string }
  | { readonly event: 'abort'; readonly reason: string; readonly at: number }
  | { readonly event: 'faultsCleared'; readonly at: number; readonly afterMs: number };

/** Options of `runExperiment`. */
export interface RunExperimentOptions {
  /** Time for the schedule, the pauses, the checks and the durations. Default: the system clock. */
  readonly clock?: Clock;
  /** Directory that module paths are relative to (the experiment file's). Default: cwd. */
  readonly baseDir?: string;
  /** Aborting it (Ctrl-C) stops the run: every fault removed, rollbacks run, status `interrupted`. */
  readonly signal?: AbortSignal;
  /** Fault proxies by name, used by the actions instead of an API. */
  readonly proxies?: Readonly<Record<string, FaultProxy>>;
  /** Sends one request of the load instead of `load.url` (in-process targets, tests). */
  readonly send?: Sender;
  readonly onProgress?: (p: ExperimentProgress) => void;
  readonly onEvent?: (e: ExperimentEvent) => void;
  /** Setup and process messages. */
  readonly log?: (line: string) => void;
}

const UNDO_LIMIT_MS = 900;
const fin = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

function sleepOn(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs an experiment (parsed, or a plain value validated here) and resolves to its result; it
 * never rejects for a failing system (the status says so), only for an invalid experiment.
 *
 * @example
 * ```ts
 * import { runExperiment } from 'bulwark/chaos';
 * const result = await runExperiment(
 *   {
 *     title: 'in-process target',
 *     durationMs: 300,
 *     load: { url: 'http://unused.invalid', rate: 100 },
 *     'steady-state-hypothesis': { probes: [{ name: 'ok', type: 'successRatio', tolerance: { min: 0.99 } }] },
 *     method: [{ type: 'sleep', durationMs: 50 }],
 *   },
 *   { send: async () => ({ ok: true, status: 200 }) },
 * );
 * console.log(result.status, result.score); // passed 100
 * ```
 */
export async function runExperiment(
  input: Experiment | unknown,
  options: RunExperimentOptions = {},
): Promise<ExperimentResult> {
  const experiment = parseExperiment(input);
  const clock = options.clock ?? systemClock;
  const emit = options.onEvent ?? (() => {});
  const log = options.log ?? (() => {});
  const baseDir = options.baseDir ?? process.cwd();
  const world = new World(baseDir, log);
  const stop = new AbortController();
  const onOuter = (): void => stop.abort(new Error('interrupted'));
  options.signal?.addEventListener('abort', onOuter, { once: true });
  if (options.signal?.aborted === true) onOuter();
  const proxies = new Map(Object.entries(options.proxies ?? {}));
  const startedAt = new Date(clock.date()).toISOString();
  let control: RunResult | null = null;
  let experimentRun: RunResult | null = null;
  let abort: ExperimentResult['abort'] = null;
  let status: ExperimentResult['status'] = 'passed';
  let error: string | undefined;
  let closeSender = (): void => {};
  const rollbacks: ActivityRecord[] = [];

  // Active faults of the current run, with their undo.
  const active = new Map<FaultWindow, Undo>();
  let runT0 = 0;
  const clearFaults = async (): Promise<void> => {
    const entries = [...active.entries()];
    active.clear();
    await Promise.all(
      entries.map(async ([w, undo]) => {
        w.endMs ??= clock.now() - runT0;
        await Promise.race([
          undo().catch((e: Error) => log(`undo of ${w.label} failed: ${e.message}`)),
          sleepOn(clock, UNDO_LIMIT_MS, new AbortController().signal),
        ]);
      }),
    );
  };

  const env = (
    window: ReturnType<Recorder['window']>,
    baselines: Map<string, number>,
    signal: AbortSignal,
  ): ProbeEnv => ({
    window,
    vars: world.vars,
    baseDir,
    signal,
    baselines,
    fill: world.fill,
  });

  async function runPhase(phase: 'control' | 'experiment', durationMs: number): Promise<RunResult> {
    emit({ event: 'phase', phase });
    const probes = experiment['steady-state-hypothesis'].probes;
    const baselines = new Map<string, number>();
    for (const p of probes) {
      if (p.type === 'metric' && p.increase) {
        const v = await measure(
          { ...p, increase: false },
          env(new Recorder().window(0, 0), baselines, stop.signal),
        ).catch(() => Number.NaN);
        baselines.set(p.name, typeof v === 'number' ? v : Number.NaN);
      }
    }
    const recorder = new Recorder();
    const sender = options.send ?? null;
    const traffic =
      experiment.load === undefined
        ? null
        : startTraffic({
            rate: experiment.load.rate,
            clock,
            recorder,
            maxInFlight: experiment.load.maxInFlight,
            send: sender ?? loadSender!,
          });
    runT0 = traffic?.startedAt ?? clock.now();
    const t0 = runT0;
    const faults: FaultWindow[] = [];
    const activities: ActivityRecord[] = [];
    const runStop = new AbortController();
    const onStop = (): void => runStop.abort();
    stop.signal.addEventListener('abort', onStop, { once: true });
    if (stop.signal.aborted) runStop.abort();
    const elapsed = (): number => clock.now() - t0;

    let aborting: Promise<void> | null = null;
    const abortNow = (reason: string): Promise<void> => {
      aborting ??= (async () => {
        const at = clock.now();
        emit({ event: 'abort', reason, at });
        runStop.abort();
        await clearFaults();
        const afterMs = clock.now() - at;
        emit({ event: 'faultsCleared', at: clock.now(), afterMs });
        abort = { reason, decidedAtMs: at - t0, clearedAfterMs: afterMs };
      })();
      return aborting;
    };
    const onInterrupt = (): void => void abortNow('interrupted (Ctrl-C)');
    if (phase === 'experiment') stop.signal.addEventListener('abort', onInterrupt, { once: true });

    const actionEnv: ActionEnv = {
      world,
      baseDir,
      proxies,
      signal: runStop.signal,
      sleep: (ms) => sleepOn(clock, ms, runStop.signal),
    };
    const method = async (): Promise<void> => {
      for (const a of experiment.method) {
        if (runStop.signal.aborted) return;
        const label = describeActivity(a);
        if (a.type !== 'sleep' && a.pauses !== undefined) await actionEnv.sleep(a.pauses.beforeMs);
        if (runStop.signal.aborted) return;
        const record: ActivityRecord = { label, type: a.type, atMs: elapsed(), ok: true };
        activities.push(record);
        try {
          const undo = await runActivity(a, actionEnv);
          if (undo !== null) {
            const w: FaultWindow = { label, startMs: record.atMs, endMs: null };
            faults.push(w);
            if (aborting !== null) {
              w.endMs = elapsed();
              await undo().catch(() => {});
            } else active.set(w, undo);
            if (a.type !== 'sleep' && a.durationMs !== undefined) {
              const end = clock.setTimeout(() => {
                if (!active.has(w)) return;
                active.delete(w);
                w.endMs = elapsed();
                undo().catch((e: Error) => log(`undo of ${label} failed: ${e.message}`));
              }, a.durationMs);
              runStop.signal.addEventListener('abort', () => clock.clearTimeout(end), { once: true });
            }
          }
          emit({ event: 'activity', label, ok: true });
        } catch (e) {
          record.ok = false;
          record.error = (e as Error).message;
          emit({ event: 'activity', label, ok: false, error: record.error });
          log(`activity ${label} failed: ${record.error}`);
        }
        if (a.type !== 'sleep' && a.pauses !== undefined) await actionEnv.sleep(a.pauses.afterMs);
      }
    };
    const methodDone = phase === 'experiment' ? method() : Promise.resolve();

    // Abort conditions, checked continuously.
    const abortSpec = experiment.abort;
    let checking = false;
    const check = async (): Promise<void> => {
      if (abortSpec === undefined || aborting !== null || runStop.signal.aborted) return;
      schedule();
      const now = elapsed();
      if (now < abortSpec.graceMs || checking) return;
      checking = true;
      try {
        const window = recorder.window(Math.max(0, now - abortSpec.windowMs), now + 1, now);
        for (const p of abortSpec.probes) {
          if (p.type === 'successRatio' && window.requests === 0) continue;
          if (p.type === 'latency' && window.latencies.length === 0) continue;
          const r = await runProbe(p, env(window, baselines, runStop.signal));
          if (!r.passed && aborting === null && !runStop.signal.aborted) {
            await abortNow(
              `abort condition "${p.name}" failed: ${r.error ?? `value ${String(r.value)}, tolerance ${JSON.stringify(p.tolerance)}`}`,
            );
            return;
          }
        }
      } finally {
        checking = false;
      }
    };
    let checkTimer: ReturnType<Clock['setTimeout']> | undefined;
    const schedule = (): void => {
      if (abortSpec !== undefined) checkTimer = clock.setTimeout(() => void check(), abortSpec.everyMs);
    };
    if (phase === 'experiment') schedule();

    // Progress, about once a second.
    let progressTimer: ReturnType<Clock['setTimeout']> | undefined;
    const progress = (): void => {
      const now = elapsed();
      const second = Math.max(0, Math.floor(now / 1_000) - 1) * 1_000;
      const last = recorder.window(second, second + 1);
      options.onProgress?.({
        phase,
        elapsedMs: now,
        durationMs,
        lastSecond: { ok: last.ok, errors: last.errors, p99: fin(percentile(last.latencies, 99)) },
        faults: [...active.keys()].map((w) => w.label),
      });
      progressTimer = clock.setTimeout(progress, 1_000);
    };
    progressTimer = clock.setTimeout(progress, 1_000);

    await sleepOn(clock, durationMs, runStop.signal);
    if (checkTimer !== undefined) clock.clearTimeout(checkTimer);
    clock.clearTimeout(progressTimer);
    const ranMs = Math.min(durationMs, elapsed());
    runStop.abort();
    stop.signal.removeEventListener('abort', onStop);
    stop.signal.removeEventListener('abort', onInterrupt);
    await aborting;
    await traffic?.stop();
    await methodDone;
    await clearFaults();
    if (!stop.signal.aborted) await sleepOn(clock, experiment.settleMs, stop.signal);

    const window = recorder.window(0, ranMs + 1);
    const results: ProbeResult[] = [];
    for (const p of probes)
      results.push(await runProbe(p, env(window, baselines, new AbortController().signal)));
    const series: SeriesPoint[] = recorder.buckets
      .filter((b) => b.t < ranMs)
      .map((b) => {
        const sorted = [...b.latencies].sort((x, y) => x - y);
        return {
          t: b.t,
          sent: b.sent,
          ok: b.ok,
          errors: b.errors,
          p50: fin(percentile(sorted, 50)),
          p90: fin(percentile(sorted, 90)),
          p99: fin(percentile(sorted, 99)),
        };
      });
    return {
      phase,
      durationMs: Math.round(ranMs),
      requests: window.requests,
      ok: window.ok,
      errors: window.errors,
      latency: {
        p50: fin(percentile(window.latencies, 50)),
        p90: fin(percentile(window.latencies, 90)),
        p99: fin(percentile(window.latencies, 99)),
        max: fin(window.latencies.at(-1) ?? Number.NaN),
      },
      series,
      probes: results,
      hypothesisMet: results.every((r) => r.passed || r.weight === 0), // weight 0: informative only
      faults,
      activities,
    };
  }

  let loadSender: Sender | undefined;
  try {
    emit({ event: 'phase', phase: 'setup' });
    for (const step of experiment.setup) {
      if (stop.signal.aborted) break;
      await world.run(step);
    }
    if (experiment.load !== undefined && options.send === undefined) {
      const l = experiment.load;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(l.headers)) headers[k] = world.fill(v);
      const http = httpSender({
        url: world.fill(l.url),
        method: l.method,
        headers,
        ...(l.body !== undefined ? { body: world.fill(l.body) } : {}),
        timeoutMs: l.timeoutMs,
        ok: l.ok,
      });
      loadSender = http.send;
      closeSender = http.close;
    }
    if (!stop.signal.aborted && experiment.load !== undefined && experiment.warmupMs > 0) {
      emit({ event: 'phase', phase: 'warmup' });
      const send = options.send ?? loadSender!;
      const warm = startTraffic({
        rate: experiment.load.rate,
        clock,
        send,
        maxInFlight: experiment.load.maxInFlight,
      });
      await sleepOn(clock, experiment.warmupMs, stop.signal);
      await warm.stop();
    }
    if (!stop.signal.aborted && experiment.control.durationMs > 0) {
      control = await runPhase('control', experiment.control.durationMs);
      if (!control.hypothesisMet && experiment.control.required) status = 'not-steady';
    }
    if (status === 'passed' && !stop.signal.aborted) {
      experimentRun = await runPhase('experiment', experiment.durationMs);
      if (abort !== null) status = 'aborted';
      else if (!experimentRun.hypothesisMet) status = 'failed';
    }
    if (stop.signal.aborted) status = 'interrupted';
  } catch (e) {
    status = 'error';
    error = (e as Error).message;
  } finally {
    await clearFaults();
    emit({ event: 'phase', phase: 'rollbacks' });
    const rbEnv: ActionEnv = {
      world,
      baseDir,
      proxies,
      signal: new AbortController().signal,
      sleep: (ms) => sleepOn(clock, ms, new AbortController().signal),
    };
    for (const a of experiment.rollbacks) {
      const record: ActivityRecord = { label: describeActivity(a), type: a.type, atMs: 0, ok: true };
      rollbacks.push(record);
      try {
        await runActivity(a, rbEnv);
      } catch (e) {
        record.ok = false;
        record.error = (e as Error).message;
      }
    }
    emit({ event: 'phase', phase: 'teardown' });
    closeSender();
    await world.close();
    options.signal?.removeEventListener('abort', onOuter);
  }
  const safeFill = (text: string): string => {
    try {
      return world.fill(text);
    } catch {
      return text;
    }
  };
  return {
    title: experiment.title,
    description: experiment.description,
    status,
    score: scoreOf(experimentRun?.probes ?? []),
    scoreFormula: SCORE_FORMULA,
    startedAt,
    finishedAt: new Date(clock.date()).toISOString(),
    load:
      experiment.load === undefined
        ? null
        : { rate: experiment.load.rate, url: safeFill(experiment.load.url) },
    control,
    experiment: experimentRun,
    abort,
    rollbacks,
    ...(error !== undefined ? { error } : {}),
  };
}
