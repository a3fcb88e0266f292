/**
 * Structured logs of state changes — breaker opening and closing, a bulkhead filling up, a retry
 * giving up, health changes, alert transitions — through pino (an optional peer: pass a logger,
 * or one is made on first use), with secrets scrubbed from everything logged.
 */

import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import {
  type BulkheadEvent,
  type CircuitBreakerEvent,
  type Disposer,
  makeDisposer,
  type PolicyEvent,
  type RetryEvent,
  reportError,
} from '../core/events.js';
import type { Policy } from '../core/policy.js';
import type { AlertManager, AlertTransition } from './alerts.js';
import type { HealthLike, Metrics } from './sink.js';

/**
 * The part of a pino logger used (any logger with these methods works).
 *
 * @example
 * ```ts
 * import { pino } from 'pino';
 * import { createLogs, type LoggerLike } from 'bulwark/metrics';
 * const logger: LoggerLike = pino();
 * createLogs({ logger });
 * ```
 */
export interface LoggerLike {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Field names whose values are always replaced by `[REDACTED]` (case-insensitive, `-`/`_` ignored).
 * Names containing one of `SECRET_KEY_PARTS` are redacted too (see `isSecretKey()`).
 *
 * @example
 * ```ts
 * import { SECRET_KEYS } from 'bulwark/metrics';
 * console.log(SECRET_KEYS.includes('apikey')); // true (names are compared lower-case, without - and _)
 * ```
 */
export const SECRET_KEYS: readonly string[] = [
  'password',
  'passwd',
  'pwd',
  'pass',
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'apikey',
  'xapikey',
  'secret',
  'clientsecret',
  'privatekey',
  'credentials',
];

/**
 * pino `redact` paths for the same fields (used when Bulwark makes the pino logger).
 *
 * @example
 * ```ts
 * import { pino } from 'pino';
 * import { REDACT_PATHS } from 'bulwark/metrics';
 * const logger = pino({ redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' } });
 * ```
 */
export const REDACT_PATHS: readonly string[] = [
  'password',
  'token',
  'apiKey',
  'secret',
  'authorization',
  'cookie',
  'connectionString',
  '*.password',
  '*.token',
  '*.apiKey',
  '*.secret',
  '*.authorization',
  '*.cookie',
  '*.connectionString',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/**
 * Parts of field names that mark a secret: a field whose name (lower-cased, without `-`, `_`,
 * `.` and spaces) contains one is redacted — `dbPassword`, `X-Auth-Token`,
 * `AWS_SECRET_ACCESS_KEY`, `sessionId`, … (`author` is not a secret).
 *
 * @example
 * ```ts
 * import { SECRET_KEY_PARTS } from 'bulwark/metrics';
 * console.log(SECRET_KEY_PARTS.includes('token')); // true
 * ```
 */
export const SECRET_KEY_PARTS: readonly string[] = [
  'password',
  'passwd',
  'secret',
  'token',
  'apikey',
  'auth',
  'cookie',
  'credential',
  'privatekey',
  'sessionid',
];

const REDACTED = '[REDACTED]';
const norm = (k: string) => k.toLowerCase().replace(/[-_.\s]/g, '');
const SECRET_SET = new Set(SECRET_KEYS);
/** Names that contain a part but are not secrets. */
const NOT_SECRET = new Set(['author', 'authors', 'authored', 'authority']);

/**
 * Whether a field of this name holds a secret (its value is redacted): one of `SECRET_KEYS`, or
 * a name containing one of `SECRET_KEY_PARTS`.
 *
 * @example
 * ```ts
 * import { isSecretKey } from 'bulwark/metrics';
 * console.log(isSecretKey('dbPassword'), isSecretKey('X-Auth-Token'), isSecretKey('user')); // true true false
 * ```
 */
export function isSecretKey(name: string): boolean {
  const k = norm(name);
  if (SECRET_SET.has(k)) return true;
  if (NOT_SECRET.has(k)) return false;
  for (const part of SECRET_KEY_PARTS) if (k.includes(part)) return true;
  return false;
}

/** Secret words in `key=value` text (the key may carry prefixes and suffixes: `DB_PASSWORD`). */
const SECRET_WORDS =
  'password|passwd|pwd|secret|token|api[-_]?key|authorization|credentials?|private[-_]?key|session[-_]?id|cookie';
/** `"…secret…": "value"` (JSON text inside a message). */
const JSON_PAIR = new RegExp(
  `("[^"\\\\]{0,64}?(?:${SECRET_WORDS})[^"\\\\]{0,64}"\\s*:\\s*)("(?:[^"\\\\]|\\\\.)*"|[^,}\\]\\s]+)`,
  'gi',
);
/** `key=value` / `key: value`, the key a word (`_` and `-` join words) containing a secret word. */
const KEY_PAIR = new RegExp(
  `(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{0,40}?(?:${SECRET_WORDS})[A-Za-z0-9_-]{0,40})(\\s*[=:]\\s*)((?:bearer|basic)\\s+[A-Za-z0-9._~+/=-]+|"[^"]*"|'[^']*'|[^;&,\\s]+)`,
  'gi',
);

/**
 * Scrubs credentials from a string: `scheme://user:password@` → `scheme://user:[REDACTED]@`,
 * `password=…` / `DB_PASSWORD=…` / `apiKey: …` pairs, JSON pairs (`{"password":"…"}`), and
 * `Bearer …` / `Basic …` tokens.
 *
 * @example
 * ```ts
 * import { scrubString } from 'bulwark/metrics';
 * console.log(scrubString('connect postgres://app:s3cret@db:5432/x failed'));
 * // connect postgres://app:[REDACTED]@db:5432/x failed
 * ```
 */
export function scrubString(s: string): string {
  return (
    s
      // Bounded scheme, anchored at a word start: linear on long runs of letters.
      .replace(/(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}:\/\/[^:/?#@\s]*):[^@/\s]*@/gi, `$1:${REDACTED}@`)
      .replace(JSON_PAIR, `$1"${REDACTED}"`)
      .replace(KEY_PAIR, (m, key: string, sep: string) =>
        // A JSON pair already redacted (`"token": "[REDACTED]"` has no key=value left to scrub).
        m.endsWith(`"${REDACTED}"`) ? m : `${key}${sep}${REDACTED}`,
      )
      .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`)
  );
}

/**
 * Returns a copy of `value` safe to log: secret fields (see `SECRET_KEYS`) replaced, credentials
 * scrubbed from every string, errors turned into `{ type, message, code, stack, cause }`.
 * Cycles and depth beyond 8 are cut.
 *
 * @example
 * ```ts
 * import { scrubSecrets } from 'bulwark/metrics';
 * console.log(scrubSecrets({ user: 'a', password: 'p', headers: { Authorization: 'Bearer x' } }));
 * // { user: 'a', password: '[REDACTED]', headers: { Authorization: '[REDACTED]' } }
 * ```
 */
export function scrubSecrets(value: unknown): unknown {
  const seen = new WeakSet<object>();
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return scrubString(v);
    if (typeof v !== 'object' || v === null) return typeof v === 'function' ? '[Function]' : v;
    if (seen.has(v)) return '[Circular]';
    if (depth > 8) return '[Truncated]';
    seen.add(v);
    if (v instanceof Error) {
      const e = v as Error & { code?: unknown; cause?: unknown };
      const out: Record<string, unknown> = { type: e.name, message: scrubString(e.message) };
      if (e.code !== undefined) out.code = walk(e.code, depth + 1);
      if (typeof e.stack === 'string') out.stack = scrubString(e.stack);
      for (const k of Object.keys(e)) {
        if (k === 'code' || k === 'cause' || k === 'message' || k === 'stack') continue;
        out[k] = isSecretKey(k) ? REDACTED : walk((e as unknown as Record<string, unknown>)[k], depth + 1);
      }
      if (e.cause !== undefined) out.cause = walk(e.cause, depth + 1);
      return out;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    if (v instanceof Date) return v.toISOString();
    if (ArrayBuffer.isView(v)) return `[${v.constructor.name} ${v.byteLength} bytes]`;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = isSecretKey(k) ? REDACTED : walk(x, depth + 1);
    return out;
  };
  return walk(value, 0);
}

/** Options of `createLogs()`. */
export interface LogsOptions {
  /** A pino (or pino-like) logger. Default: pino made on first use with `REDACT_PATHS`. */
  logger?: LoggerLike;
  /** Where the pino made by default writes (a stream with `write`). Default stdout. */
  destination?: { write(chunk: string): unknown };
  /** Attach to every policy tracked by this sink (now and later). */
  metrics?: Metrics;
  /** Clock for throttling and health polling. Default `systemClock`. */
  clock?: Clock;
  /** At most one "bulkhead full" line per bulkhead per this many ms. Default 10 000. */
  bulkheadFullEveryMs?: number;
}

type Level = 'info' | 'warn' | 'error';

/**
 * Structured logs of Bulwark's state changes. Subscribes to the events it logs only (breaker
 * `stateChange`, bulkhead `reject`, retry `giveUp`), so per-call events stay off.
 *
 * @example
 * ```ts
 * import { createLogs, createMetrics } from 'bulwark/metrics';
 * const logs = createLogs({ metrics: createMetrics() });
 * // later
 * logs.close();
 * ```
 */
export class BulwarkLogs {
  private logger: LoggerLike | null;
  private loading: Promise<LoggerLike> | null = null;
  private readonly queue: [Level, object, string][] = [];
  private readonly clock: Clock;
  private readonly fullEvery: number;
  private readonly lastFull = new Map<string, { at: number; suppressed: number }>();
  private readonly attached = new WeakSet<object>();
  private readonly disposers: Disposer[] = [];
  private readonly destination: LogsOptions['destination'];

  constructor(options: LogsOptions = {}) {
    this.logger = options.logger ?? null;
    if (this.logger !== null && typeof this.logger.info !== 'function')
      throw new TypeError('createLogs.logger must have info(), warn() and error() (e.g. a pino logger)');
    this.destination = options.destination;
    this.clock = options.clock ?? systemClock;
    this.fullEvery = options.bulkheadFullEveryMs ?? 10_000;
    if (options.metrics !== undefined) {
      this.disposers.push(options.metrics.onTrack((p) => this.attach(p as unknown as Policy)));
    }
  }

  /** Logs `obj` (scrubbed) with `msg`. */
  log(level: Level, obj: object, msg: string): void {
    const safe = scrubSecrets(obj) as object;
    const text = scrubString(msg);
    if (this.logger !== null) {
      this.write(this.logger, level, safe, text);
      return;
    }
    this.queue.push([level, safe, text]);
    this.load();
  }

  /** Resolves once every line logged so far has been handed to the logger. */
  async flush(): Promise<void> {
    if (this.loading !== null) await this.loading;
  }

  private write(logger: LoggerLike, level: Level, obj: object, msg: string): void {
    try {
      logger[level](obj, msg);
    } catch (error) {
      reportError('A Bulwark logger', error);
    }
  }

  private load(): void {
    if (this.loading !== null) return;
    this.loading = (async () => {
      try {
        const mod = (await import('pino')) as unknown as {
          default: (opts: object, dest?: unknown) => LoggerLike;
        };
        const logger = mod.default(
          { name: 'bulwark', redact: { paths: [...REDACT_PATHS], censor: REDACTED } },
          this.destination,
        );
        this.logger = logger;
      } catch (error) {
        reportError('Loading pino for bulwark/metrics logs (npm install pino, or pass { logger })', error);
        const fallback: LoggerLike = {
          info: (o, m) => console.info(m, o),
          warn: (o, m) => console.warn(m, o),
          error: (o, m) => console.error(m, o),
        };
        this.logger = fallback;
      }
      const logger = this.logger!;
      for (const [level, obj, msg] of this.queue.splice(0)) this.write(logger, level, obj, msg);
      return logger;
    })();
  }

  /**
   * Logs the state changes of `policy` (or of every policy of a pipeline). Returns a disposer.
   *
   * @example
   * ```ts
   * import { circuitBreaker } from 'bulwark';
   * import { createLogs } from 'bulwark/metrics';
   * const lines: unknown[] = [];
   * const logs = createLogs({ logger: { info: (o) => lines.push(o), warn: (o) => lines.push(o), error: (o) => lines.push(o) } });
   * const breaker = circuitBreaker();
   * logs.attach(breaker);
   * breaker.isolate();
   * console.log(lines.length); // 1
   * ```
   */
  attach(policy: Policy | { readonly kind?: string; readonly name: string }): Disposer {
    const p = policy as unknown as {
      kind?: string;
      policies?: readonly unknown[];
      emitter?: { on(l: (e: PolicyEvent) => void, only?: readonly string[]): Disposer };
    };
    if (p.kind === 'pipeline' && Array.isArray(p.policies)) {
      const ds = p.policies.map((x) => this.attach(x as Policy));
      return makeDisposer(() => {
        for (const d of ds) d();
      });
    }
    if (this.attached.has(policy) || p.emitter === undefined) return makeDisposer(() => {});
    const only =
      p.kind === 'circuitBreaker'
        ? ['stateChange']
        : p.kind === 'bulkhead'
          ? ['reject']
          : p.kind === 'retry'
            ? ['giveUp']
            : null;
    if (only === null) return makeDisposer(() => {});
    this.attached.add(policy);
    const d = p.emitter.on((e) => this.onEvent(e), only);
    this.disposers.push(d);
    return makeDisposer(() => {
      this.attached.delete(policy);
      d();
    });
  }

  private onEvent(e: PolicyEvent): void {
    const base = { policy: e.kind, name: e.name, priority: e.priority, operation: e.operation };
    if (e.kind === 'circuitBreaker' && e.event === 'stateChange') {
      const c = e as Extract<CircuitBreakerEvent, { event: 'stateChange' }>;
      const bad = c.to === 'open' || c.to === 'forced-open' || c.to === 'isolated';
      this.log(
        bad ? 'warn' : 'info',
        {
          event: 'bulwark.circuit.stateChange',
          ...base,
          from: c.from,
          to: c.to,
          reason: c.reason,
          breakMs: c.breakMs,
        },
        `circuit breaker ${c.name}: ${c.from} → ${c.to}${c.reason !== undefined ? ` (${c.reason})` : ''}`,
      );
    } else if (e.kind === 'bulkhead' && e.event === 'reject') {
      const b = e as Extract<BulkheadEvent, { event: 'reject' }>;
      const now = this.clock.now();
      const last = this.lastFull.get(b.name);
      if (last !== undefined && now - last.at < this.fullEvery) {
        last.suppressed++;
        return;
      }
      this.lastFull.set(b.name, { at: now, suppressed: 0 });
      this.log(
        'warn',
        {
          event: 'bulwark.bulkhead.full',
          ...base,
          reason: b.reason,
          inFlight: b.inFlight,
          queued: b.queued,
          suppressed: last?.suppressed ?? 0,
        },
        `bulkhead ${b.name} rejected a call (${b.reason}; ${b.inFlight} in flight, ${b.queued} queued)`,
      );
    } else if (e.kind === 'retry' && e.event === 'giveUp') {
      const r = e as Extract<RetryEvent, { event: 'giveUp' }>;
      this.log(
        'warn',
        {
          event: 'bulwark.retry.giveUp',
          ...base,
          attempt: r.attempt,
          reason: r.reason,
          err: r.error,
          result: r.result,
        },
        `retry ${r.name} gave up after ${r.attempt} attempt(s) (${r.reason})`,
      );
    }
  }

  /** Logs every transition of an alert manager. Returns a disposer. */
  alerts(manager: AlertManager): Disposer {
    const d = manager.onTransition((t) => this.alertTransition(t));
    this.disposers.push(d);
    return d;
  }

  /** Logs one alert transition. */
  alertTransition(t: AlertTransition): void {
    const a = t.alert;
    const level: Level = t.to === 'firing' ? (a.severity === 'critical' ? 'error' : 'warn') : 'info';
    this.log(
      level,
      {
        event: 'bulwark.alert',
        alert: a.rule,
        from: t.from,
        to: t.to,
        severity: a.severity,
        labels: a.labels,
        annotations: a.annotations,
        value: a.value,
      },
      `alert ${a.rule}: ${t.from} → ${t.to}${a.annotations.summary !== undefined ? ` — ${a.annotations.summary}` : ''}`,
    );
  }

  /**
   * Polls a health monitor every `intervalMs` (default 5 000) and logs changes: readiness,
   * shutdown, and each check's status. Returns a disposer.
   */
  health(monitor: HealthLike, intervalMs = 5_000): Disposer {
    let prev: ReturnType<HealthLike['snapshot']> | null = null;
    let timer: TimerHandle | null = null;
    let stopped = false;
    const poll = () => {
      try {
        const next = monitor.snapshot();
        if (prev !== null) this.healthChanged(prev, next);
        prev = next;
      } catch (error) {
        reportError('A health monitor’s snapshot()', error);
      }
      if (stopped) return;
      timer = this.clock.setTimeout(poll, intervalMs);
      timer.unref();
    };
    poll();
    const d = makeDisposer(() => {
      stopped = true;
      if (timer !== null) this.clock.clearTimeout(timer);
    });
    this.disposers.push(d);
    return d;
  }

  /** Logs the differences between two health snapshots. */
  healthChanged(prev: ReturnType<HealthLike['snapshot']>, next: ReturnType<HealthLike['snapshot']>): void {
    if (prev.ready !== next.ready)
      this.log(
        next.ready || next.shuttingDown ? 'info' : 'warn',
        { event: 'bulwark.health.ready', ready: next.ready, shuttingDown: next.shuttingDown },
        `readiness: ${prev.ready} → ${next.ready}`,
      );
    if (prev.shuttingDown !== next.shuttingDown)
      this.log(
        'info',
        { event: 'bulwark.health.shutdown', shuttingDown: next.shuttingDown },
        `shutting down: ${next.shuttingDown}`,
      );
    const before = new Map(prev.checks.map((c) => [c.name, c.status]));
    for (const c of next.checks) {
      const was = before.get(c.name);
      if (was === c.status) continue;
      const level: Level =
        c.status === 'fail' ? (c.critical ? 'error' : 'warn') : c.status === 'warn' ? 'warn' : 'info';
      this.log(
        level,
        {
          event: 'bulwark.health.check',
          check: c.name,
          from: was ?? null,
          to: c.status,
          critical: c.critical,
        },
        `health check ${c.name}: ${was ?? 'new'} → ${c.status}`,
      );
    }
  }

  /** Detaches from everything. */
  close(): void {
    for (const d of this.disposers.splice(0)) d();
  }
}

/**
 * Makes the structured logs. Pass `metrics` to log every tracked policy's state changes.
 *
 * @example
 * ```ts
 * import { createLogs, createMetrics } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const lines: object[] = [];
 * const logger = { info: (o: object) => lines.push(o), warn: (o: object) => lines.push(o), error: (o: object) => lines.push(o) };
 * const logs = createLogs({ metrics, logger });
 * logs.log('info', { password: 'hunter2' }, 'hello');
 * console.log(lines); // [ { password: '[REDACTED]' } ]
 * ```
 */
export function createLogs(options: LogsOptions = {}): BulwarkLogs {
  return new BulwarkLogs(options);
}
