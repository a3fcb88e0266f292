/**
 * Structured logs of the events of a registry's components — every state change (a breaker
 * opening, a health check failing, an alert firing, an SLO burning) and the other events you ask
 * for — through pino (an optional peer: pass a logger, or one is made on first use), with
 * secrets scrubbed from everything logged. Nothing here knows a component kind: a line is made
 * from the event's `kind`, `name`, `event` and its other fields.
 */

import { type Clock, systemClock } from '../core/clock.js';
import { clockSchema, duck, ms, registrySchema } from '../core/common-schemas.js';
import type { ComponentEvent } from '../core/component.js';
import { type Disposer, reportError } from '../core/events.js';
import { defaultRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';

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

/** A log level. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Options of `createLogs()`. */
export interface LogsOptions {
  /** A pino (or pino-like) logger. Default: pino made on first use with `REDACT_PATHS`. */
  logger?: LoggerLike;
  /** Where the pino made by default writes (a stream with `write`). Default stdout. */
  destination?: { write(chunk: string): unknown };
  /**
   * Whose events to log: every component of this registry (now and later). Default
   * `defaultRegistry`; `false` for none (only `log()`).
   */
  registry?: Registry | false;
  /**
   * The events logged, by event name: a level, or a level and a throttle (at most one line per
   * component and event name per `throttleMs`; the next line counts those left out in
   * `suppressed`). An event may carry its own `level` (`info`, `warn`, `error`), which wins.
   * Default `{ stateChange: 'info', alert: 'warn' }`: every state change of every component and
   * every alert transition, nothing per call. Add e.g. `{ reject: { level: 'warn', throttleMs: 10_000 } }`.
   */
  events?: Readonly<Record<string, LogLevel | { level: LogLevel; throttleMs: number }>>;
  /** Clock of the throttling. Default `systemClock`. */
  clock?: Clock;
}

const LEVELS = ['info', 'warn', 'error'] as const;
const optionsSchema = s.object({
  logger: s.optional(
    duck<LoggerLike>('a logger with info(), warn() and error() (e.g. pino)', ['info', 'warn', 'error']),
  ),
  destination: s.optional(duck<{ write(chunk: string): unknown }>('a stream with write()', ['write'])),
  registry: s.optional(s.union([s.oneOf([false]), registrySchema], 'a Registry, or false')),
  events: s.optional(
    s.record(s.union([s.oneOf(LEVELS), s.object({ level: s.oneOf(LEVELS), throttleMs: ms })])),
  ),
  clock: s.optional(clockSchema),
});

const DEFAULT_EVENTS: Readonly<Record<string, LogLevel>> = { stateChange: 'info', alert: 'warn' };

/** Fields of an event that are not logged as details (they make the line's message). */
const OWN = new Set(['kind', 'name', 'event', 'level']);

/**
 * Structured logs of Bulwark's components. Subscribes to a registry's events and logs the ones
 * named in `events` (state changes by default), scrubbed.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createLogs } from 'bulwark/metrics';
 * const logs = createLogs({ registry: createRegistry() });
 * // later
 * logs.close();
 * ```
 */
export class BulwarkLogs {
  private logger: LoggerLike | null;
  private loading: Promise<LoggerLike> | null = null;
  private readonly queue: [LogLevel, object, string][] = [];
  private readonly clock: Clock;
  private readonly levels: Readonly<Record<string, { level: LogLevel; throttleMs: number }>>;
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly disposers: Disposer[] = [];
  private readonly destination: LogsOptions['destination'];

  constructor(options: LogsOptions = {}) {
    const o = optionsSchema.parse(options, 'createLogs');
    this.logger = o.logger ?? null;
    this.destination = o.destination;
    this.clock = o.clock ?? systemClock;
    const levels: Record<string, { level: LogLevel; throttleMs: number }> = {};
    for (const [event, v] of Object.entries(o.events ?? DEFAULT_EVENTS))
      levels[event] = typeof v === 'string' ? { level: v, throttleMs: 0 } : v;
    this.levels = levels;
    const registry = o.registry === undefined ? defaultRegistry : o.registry;
    if (registry !== false) this.disposers.push(registry.onEvent((e) => this.event(e)));
  }

  /** Logs `obj` (scrubbed) with `msg`. */
  log(level: LogLevel, obj: object, msg: string): void {
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

  /**
   * Logs one component event when its name is in `events` (the registry's events come here).
   *
   * @example
   * ```ts
   * import { createLogs } from 'bulwark/metrics';
   * const lines: object[] = [];
   * const push = (o: object) => { lines.push(o); };
   * const logs = createLogs({ registry: false, logger: { info: push, warn: push, error: push } });
   * logs.event({ kind: 'circuitBreaker', name: 'db', event: 'stateChange', from: 'closed', to: 'open' } as never);
   * console.log(lines); // [ { event: 'bulwark.circuitBreaker.stateChange', kind: 'circuitBreaker', name: 'db', from: 'closed', to: 'open' } ]
   * ```
   */
  event(e: ComponentEvent): void {
    const configured = this.levels[e.event];
    if (configured === undefined) return;
    const own = (e as { level?: unknown }).level;
    const level: LogLevel = own === 'info' || own === 'warn' || own === 'error' ? own : configured.level;
    let suppressed: number | undefined;
    if (configured.throttleMs > 0) {
      const key = `${e.kind}\u0000${e.name}\u0000${e.event}`;
      const now = this.clock.now();
      const last = this.last.get(key);
      if (last !== undefined && now - last.at < configured.throttleMs) {
        last.suppressed++;
        return;
      }
      this.last.set(key, { at: now, suppressed: 0 });
      suppressed = last?.suppressed ?? 0;
    }
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!OWN.has(k) && v !== undefined) details[k] = v;
    const from = details.from;
    const to = details.to;
    const change = from !== undefined || to !== undefined ? `: ${String(from)} → ${String(to)}` : '';
    this.log(
      level,
      {
        event: `bulwark.${e.kind}.${e.event}`,
        kind: e.kind,
        name: e.name,
        ...details,
        ...(suppressed === undefined || suppressed === 0 ? {} : { suppressed }),
      },
      `${e.kind} ${e.name} ${e.event}${change}`,
    );
  }

  private write(logger: LoggerLike, level: LogLevel, obj: object, msg: string): void {
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
        this.logger = mod.default(
          { name: 'bulwark', redact: { paths: [...REDACT_PATHS], censor: REDACTED } },
          this.destination,
        );
      } catch (error) {
        reportError('Loading pino for bulwark/metrics logs (npm install pino, or pass { logger })', error);
        this.logger = {
          info: (o, m) => console.info(m, o),
          warn: (o, m) => console.warn(m, o),
          error: (o, m) => console.error(m, o),
        };
      }
      const logger = this.logger;
      for (const [level, obj, msg] of this.queue.splice(0)) this.write(logger, level, obj, msg);
      return logger;
    })();
  }

  /** Stops logging the registry's events. */
  close(): void {
    for (const d of this.disposers.splice(0)) d();
  }
}

/**
 * Makes the structured logs of a registry's components: every state change at `info` (or the
 * level the event carries), other events when named in `events`.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createLogs } from 'bulwark/metrics';
 * const lines: object[] = [];
 * const push = (o: object) => { lines.push(o); };
 * const logs = createLogs({ registry: createRegistry(), logger: { info: push, warn: push, error: push } });
 * logs.log('info', { password: 'hunter2' }, 'hello');
 * console.log(lines); // [ { password: '[REDACTED]' } ]
 * ```
 */
export function createLogs(options: LogsOptions = {}): BulwarkLogs {
  return new BulwarkLogs(options);
}
