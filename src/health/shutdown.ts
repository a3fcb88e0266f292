/**
 * Graceful shutdown, in the order load balancers and Kubernetes need: readiness fails at once;
 * after a drain delay the servers stop accepting and idle keep-alive sockets close; in-flight
 * requests and tracked work finish (bounded); hooks run in order, each with its own timeout; a
 * hard deadline forces the exit; the exit code says how it went.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import { BulwarkError } from '../core/errors.js';
import { type Disposer, Emitter, type Listener, makeDisposer } from '../core/events.js';
import { type Infer, s } from '../core/schema.js';
import { clockSchema, duck, fn, ms, parse, positiveMs } from './options.js';

/** A step run after the servers have drained (close a pool, flush telemetry, …). */
export interface ShutdownHook {
  readonly name: string;
  /**
   * Gets the signal's name (`SIGTERM`, or `manual` for `begin()`) and an AbortSignal aborted
   * when the hook overruns its timeout.
   */
  readonly run: (signal: string, abort: AbortSignal) => Promise<unknown> | unknown;
  /** Default the shutdown's `hookTimeoutMs` (5 000 ms). */
  readonly timeoutMs?: number;
}

/** A console-like or pino-like logger (only single-string calls are made). */
export interface ShutdownLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A node:http / https / http2 server (the part used). */
export interface ServerLike {
  on(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  prependListener?(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  close(callback?: (error?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
  readonly listening?: boolean;
}

/** Exit codes by outcome. */
export interface ShutdownExitCodes {
  /** Everything drained and every hook ended in time. Default 0. */
  clean?: number;
  /** Drained, but in-flight work outlived `inFlightTimeoutMs`, or a hook failed or overran. Default 1. */
  error?: number;
  /** The deadline passed, or a second signal arrived. Default 1. */
  forced?: number;
}

/** Options of `gracefulShutdown()`. */
export interface GracefulShutdownOptions {
  /** Servers to drain (more with `addServer`). Their requests are tracked from now on. */
  servers?: readonly ServerLike[];
  /** Signals that begin the shutdown. Default `['SIGTERM', 'SIGINT']`; `[]` for none. */
  signals?: readonly NodeJS.Signals[];
  /** A health monitor (or anything with `setShuttingDown`): readiness fails the moment shutdown begins. */
  monitor?: { setShuttingDown(value: boolean): void };
  /**
   * How long to keep serving after readiness fails, before closing the listeners: the time load
   * balancers need to notice (readiness period × failure threshold; Kubernetes' defaults make it
   * 10 s × 3, but endpoints are usually removed within a few seconds of the pod's termination).
   * Default 5 000 ms. Use 0 outside a load balancer (e.g. in development).
   */
  drainDelayMs?: number;
  /** How long to wait for in-flight requests and tracked work once the listeners are closed. Default 10 000 ms. */
  inFlightTimeoutMs?: number;
  /** Run in order after the drain; each is abandoned at its timeout (logged), and the next runs. */
  hooks?: readonly ShutdownHook[];
  /** Default timeout of a hook. Default 5 000 ms. */
  hookTimeoutMs?: number;
  /**
   * Hard deadline from the start of the shutdown: the process exits with the forced code when it
   * passes. Default 25 000 ms — under Kubernetes' 30 s grace period, so that we, not SIGKILL,
   * end the process and say why.
   */
  deadlineMs?: number;
  exitCode?: ShutdownExitCodes;
  /** Called with the exit code at the end. Default `process.exit`; `false` to not exit. */
  exit?: ((code: number) => void) | false;
  /** Default `console`; `false` for silence. */
  logger?: ShutdownLogger | false;
  clock?: Clock;
  /** Where signals are listened to. Default `process`. @internal for tests */
  signalSource?: {
    on(signal: string, listener: (signal: NodeJS.Signals) => void): unknown;
    off(signal: string, listener: (signal: NodeJS.Signals) => void): unknown;
  };
}

/** How a shutdown ended. */
export interface ShutdownResult {
  readonly outcome: 'clean' | 'error' | 'forced';
  readonly code: number;
  /** The signal's name, or `manual`. */
  readonly signal: string;
  /** What went wrong (hooks that failed or overran, work that outlived its timeout, …). */
  readonly problems: readonly string[];
}

/** The phases of a shutdown. */
export type ShutdownPhase = 'running' | 'draining' | 'closing' | 'waiting' | 'hooks' | 'done';

/** Events of a shutdown. */
export type ShutdownEvent =
  | { readonly type: 'phase'; readonly phase: ShutdownPhase; readonly signal: string }
  | {
      readonly type: 'hook';
      readonly name: string;
      readonly outcome: 'ok' | 'failed' | 'timeout';
      readonly ms: number;
    }
  | { readonly type: 'exit'; readonly result: ShutdownResult };

/**
 * The abort reason a shutdown hook's AbortSignal carries when the hook overran its timeout.
 *
 * @example
 * ```ts
 * import { gracefulShutdown, ShutdownTimeoutError } from 'bulwark/health';
 * let reason: unknown;
 * const shutdown = gracefulShutdown({
 *   signals: [], drainDelayMs: 0, exit: false, logger: false,
 *   hooks: [{ name: 'flush', timeoutMs: 10, run: (_s, abort) => new Promise((r) => abort.addEventListener('abort', () => { reason = abort.reason; r(undefined); })) }],
 * });
 * await shutdown.begin();
 * console.log(reason instanceof ShutdownTimeoutError); // true
 * ```
 */
export class ShutdownTimeoutError extends BulwarkError {
  override readonly code: 'SHUTDOWN_TIMEOUT' = 'SHUTDOWN_TIMEOUT';
  constructor(what: string, ms: number) {
    super(
      'SHUTDOWN_TIMEOUT',
      `${what} did not end within ${ms} ms during shutdown; give it a longer timeout or make it stop on its AbortSignal`,
    );
  }
}

const SILENT: ShutdownLogger = { info() {}, warn() {}, error() {} };

const schema = s.object({
  servers: s.optional(s.array(duck<ServerLike>('a node:http server', ['close']))),
  signals: s.optional(
    s.array(
      s.custom<string>(
        'a signal name such as "SIGTERM" (not SIGKILL or SIGSTOP: they cannot be caught)',
        (v, path) =>
          typeof v === 'string' && /^SIG[A-Z0-9]+$/.test(v) && v !== 'SIGKILL' && v !== 'SIGSTOP'
            ? v
            : s.fail(
                path,
                'a signal name such as "SIGTERM" (not SIGKILL or SIGSTOP: they cannot be caught)',
                v,
              ),
      ),
    ),
  ),
  monitor: s.optional(
    duck<{ setShuttingDown(v: boolean): void }>('an object with setShuttingDown(value)', ['setShuttingDown']),
  ),
  drainDelayMs: s.optional(ms),
  inFlightTimeoutMs: s.optional(ms),
  hooks: s.optional(
    s.array(s.object({ name: s.string(), run: fn<ShutdownHook['run']>(), timeoutMs: s.optional(ms) })),
  ),
  hookTimeoutMs: s.optional(ms),
  deadlineMs: s.optional(positiveMs),
  exitCode: s.optional(
    s.object({ clean: s.optional(s.int()), error: s.optional(s.int()), forced: s.optional(s.int()) }),
  ),
  exit: s.optional(s.union([s.oneOf([false]), fn<(code: number) => void>()], 'false or a function')),
  logger: s.optional(
    s.union(
      [
        s.oneOf([false]),
        duck<ShutdownLogger>('a logger with info, warn and error', ['info', 'warn', 'error']),
      ],
      'false or a logger with info, warn and error',
    ),
  ),
  clock: s.optional(clockSchema),
  signalSource: s.optional(
    s.custom<NonNullable<GracefulShutdownOptions['signalSource']>>('an event emitter (process)', (v, path) =>
      typeof v === 'object' && v !== null
        ? (v as NonNullable<GracefulShutdownOptions['signalSource']>)
        : s.fail(path, 'an event emitter (process)', v),
    ),
  ),
});

interface Tracked {
  readonly server: ServerLike;
  readonly open: Set<ServerResponse>;
  idle: (() => void) | undefined;
}

/**
 * Controls a graceful shutdown. See `gracefulShutdown()`.
 *
 * @example
 * ```ts
 * import { GracefulShutdown } from 'bulwark/health';
 * const shutdown = new GracefulShutdown({ signals: [], drainDelayMs: 0, exit: false, logger: false });
 * // A drain: stop taking jobs, wait for the running ones.
 * shutdown.register('queue consumer', async () => {});
 * console.log((await shutdown.begin()).outcome); // clean
 * ```
 */
export class GracefulShutdown {
  private readonly o: Infer<typeof schema>;
  private readonly clock: Clock;
  private readonly log: ShutdownLogger;
  private readonly servers: Tracked[] = [];
  private readonly work = new Set<Promise<unknown>>();
  private readonly registered = new Map<string, () => Promise<unknown> | unknown>();
  private readonly emitter = new Emitter<ShutdownEvent>();
  private readonly signalListener: (signal: NodeJS.Signals) => void;
  private readonly source: NonNullable<GracefulShutdownOptions['signalSource']>;
  private promise: Promise<ShutdownResult> | undefined;
  private resolveResult: ((r: ShutdownResult) => void) | undefined;
  private _phase: ShutdownPhase = 'running';
  private closing = false;
  private exited = false;
  private signalName = 'manual';
  /** A platform signal has been received (a second one forces). */
  private signalled = false;
  private deadline: TimerHandle | undefined;
  /** Pending timers of the sequence (drain delay, timeouts): cleared when the shutdown is forced. */
  private readonly timers = new Set<TimerHandle>();
  private disposed = false;

  constructor(options: GracefulShutdownOptions = {}) {
    this.o = parse('gracefulShutdown', schema, options);
    this.clock = this.o.clock ?? systemClock;
    this.log = this.o.logger === false ? SILENT : (this.o.logger ?? console);
    for (const s of this.o.servers ?? []) this.addServer(s);
    this.source = this.o.signalSource ?? process;
    this.signalListener = (signal) => {
      const first = !this.signalled;
      this.signalled = true;
      if (this.promise === undefined) void this.begin(signal);
      // Only a second *signal* forces: after a manual begin(), the platform's SIGTERM is expected.
      else if (!first) this.force(`second signal ${signal}`);
      else this.log.info(`shutdown: ${signal} received; already shutting down`);
    };
    for (const s of this.o.signals ?? ['SIGTERM', 'SIGINT']) this.source.on(s, this.signalListener);
  }

  /** The current phase. */
  get phase(): ShutdownPhase {
    return this._phase;
  }

  /** Requests in flight on the tracked servers. */
  get inFlight(): number {
    let n = 0;
    for (const t of this.servers) n += t.open.size;
    return n;
  }

  /** Tracks a server's requests (to wait for them and to mark them `Connection: close`). */
  addServer(server: ServerLike): void {
    const t: Tracked = { server, open: new Set(), idle: undefined };
    const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
      t.open.add(res);
      if (this.closing && !res.headersSent) res.setHeader('connection', 'close');
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        t.open.delete(res);
        if (this.closing) {
          // A response that started before the close may have kept its socket alive: close it once idle.
          setImmediate(() => server.closeIdleConnections?.());
        }
        if (t.open.size === 0) t.idle?.();
      };
      res.once('finish', end);
      res.once('close', end);
    };
    if (typeof server.prependListener === 'function') server.prependListener('request', onRequest);
    else server.on('request', onRequest);
    this.servers.push(t);
  }

  /** Waits for `promise` during the in-flight phase of a shutdown. Returns it. */
  track<T>(promise: Promise<T>): Promise<T> {
    const p = promise.then(
      () => {
        this.work.delete(p);
      },
      () => {
        this.work.delete(p);
      },
    );
    this.work.add(p);
    return promise;
  }

  /**
   * Registers drain work to start when the listeners close (stop a queue consumer and wait for its
   * jobs, …); it is awaited with the in-flight requests, within `inFlightTimeoutMs`. Returns a disposer.
   *
   * Upgraded sockets (WebSocket, `CONNECT`) need one: Node's server stays open until they close,
   * and neither `closeIdleConnections()` nor `closeAllConnections()` reaches them. Close them here
   * (with ws: `for (const c of wss.clients) c.close(1001, 'shutting down')`, then wait for them).
   */
  register(name: string, drain: () => Promise<unknown> | unknown): Disposer {
    this.registered.set(name, drain);
    return makeDisposer(() => {
      if (this.registered.get(name) === drain) this.registered.delete(name);
    });
  }

  /** Subscribes to phase changes, hook outcomes and the exit. */
  on(_event: 'change', listener: Listener<ShutdownEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /** Begins the shutdown (idempotent: a second call returns the same promise). */
  begin(signal = 'manual'): Promise<ShutdownResult> {
    if (this.promise !== undefined) return this.promise;
    this.signalName = signal;
    this.promise = new Promise<ShutdownResult>((resolve) => {
      this.resolveResult = resolve;
    });
    const deadlineMs = this.o.deadlineMs ?? 25_000;
    this.deadline = this.clock.setTimeout(
      () => this.force(`deadline of ${deadlineMs} ms passed`),
      deadlineMs,
    );
    this.sequence(signal).catch((error: unknown) => {
      this.log.error(`shutdown: unexpected error: ${error instanceof Error ? error.message : String(error)}`);
      this.finish('error', [String(error)]);
    });
    return this.promise;
  }

  /** Stops listening to signals (for tests, or to hand over to another handler). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.o.signals ?? ['SIGTERM', 'SIGINT']) this.source.off(s, this.signalListener);
  }

  private setPhase(phase: ShutdownPhase): void {
    this._phase = phase;
    this.emitter.emit({ type: 'phase', phase, signal: this.signalName });
  }

  /** A timer of the sequence, cleared by `force()`. */
  private timer(fn: () => void, ms: number): TimerHandle {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: TimerHandle): void {
    this.timers.delete(t);
    this.clock.clearTimeout(t);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms <= 0) resolve();
      else this.timer(resolve, ms);
    });
  }

  /** Resolves true when `p` settles within `ms`, false at the timeout. */
  private within(p: Promise<unknown>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = this.timer(() => resolve(false), ms);
      p.then(
        () => {
          this.clearTimer(t);
          resolve(true);
        },
        () => {
          this.clearTimer(t);
          resolve(true);
        },
      );
    });
  }

  private async sequence(signal: string): Promise<void> {
    const problems: string[] = [];
    const drainDelayMs = this.o.drainDelayMs ?? 5_000;
    this.setPhase('draining');
    this.o.monitor?.setShuttingDown(true);
    this.log.info(
      `shutdown (${signal}): readiness fails now; serving for ${drainDelayMs} ms more while load balancers notice`,
    );
    await this.delay(drainDelayMs);
    if (this.exited) return;

    this.setPhase('closing');
    this.closing = true;
    const closed: Promise<unknown>[] = [];
    let serversOpen = 0;
    for (const t of this.servers) {
      for (const res of t.open) if (!res.headersSent) res.setHeader('connection', 'close');
      serversOpen++;
      closed.push(
        new Promise<void>((resolve) => {
          const done = () => {
            serversOpen--;
            resolve();
          };
          try {
            t.server.close(done);
          } catch {
            done(); // not listening
          }
        }),
      );
      t.server.closeIdleConnections?.();
    }
    this.log.info(
      `shutdown: listeners closed; waiting for ${this.inFlight} in-flight requests and ${this.work.size + this.registered.size} tasks`,
    );

    this.setPhase('waiting');
    const inFlightTimeoutMs = this.o.inFlightTimeoutMs ?? 10_000;
    let drainsRunning = this.registered.size;
    const drains = [...this.registered].map(([name, drain]) =>
      Promise.resolve()
        .then(drain)
        .finally(() => {
          drainsRunning--;
        })
        .catch((error: unknown) => {
          problems.push(`drain "${name}" failed: ${error instanceof Error ? error.message : String(error)}`);
          this.log.error(
            `shutdown: drain "${name}" failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }),
    );
    const requests = this.servers.map(
      (t) =>
        new Promise<void>((resolve) => {
          // No tracked request is in flight: whatever connection is left (one that never sent a
          // request, which Node 20's closeIdleConnections() skips) carries nothing to wait for.
          const done = () => {
            t.idle = undefined;
            setImmediate(() => t.server.closeAllConnections?.());
            resolve();
          };
          if (t.open.size === 0) done();
          else t.idle = done;
        }),
    );
    const all = Promise.all([...requests, ...closed, ...drains, ...this.work]);
    if (!(await this.within(all, inFlightTimeoutMs))) {
      const left: string[] = [];
      if (this.inFlight > 0) left.push(`${this.inFlight} in-flight requests`);
      if (this.work.size > 0) left.push(`${this.work.size} tracked tasks`);
      if (drainsRunning > 0) left.push(`${drainsRunning} registered drains`);
      if (left.length === 0 && serversOpen > 0) {
        left.push(
          `open connections on ${serversOpen} server(s) (upgraded sockets such as WebSockets? close them in a register() drain)`,
        );
      }
      const msg = `${left.length === 0 ? 'work' : left.join(', ')} still running after ${inFlightTimeoutMs} ms; closing their connections`;
      problems.push(msg);
      this.log.warn(`shutdown: ${msg}`);
      for (const t of this.servers) t.server.closeAllConnections?.();
    }
    if (this.exited) return;

    this.setPhase('hooks');
    for (const hook of this.o.hooks ?? []) {
      const timeoutMs = hook.timeoutMs ?? this.o.hookTimeoutMs ?? 5_000;
      const ac = new AbortController();
      const t0 = this.clock.now();
      this.log.info(`shutdown: hook "${hook.name}" started`);
      let failure: unknown;
      const run = Promise.resolve()
        .then(() => hook.run(signal, ac.signal))
        .catch((error: unknown) => {
          failure = error ?? new Error('rejected');
        });
      const inTime = await this.within(run, timeoutMs);
      const took = Math.round(this.clock.now() - t0);
      if (this.exited) return;
      if (!inTime) {
        ac.abort(new ShutdownTimeoutError(`hook "${hook.name}"`, timeoutMs));
        problems.push(`hook "${hook.name}" overran its ${timeoutMs} ms timeout`);
        this.log.warn(
          `shutdown: hook "${hook.name}" overran its ${timeoutMs} ms timeout; abandoned it, going on`,
        );
        this.emitter.emit({ type: 'hook', name: hook.name, outcome: 'timeout', ms: took });
      } else if (failure !== undefined) {
        const m = failure instanceof Error ? failure.message : String(failure);
        problems.push(`hook "${hook.name}" failed: ${m}`);
        this.log.error(`shutdown: hook "${hook.name}" failed after ${took} ms: ${m}`);
        this.emitter.emit({ type: 'hook', name: hook.name, outcome: 'failed', ms: took });
      } else {
        this.log.info(`shutdown: hook "${hook.name}" ended in ${took} ms`);
        this.emitter.emit({ type: 'hook', name: hook.name, outcome: 'ok', ms: took });
      }
    }
    this.finish(problems.length === 0 ? 'clean' : 'error', problems);
  }

  private force(why: string): void {
    if (this.exited) return;
    this.log.error(`shutdown: forced exit: ${why}`);
    // With `exit: false` the process lives on: leave no drain-delay or timeout timer behind, and
    // no listener accepting (the drain delay may not have ended).
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.closing = true;
    for (const t of this.servers) {
      try {
        t.server.close(() => {});
      } catch {
        // not listening
      }
      t.server.closeAllConnections?.();
    }
    this.finish('forced', [why]);
  }

  private finish(outcome: ShutdownResult['outcome'], problems: readonly string[]): void {
    if (this.exited) return;
    this.exited = true;
    if (this.deadline !== undefined) this.clock.clearTimeout(this.deadline);
    const codes: Partial<NonNullable<typeof this.o.exitCode>> = this.o.exitCode ?? {};
    const code =
      outcome === 'clean'
        ? (codes.clean ?? 0)
        : outcome === 'error'
          ? (codes.error ?? 1)
          : (codes.forced ?? 1);
    const result: ShutdownResult = { outcome, code, signal: this.signalName, problems };
    this._phase = 'done';
    this.emitter.emit({ type: 'phase', phase: 'done', signal: this.signalName });
    this.emitter.emit({ type: 'exit', result });
    this.log[outcome === 'clean' ? 'info' : 'warn'](`shutdown: ${outcome}; exiting with code ${code}`);
    this.dispose();
    this.resolveResult?.(result);
    const exit = this.o.exit === undefined ? (c: number) => process.exit(c) : this.o.exit;
    if (exit !== false) exit(code);
  }
}

/**
 * Installs a graceful shutdown: on SIGTERM/SIGINT (or `begin()`), readiness fails at once, the
 * servers keep serving for `drainDelayMs`, then stop accepting and close idle keep-alive sockets;
 * in-flight requests and tracked work get `inFlightTimeoutMs` to finish; `hooks` run in order with
 * their own timeouts; the process exits with `exitCode.clean` (0), `.error` (1: something overran
 * or failed) or `.forced` (1: the `deadlineMs` passed or a second signal came).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { gracefulShutdown } from 'bulwark/health';
 * const server = createServer((_req, res) => res.end('ok')).listen(0, '127.0.0.1');
 * const shutdown = gracefulShutdown({
 *   servers: [server],
 *   drainDelayMs: 10,
 *   hooks: [{ name: 'close pool', run: async () => {}, timeoutMs: 1_000 }],
 *   exit: false, // a test; in a service keep the default, process.exit
 *   logger: false,
 * });
 * const result = await shutdown.begin();
 * console.log(result.outcome, result.code); // clean 0
 * ```
 */
export function gracefulShutdown(options: GracefulShutdownOptions = {}): GracefulShutdown {
  return new GracefulShutdown(options);
}
