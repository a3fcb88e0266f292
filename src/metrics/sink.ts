/**
 * The metrics sink: plain counters that tracked policies update on the hot path, and a
 * `collect()` that turns them (plus the state of breakers, bulkheads, retries, rate limits,
 * queues and a health monitor) into metric families at scrape time.
 *
 * A "call" is one `execute()` of a tracked pipeline, or of a tracked standalone policy. Policies
 * that run inside a pipeline are not calls of their own: their state is read from them at scrape
 * time (breaker state, bulkhead occupancy, retry and rejection counters). Tracking replaces the
 * policy's `execute` with a timed one on that object only, so untracked policies pay nothing.
 */

import { z } from 'zod';
import { type Clock, systemClock } from '../core/clock.js';
import { BulwarkError, TimeoutError } from '../core/errors.js';
import { type Disposer, makeDisposer, type PolicyEvent, reportError } from '../core/events.js';
import type { Policy } from '../core/policy.js';
import { parseOptions } from './validate.js';

/** How a call ended: `success`, `failure` (the operation failed), `rejected` (a policy refused it
 * without running it: open breaker, full bulkhead, rate limit, load shedding, throttling) or
 * `timeout` (a timeout policy gave up on it). */
export type CallOutcome = 'success' | 'failure' | 'rejected' | 'timeout';

/**
 * The outcomes in label order.
 *
 * @example
 * ```ts
 * import { CALL_OUTCOMES } from 'bulwark/metrics';
 * console.log(CALL_OUTCOMES.join(', ')); // success, failure, rejected, timeout
 * ```
 */
export const CALL_OUTCOMES: readonly CallOutcome[] = ['success', 'failure', 'rejected', 'timeout'];

const REJECT_CODES = new Set([
  'BREAKER_OPEN',
  'BULKHEAD_FULL',
  'BULKHEAD_QUEUE_TIMEOUT',
  'RATE_LIMITED',
  'LOAD_SHED',
  'THROTTLED',
]);

/**
 * Classifies a call's error: a `TimeoutError` is `timeout`; a Bulwark rejection (open breaker,
 * full bulkhead, rate limit, load shedding, throttling) is `rejected`; anything else `failure`.
 *
 * @example
 * ```ts
 * import { TimeoutError } from 'bulwark';
 * import { classifyError } from 'bulwark/metrics';
 * console.log(classifyError(new TimeoutError(100))); // 'timeout'
 * ```
 */
export function classifyError(error: unknown): Exclude<CallOutcome, 'success'> {
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof BulwarkError && REJECT_CODES.has(error.code)) return 'rejected';
  return 'failure';
}

/** Something told about every recorded call (an SLO tracker). */
export interface CallObserver {
  /** Called once per call, after the counters were updated. */
  observe(outcome: CallOutcome, durationMs: number, priority: string, atMs: number): void;
}

/**
 * Prometheus' default buckets, in seconds (prom-client's `[0.005 … 10]`).
 *
 * @example
 * ```ts
 * import { createMetrics, DEFAULT_BUCKETS } from 'bulwark/metrics';
 * const metrics = createMetrics({ buckets: [...DEFAULT_BUCKETS, 30, 60] });
 * ```
 */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The counters of one (policy kind, name): plain number fields and a fixed bucket array, updated
 * without allocation or label lookups.
 *
 * Every call's outcome is counted. Durations are measured for one call in `sampleEvery` on
 * average (random phase, so periodic workloads do not alias) plus the first call of every 100 ms,
 * or for every call while an
 * observer (an SLO tracker) is attached or `sampleEvery` is 1: the histogram then holds a uniform
 * sample of calls, so its quantiles and mean are unbiased while `_count` counts timed calls only
 * (use `bulwark_calls_total` for rates).
 *
 * @example
 * ```ts
 * import { createMetrics } from 'bulwark/metrics';
 * const rec = createMetrics().recorder('pipeline', 'api');
 * rec.record('success', 12, 'normal', 0);
 * console.log(rec.success, rec.count, rec.timed); // 1 1 1
 * ```
 */
export class CallRecorder {
  success = 0;
  failure = 0;
  rejected = 0;
  timeout = 0;
  /** Sum of measured durations, ms. */
  sumMs = 0;
  /** Timed calls per bucket (not cumulative); the last is `+Inf`. */
  readonly counts: Float64Array;
  /** Sum of durations per bucket, ms (lets an exporter replay exact per-bucket means). */
  readonly bucketSumsMs: Float64Array;
  /** Observers (SLO trackers), or null when none. */
  observers: CallObserver[] | null = null;
  /** Calls left before the next timed one (internal to the timed `execute`). */
  skip = 1;
  /** The sampling epoch of the last timed call (internal to the timed `execute`). */
  epoch = -1;
  /** Counts a success that was not timed (pre-bound: no allocation per call). */
  readonly onOk = (): void => {
    this.success++;
  };
  /** Counts a failure that was not timed (pre-bound). */
  readonly onErr = (error: unknown): void => {
    this.count(classifyError(error));
  };
  private readonly boundsMs: Float64Array;
  private seed: number;

  constructor(
    /** The `policy` label: `pipeline` or the policy kind. */
    readonly policy: string,
    /** The `name` label. */
    readonly name: string,
    /** Upper bounds of the histogram buckets, seconds, ascending. */
    readonly bounds: readonly number[],
    /** Time one call in this many on average (1 = every call). */
    readonly sampleEvery = 1,
  ) {
    this.boundsMs = Float64Array.from(bounds, (b) => b * 1000);
    this.counts = new Float64Array(bounds.length + 1);
    this.bucketSumsMs = new Float64Array(bounds.length + 1);
    this.seed = (Math.random() * 0x7fffffff) | 1;
  }

  /** Calls counted. */
  get calls(): number {
    return this.success + this.failure + this.rejected + this.timeout;
  }

  /** Calls timed (the histogram's count). */
  get timed(): number {
    let n = 0;
    for (let i = 0; i < this.counts.length; i++) n += this.counts[i]!;
    return n;
  }

  /** Counts one call without a duration. */
  count(outcome: CallOutcome): void {
    if (outcome === 'success') this.success++;
    else if (outcome === 'failure') this.failure++;
    else if (outcome === 'rejected') this.rejected++;
    else this.timeout++;
  }

  /** Records one timed call: its outcome, its duration, and tells the observers. */
  record(outcome: CallOutcome, durationMs: number, priority: string, atMs: number): void {
    this.count(outcome);
    this.sumMs += durationMs;
    const b = this.boundsMs;
    let i = 0;
    while (i < b.length && durationMs > b[i]!) i++;
    this.counts[i]!++;
    this.bucketSumsMs[i]! += durationMs;
    const obs = this.observers;
    if (obs !== null)
      for (let j = 0; j < obs.length; j++) {
        // An observer's bug must not turn into an unhandled rejection of the caller's call.
        try {
          obs[j]!.observe(outcome, durationMs, priority, atMs);
        } catch (error) {
          reportError(`A call observer of ${this.policy} ${this.name}`, error);
        }
      }
  }

  /** How many calls until the next timed one: 1 when every call is timed, else 1…2N-1 (mean N). */
  nextSkip(): number {
    const n = this.sampleEvery;
    if (n <= 1 || this.observers !== null) return 1;
    // xorshift32: cheap, and good enough to break the phase.
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x;
    return 1 + ((x >>> 0) % (2 * n - 1));
  }

  /** Adds an observer (from now on every call is timed); returns its disposer. */
  addObserver(o: CallObserver): Disposer {
    this.observers = [...(this.observers ?? []), o];
    this.skip = 1;
    return makeDisposer(() => {
      const rest = (this.observers ?? []).filter((x) => x !== o);
      this.observers = rest.length === 0 ? null : rest;
    });
  }
}

/**
 * A queue read at scrape time (duck-typed: `bulwark/durable` queues, or your own).
 *
 * @example
 * ```ts
 * import { createMetrics, type QueueLike } from 'bulwark/metrics';
 * const queue: QueueLike = { name: 'mail', stats: async () => ({ pending: 0, active: 0, completed: 0, dead: 0 }) };
 * createMetrics().addQueue(queue);
 * ```
 */
export interface QueueLike {
  readonly name: string;
  stats(): Promise<{
    pending: number;
    active: number;
    completed: number;
    dead: number;
    delayed?: number;
  }>;
}

/**
 * A health monitor read at scrape time (duck-typed: `bulwark/health`, or your own).
 *
 * @example
 * ```ts
 * import { createMetrics, type HealthLike } from 'bulwark/metrics';
 * const monitor: HealthLike = { snapshot: () => ({ ready: true, shuttingDown: false, checks: [] }) };
 * createMetrics().addHealth(monitor);
 * ```
 */
export interface HealthLike {
  snapshot(): {
    ready: boolean;
    shuttingDown: boolean;
    checks: ReadonlyArray<{ name: string; status: 'pass' | 'warn' | 'fail'; critical: boolean }>;
  };
}

/** One sample of a counter or gauge. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One series of a histogram: cumulative counts per upper bound (`+Inf` last), sum and count. */
export interface HistogramSample {
  readonly labels: Readonly<Record<string, string>>;
  /** Upper bounds, seconds (without `+Inf`). */
  readonly bounds: readonly number[];
  /** Cumulative counts, one per bound plus `+Inf`. */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** A metric family as collected. */
export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly samples: readonly HistogramSample[];
    };

/** A flat sample with its metric name (histograms as `_bucket{le}`, `_sum`, `_count`). */
export interface NamedSample extends Sample {
  readonly name: string;
}

/** What the sink reads of an SLO tracker. */
export interface SloSource {
  samples(): { budget: Sample[]; burn: Sample[] };
}

/** Options of `createMetrics()`. */
export interface MetricsOptions {
  /** Clock for call durations. Default `systemClock`. */
  clock?: Clock;
  /** Histogram bucket upper bounds, seconds, ascending. Default Prometheus' `[0.005 … 10]`. */
  buckets?: readonly number[];
  /**
   * Time one call in this many, on average (1 = every call). Every call's outcome is counted
   * whatever this is; a policy with an SLO tracker times every call. Default 16 (calls are all timed below ~10 calls/s: the first call of each 100 ms is). A clock read
   * costs ~40 ns, two per timed call, which is most of what metrics would cost a fast pipeline.
   */
  sampleEvery?: number;
}

const optionsSchema = z
  .object({
    clock: z.custom<Clock>(
      (c) =>
        typeof c === 'object' &&
        c !== null &&
        typeof (c as Clock).now === 'function' &&
        typeof (c as Clock).date === 'function',
      'must be a Clock (now, date, setTimeout, clearTimeout)',
    ),
    buckets: z
      .array(z.number().positive().finite())
      .min(1)
      .refine((b) => b.every((x, i) => i === 0 || x > b[i - 1]!), 'must be strictly ascending'),
    sampleEvery: z.number().int().min(1).max(1_000_000),
  })
  .partial()
  .strict();

/** What the sink reads of the policies a tracked policy consists of. */
interface Member {
  readonly kind?: string;
  readonly name: string;
}

interface Tracked {
  readonly policy: Policy<unknown, PolicyEvent>;
  readonly recorder: CallRecorder;
  readonly members: readonly Member[];
  readonly hadOwnExecute: boolean;
  readonly original: Execute;
  /** The timed `execute` installed on the policy. */
  readonly wrapper: Execute;
  /** Set by `untrack()` when another wrapper sits on top of this one: it then passes through. */
  readonly gate: { passThrough: boolean };
}

/** Every timed `execute` that was untracked but could not be removed (another sink wrapped it). */
const retired = new WeakMap<Execute, { readonly original: Execute; readonly hadOwnExecute: boolean }>();

const key = (policy: string, name: string) => `${policy}\u0000${name}`;

/**
 * The metrics sink. Make one per process with `createMetrics()`, `track()` your pipelines and
 * policies, and hand it to an exporter (`prometheusExporter`, `otelMetrics`), alert rules, SLOs
 * and logs.
 *
 * @example
 * ```ts
 * import { createMetrics } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const families = await metrics.collect();
 * ```
 */
export class Metrics {
  /** The clock call durations are measured with. */
  readonly clock: Clock;
  /** Histogram bucket upper bounds, seconds. */
  readonly buckets: readonly number[];
  /** Time one call in this many (see `MetricsOptions.sampleEvery`). */
  readonly sampleEvery: number;
  private readonly recorders = new Map<string, CallRecorder>();
  private readonly tracked = new Map<object, Tracked>();
  private readonly queues = new Set<QueueLike>();
  private readonly healths = new Set<HealthLike>();
  private trackListeners: ((policy: Member) => void)[] = [];
  private readonly slos = new Set<SloSource>();
  private readonly warnedBreakerNames = new Set<string>();

  constructor(options: MetricsOptions = {}) {
    const o = parseOptions('createMetrics', optionsSchema, options);
    this.clock = o.clock ?? systemClock;
    this.buckets = Object.freeze([...(o.buckets ?? DEFAULT_BUCKETS)]);
    this.sampleEvery = o.sampleEvery ?? 16;
  }

  /** The recorder of (policy kind, name), made on first use. */
  recorder(policy: string, name: string): CallRecorder {
    const k = key(policy, name);
    let r = this.recorders.get(k);
    if (r === undefined) {
      r = new CallRecorder(policy, name, this.buckets, this.sampleEvery);
      this.recorders.set(k, r);
    }
    return r;
  }

  /** Every recorder made so far. */
  allRecorders(): readonly CallRecorder[] {
    return [...this.recorders.values()];
  }

  /**
   * Tracks a pipeline or standalone policy: each of its `execute()` calls is counted and timed
   * under `{policy, name}` (`policy` = `pipeline` or the kind; `name` = `name` if given, else the
   * policy's name), and its member policies' state is read at scrape time. Returns the same
   * object. Tracking replaces `execute` on that object only; `untrack()` restores it.
   *
   * @example
   * ```ts
   * import { circuitBreaker } from 'bulwark';
   * import { createMetrics } from 'bulwark/metrics';
   * const metrics = createMetrics();
   * const breaker = metrics.track(circuitBreaker(), 'payments');
   * await breaker.execute(() => 'ok');
   * console.log(metrics.recorder('circuitBreaker', 'payments').success); // 1
   * ```
   */
  track<P extends Policy<unknown, PolicyEvent>>(policy: P, name?: string): P {
    if (this.tracked.has(policy)) return policy;
    const target = policy as unknown as {
      kind: string;
      name: string;
      policies?: readonly Member[];
      execute: Execute;
    };
    if (typeof target.execute !== 'function' || typeof target.kind !== 'string') {
      throw new TypeError('metrics.track() accepts only Bulwark policies and pipelines');
    }
    const recorder = this.recorder(target.kind, name ?? target.name);
    const members: readonly Member[] =
      target.kind === 'pipeline' && Array.isArray(target.policies) ? target.policies : [target];
    const hadOwnExecute = Object.hasOwn(target, 'execute');
    const original = target.execute;
    const gate = { passThrough: false };
    const timed = makeTimed(target, original, recorder, this.clock, gate);
    Object.defineProperty(target, 'execute', {
      value: timed,
      configurable: true,
      writable: true,
      enumerable: false,
    });
    this.tracked.set(policy, {
      policy,
      recorder,
      members,
      hadOwnExecute,
      original,
      wrapper: timed,
      gate,
    });
    for (const m of members) for (const l of this.trackListeners) l(m);
    return policy;
  }

  /**
   * Stops tracking `policy` (its counters stay). Its `execute` is restored when it is still this
   * sink's timed one; when something wrapped it since (another sink tracking the same policy),
   * that wrapper is left in place and this sink's timed `execute` just passes calls through (it is
   * removed when the wrapper above it is).
   */
  untrack(policy: Policy<unknown, PolicyEvent>): void {
    const t = this.tracked.get(policy);
    if (t === undefined) return;
    this.tracked.delete(policy);
    t.gate.passThrough = true;
    const target = policy as unknown as { execute?: unknown };
    if (target.execute !== t.wrapper) {
      retired.set(t.wrapper, { original: t.original, hadOwnExecute: t.hadOwnExecute });
      return;
    }
    // Skip wrappers of sinks that untracked the policy while this one sat on top of them.
    let original = t.original;
    let hadOwn = t.hadOwnExecute;
    for (let r = retired.get(original); r !== undefined; r = retired.get(original)) {
      retired.delete(original);
      original = r.original;
      hadOwn = r.hadOwnExecute;
    }
    if (!hadOwn) delete target.execute;
    else
      Object.defineProperty(policy, 'execute', {
        value: original,
        configurable: true,
        writable: true,
        enumerable: false,
      });
  }

  /** The policies of every tracked pipeline or policy (deduplicated). */
  members(): readonly Member[] {
    const set = new Set<Member>();
    for (const t of this.tracked.values()) for (const m of t.members) set.add(m);
    return [...set];
  }

  /** Calls `listener` for every member policy tracked from now on (and those already tracked). */
  onTrack(listener: (policy: Member) => void): Disposer {
    this.trackListeners = [...this.trackListeners, listener];
    for (const m of this.members()) listener(m);
    return makeDisposer(() => {
      this.trackListeners = this.trackListeners.filter((l) => l !== listener);
    });
  }

  /**
   * Adds a queue read at scrape time (`bulwark_queue_jobs{queue,state}`). Returns a disposer.
   * Queues are told apart by name: of two queues with one name, the one added last is exported.
   */
  addQueue(queue: QueueLike): Disposer {
    if (typeof queue?.stats !== 'function' || typeof queue.name !== 'string')
      throw new TypeError('metrics.addQueue() needs { name: string; stats(): Promise<…> }');
    this.queues.add(queue);
    return makeDisposer(() => this.queues.delete(queue));
  }

  /**
   * Adds a health monitor read at scrape time (`bulwark_health_status`, `bulwark_ready`). Checks
   * are told apart by name: of two checks with one name (in two monitors), the last is exported.
   */
  addHealth(monitor: HealthLike): Disposer {
    if (typeof monitor?.snapshot !== 'function')
      throw new TypeError('metrics.addHealth() needs { snapshot(): { ready, shuttingDown, checks } }');
    this.healths.add(monitor);
    return makeDisposer(() => this.healths.delete(monitor));
  }

  /** Adds an SLO's gauges to the families (done by `sloTracker()`). Returns a disposer. */
  addSlo(slo: SloSource): Disposer {
    this.slos.add(slo);
    return makeDisposer(() => this.slos.delete(slo));
  }

  /**
   * Reads everything into metric families (queues are read concurrently; a queue whose
   * `stats()` fails is left out of this scrape and reported as a process warning).
   */
  async collect(): Promise<MetricFamily[]> {
    const families: MetricFamily[] = [];
    const calls: Sample[] = [];
    const durations: HistogramSample[] = [];
    for (const r of this.recorders.values()) {
      const labels = { policy: r.policy, name: r.name };
      for (const outcome of CALL_OUTCOMES) calls.push({ labels: { ...labels, outcome }, value: r[outcome] });
      const cumulative: number[] = [];
      let acc = 0;
      for (let i = 0; i < r.counts.length; i++) {
        acc += r.counts[i]!;
        cumulative.push(acc);
      }
      durations.push({ labels, bounds: r.bounds, cumulative, sum: r.sumMs / 1000, count: acc });
    }
    families.push(family('bulwark_calls_total', calls));
    families.push(family('bulwark_call_duration_seconds', durations));

    const retries = new Map<string, number>();
    const giveUps = new Map<string, number>();
    const states = new Map<string, string>();
    const active = new Map<string, number>();
    const queued = new Map<string, number>();
    const limits = new Map<string, number>();
    const bulkRejected = new Map<string, number>();
    const rlRejected = new Map<string, number>();
    const timeouts = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
    const warnDuplicateBreaker = (name: string): void => {
      if (this.warnedBreakerNames.has(name)) return;
      this.warnedBreakerNames.add(name);
      reportError(
        'bulwark_circuit_state',
        new Error(
          `Two circuit breakers are named ${JSON.stringify(name)}: bulwark_circuit_state shows the first one only. Give each breaker its own name.`,
        ),
      );
    };
    for (const m of this.members()) {
      const p = m as Member & { stats?: Record<string, unknown>; state?: string };
      // A member whose state cannot be read (a policy of another shape under a known kind) is
      // left out of this scrape and reported, never fails the scrape.
      try {
        readMember(m, p);
      } catch (error) {
        reportError(`Reading the state of ${m.kind ?? 'policy'} ${m.name}`, error);
      }
    }
    function readMember(m: Member, p: Member & { stats?: Record<string, unknown>; state?: string }): void {
      const stats = p.stats;
      /** Adds `stats[field]` to `map` when the policy has such a number (other shapes: skipped). */
      const put = (map: Map<string, number>, field: string): void => {
        const v = typeof stats === 'object' && stats !== null ? stats[field] : undefined;
        if (typeof v === 'number') add(map, m.name, v);
      };
      switch (m.kind) {
        case 'retry':
          put(retries, 'retries');
          put(giveUps, 'giveUps');
          break;
        case 'circuitBreaker':
          if (typeof p.state !== 'string') break;
          if (!states.has(m.name)) states.set(m.name, p.state);
          else warnDuplicateBreaker(m.name);
          break;
        case 'bulkhead': {
          put(active, 'active');
          put(queued, 'queued');
          put(bulkRejected, 'rejected');
          // The limit when constant (0 when it is a function of the context): private field.
          const limit = (m as unknown as { fixedLimit?: unknown }).fixedLimit;
          if (typeof limit === 'number' && limit > 0) add(limits, m.name, limit);
          break;
        }
        case 'rateLimit':
          put(rlRejected, 'rejected');
          break;
        case 'timeout':
          put(timeouts, 'timeouts');
          break;
      }
    }
    const byName = (m: Map<string, number>): Sample[] =>
      [...m].map(([name, value]) => ({ labels: { name }, value }));
    families.push(family('bulwark_retries_total', byName(retries)));
    families.push(family('bulwark_retry_give_ups_total', byName(giveUps)));
    const stateSamples: Sample[] = [];
    for (const [name, current] of states)
      for (const state of CIRCUIT_STATES)
        stateSamples.push({ labels: { name, state }, value: state === current ? 1 : 0 });
    families.push(family('bulwark_circuit_state', stateSamples));
    families.push(family('bulwark_bulkhead_active', byName(active)));
    families.push(family('bulwark_bulkhead_queued', byName(queued)));
    families.push(family('bulwark_bulkhead_limit', byName(limits)));
    families.push(family('bulwark_bulkhead_rejected_total', byName(bulkRejected)));
    families.push(family('bulwark_ratelimit_rejected_total', byName(rlRejected)));
    families.push(family('bulwark_timeouts_total', byName(timeouts)));

    // Keyed by labels: two queues (or health checks) of one name make one series, the last wins.
    const jobs = new Map<string, Sample>();
    const stats = await Promise.all(
      [...this.queues].map(async (q) => {
        try {
          return { q, s: await q.stats() };
        } catch (error) {
          reportError(`The stats() of queue ${q.name}`, error);
          return null;
        }
      }),
    );
    for (const x of stats) {
      if (x === null) continue;
      const { q, s } = x;
      const entries: [string, number | undefined][] = [
        ['pending', s.pending],
        ['active', s.active],
        ['completed', s.completed],
        ['dead', s.dead],
        ['delayed', s.delayed],
      ];
      for (const [state, value] of entries)
        if (typeof value === 'number')
          jobs.set(key(q.name, state), { labels: { queue: q.name, state }, value });
    }
    families.push(family('bulwark_queue_jobs', [...jobs.values()]));

    const checks = new Map<string, Sample>();
    const ready: Sample[] = [];
    const shutting: Sample[] = [];
    for (const h of this.healths) {
      let snap: ReturnType<HealthLike['snapshot']>;
      try {
        snap = h.snapshot();
      } catch (error) {
        reportError('A health monitor’s snapshot()', error);
        continue;
      }
      for (const c of snap.checks)
        checks.set(c.name, {
          labels: { check: c.name, critical: String(c.critical) },
          value: c.status === 'pass' ? 1 : c.status === 'warn' ? 0.5 : 0,
        });
      if (ready.length === 0) {
        ready.push({ labels: {}, value: snap.ready ? 1 : 0 });
        shutting.push({ labels: {}, value: snap.shuttingDown ? 1 : 0 });
      }
    }
    families.push(family('bulwark_health_status', [...checks.values()]));
    families.push(family('bulwark_ready', ready));
    families.push(family('bulwark_shutting_down', shutting));
    const budget: Sample[] = [];
    const burn: Sample[] = [];
    for (const slo of this.slos) {
      const x = slo.samples();
      budget.push(...x.budget);
      burn.push(...x.burn);
    }
    families.push(family('bulwark_slo_error_budget_remaining', budget));
    families.push(family('bulwark_slo_burn_rate', burn));
    return families;
  }

  /** `collect()`, flattened into named samples (histograms as `_bucket{le}`, `_sum`, `_count`). */
  async samples(): Promise<NamedSample[]> {
    return flatten(await this.collect());
  }
}

/**
 * Name, help and type of every family `collect()` returns, in order.
 *
 * @example
 * ```ts
 * import { METRIC_FAMILIES } from 'bulwark/metrics';
 * for (const f of METRIC_FAMILIES) console.log(f.name, f.type);
 * ```
 */
export const METRIC_FAMILIES: readonly {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
}[] = [
  {
    name: 'bulwark_calls_total',
    help: 'Calls of tracked pipelines and standalone policies, by outcome (success, failure, rejected, timeout).',
    type: 'counter',
  },
  {
    name: 'bulwark_call_duration_seconds',
    help: 'Duration of calls of tracked pipelines and standalone policies, seconds.',
    type: 'histogram',
  },
  {
    name: 'bulwark_retries_total',
    help: 'Retries made by retry policies (attempts after the first).',
    type: 'counter',
  },
  {
    name: 'bulwark_retry_give_ups_total',
    help: 'Executions a retry policy stopped retrying and failed.',
    type: 'counter',
  },
  {
    name: 'bulwark_circuit_state',
    help: 'Circuit breaker state: 1 for the current state, 0 for the others.',
    type: 'gauge',
  },
  { name: 'bulwark_bulkhead_active', help: 'Executions running in a bulkhead now.', type: 'gauge' },
  { name: 'bulwark_bulkhead_queued', help: 'Executions waiting for a bulkhead slot now.', type: 'gauge' },
  {
    name: 'bulwark_bulkhead_limit',
    help: 'A bulkhead’s concurrency limit (when it is a constant).',
    type: 'gauge',
  },
  {
    name: 'bulwark_bulkhead_rejected_total',
    help: 'Executions a bulkhead rejected (full, or queue timeout).',
    type: 'counter',
  },
  { name: 'bulwark_ratelimit_rejected_total', help: 'Calls a rate-limit policy refused.', type: 'counter' },
  { name: 'bulwark_timeouts_total', help: 'Executions a timeout policy timed out.', type: 'counter' },
  {
    name: 'bulwark_queue_jobs',
    help: 'Jobs in a queue by state (pending, active, completed, dead, delayed), read at scrape time.',
    type: 'gauge',
  },
  { name: 'bulwark_health_status', help: 'Health check status: 1 pass, 0.5 warn, 0 fail.', type: 'gauge' },
  { name: 'bulwark_ready', help: '1 when the service is ready for traffic, else 0.', type: 'gauge' },
  { name: 'bulwark_shutting_down', help: '1 while the service is shutting down, else 0.', type: 'gauge' },
  {
    name: 'bulwark_slo_error_budget_remaining',
    help: 'Share of an SLO error budget left over its window (1 untouched, 0 spent, negative overspent).',
    type: 'gauge',
  },
  {
    name: 'bulwark_slo_burn_rate',
    help: 'SLO burn rate (bad ratio divided by the allowed bad ratio) over a window (5m, 30m, 1h, 6h).',
    type: 'gauge',
  },
];

function family(name: string, samples: readonly Sample[] | readonly HistogramSample[]): MetricFamily {
  const info = METRIC_FAMILIES.find((f) => f.name === name)!;
  return { ...info, samples } as MetricFamily;
}

const perf = globalThis.performance;

type Execute = (fn: unknown, options?: { priority?: string }) => Promise<unknown>;

/**
 * A coarse epoch, bumped 100 ms after a timed call (one unref'd timer at a time, none while no
 * tracked call runs): the first call of a recorder in an epoch is always timed, so a policy with
 * little traffic (≲ 10 calls/s) has every call timed and sampling only thins out busy ones.
 * (Only a sampling hint: values never depend on it.)
 */
let epoch = 0;
let armed = false;
function bump(): void {
  epoch++;
  armed = false;
}
function arm(): void {
  if (armed) return;
  armed = true;
  const t = setTimeout(bump, 100);
  t.unref?.();
}

/**
 * The timed `execute` of a tracked policy. An untimed call costs one reaction attached beside
 * the caller's (the caller awaits the original promise: no extra hop) with pre-bound handlers;
 * a timed one adds two clock reads and the reaction's closures.
 */
function makeTimed(
  target: object,
  original: Execute,
  rec: CallRecorder,
  clock: Clock,
  gate: { readonly passThrough: boolean },
): Execute {
  const read: () => number = clock === systemClock ? () => perf.now() : () => clock.now();
  return function execute(fn, options) {
    if (gate.passThrough) return original.call(target, fn, options);
    if (--rec.skip > 0 && rec.epoch === epoch) {
      const p = original.call(target, fn, options);
      p.then(rec.onOk, rec.onErr);
      return p;
    }
    rec.skip = rec.nextSkip();
    rec.epoch = epoch;
    if (rec.sampleEvery > 1) arm();
    const t0 = read();
    const p = original.call(target, fn, options);
    p.then(
      () => {
        const now = read();
        rec.record('success', now - t0, options?.priority ?? 'normal', now);
      },
      (error: unknown) => {
        const now = read();
        rec.record(classifyError(error), now - t0, options?.priority ?? 'normal', now);
      },
    );
    return p;
  };
}

/**
 * Every circuit state, in label order.
 *
 * @example
 * ```ts
 * import { CIRCUIT_STATES } from 'bulwark/metrics';
 * console.log(CIRCUIT_STATES.includes('open')); // true
 * ```
 */
export const CIRCUIT_STATES: readonly string[] = [
  'closed',
  'open',
  'half-open',
  'isolated',
  'forced-open',
  'disabled',
];

/**
 * Flattens metric families into named samples, histograms Prometheus-style.
 *
 * @example
 * ```ts
 * import { createMetrics, flatten } from 'bulwark/metrics';
 * const samples = flatten(await createMetrics().collect());
 * console.log(samples.length); // 0: nothing tracked
 * ```
 */
export function flatten(families: readonly MetricFamily[]): NamedSample[] {
  const out: NamedSample[] = [];
  for (const f of families) {
    if (f.type !== 'histogram') {
      for (const s of f.samples) out.push({ name: f.name, labels: s.labels, value: s.value });
      continue;
    }
    for (const s of f.samples) {
      s.bounds.forEach((b, i) => {
        out.push({
          name: `${f.name}_bucket`,
          labels: { ...s.labels, le: String(b) },
          value: s.cumulative[i]!,
        });
      });
      out.push({ name: `${f.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      out.push({ name: `${f.name}_sum`, labels: s.labels, value: s.sum });
      out.push({ name: `${f.name}_count`, labels: s.labels, value: s.count });
    }
  }
  return out;
}

/**
 * Makes a metrics sink.
 *
 * @example
 * ```ts
 * import { pipeline, retry, timeout } from 'bulwark';
 * import { createMetrics } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const api = metrics.track(pipeline(timeout(1_000), retry()), 'api');
 * await api.execute(() => 1);
 * console.log(metrics.recorder('pipeline', 'api').calls); // 1
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  return new Metrics(options);
}
