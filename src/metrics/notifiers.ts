/**
 * Alert notifiers: to the structured log, and to a webhook (POST JSON in Alertmanager's webhook
 * shape), delivered through Bulwark's own `retry` (exponential backoff) and `timeout`.
 */

import { backoff } from '../core/backoff.js';
import { type Clock, systemClock } from '../core/clock.js';
import { clockSchema, duck, ms, positiveMs, stringMap } from '../core/common-schemas.js';
import { BulwarkError, nonRetryable } from '../core/errors.js';
import { type Policy, pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { s } from '../core/schema.js';
import { timeout } from '../core/timeout.js';
import { type BulwarkLogs, createLogs, type LoggerLike } from './logs.js';
import type { Alert, AlertNotification, Notifier } from './manager.js';

const logNotifierSchema = s.object({
  logs: s.optional(duck<BulwarkLogs>('logs made by createLogs()', ['log'])),
  logger: s.optional(
    duck<LoggerLike>('a logger with info(), warn() and error() (e.g. pino)', ['info', 'warn', 'error']),
  ),
});

/**
 * A notifier that writes each firing/resolved notification to the structured log.
 *
 * @example
 * ```ts
 * import { logNotifier } from 'bulwark/metrics';
 * const lines: object[] = [];
 * const push = (o: object) => { lines.push(o); };
 * const notifier = logNotifier({ logger: { info: push, warn: push, error: push } });
 * ```
 */
export function logNotifier(options: { logs?: BulwarkLogs; logger?: LoggerLike } = {}): Notifier {
  logNotifierSchema.parse(options, 'logNotifier');
  const logs =
    options.logs ??
    createLogs({ registry: false, ...(options.logger !== undefined ? { logger: options.logger } : {}) });
  return {
    notify(n: AlertNotification): void {
      const a = n.alert;
      logs.log(
        n.status === 'firing' ? (a.severity === 'critical' ? 'error' : 'warn') : 'info',
        {
          event: 'bulwark.alert.notification',
          status: n.status,
          alert: a.rule,
          severity: a.severity,
          labels: a.labels,
          annotations: a.annotations,
          value: a.value,
        },
        `[${n.status.toUpperCase()}] ${a.rule}${a.annotations.summary !== undefined ? `: ${a.annotations.summary}` : ''}`,
      );
    },
  };
}

/**
 * A webhook answered with a status other than 2xx. 4xx answers (but 408 and 429) are not retried.
 *
 * @example
 * ```ts
 * import { WebhookError } from 'bulwark/metrics';
 * const err = new WebhookError('https://hooks.example/x', 503);
 * console.log(err.code, err.status); // WEBHOOK_FAILED 503
 * ```
 */
export class WebhookError extends BulwarkError {
  /** The HTTP status received. */
  readonly status: number;
  constructor(url: string, status: number) {
    super(
      'WEBHOOK_FAILED',
      `The alert webhook ${safeUrl(url)} answered ${status}; check the receiver (its logs, the URL and its credentials)`,
    );
    this.status = status;
  }
}

/** The URL without credentials or query (for messages). */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}

/** Options of `webhookNotifier()`. */
export interface WebhookOptions {
  /** Where to POST. */
  url: string;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Delivery attempts in all. Default 5. */
  maxAttempts?: number;
  /** First retry delay, ms (doubling, full jitter). Default 500. */
  initialDelayMs?: number;
  /** Largest retry delay, ms. Default 30 000. */
  maxDelayMs?: number;
  /** Per-attempt timeout, ms. Default 10 000. */
  timeoutMs?: number;
  /** Clock for the backoff and the timeout. Default `systemClock`. */
  clock?: Clock;
  /** The fetch to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Builds the JSON body. Default: Alertmanager's webhook shape (`version: '4'`). */
  body?: (n: AlertNotification, at: { wallMs: (clockMs: number) => number }) => unknown;
}

const schema = s.object({
  url: s.custom<string>('an http(s) URL', (v, path) => {
    if (typeof v === 'string' && /^https?:\/\//i.test(v) && URL.canParse(v)) return v;
    return s.fail(path, 'an http(s) URL', v);
  }),
  headers: s.optional(stringMap),
  maxAttempts: s.optional(s.int({ min: 1, max: 100 })),
  initialDelayMs: s.optional(ms),
  maxDelayMs: s.optional(ms),
  timeoutMs: s.optional(positiveMs),
  clock: s.optional(clockSchema),
  fetch: s.optional(s.fn<typeof fetch>()),
  body: s.optional(s.fn<NonNullable<WebhookOptions['body']>>()),
});

/** Alertmanager's webhook payload for one notification. */
function alertmanagerBody(n: AlertNotification, at: { wallMs: (clockMs: number) => number }): unknown {
  const a: Alert = n.alert;
  const iso = (ms: number | undefined) =>
    ms === undefined ? '0001-01-01T00:00:00Z' : new Date(at.wallMs(ms)).toISOString();
  return {
    version: '4',
    status: n.status,
    receiver: 'bulwark',
    groupLabels: { alertname: a.rule },
    commonLabels: a.labels,
    commonAnnotations: a.annotations,
    alerts: [
      {
        status: n.status,
        labels: a.labels,
        annotations: a.annotations,
        startsAt: iso(a.firedAt ?? a.activeAt),
        endsAt: iso(a.resolvedAt),
        value: a.value,
      },
    ],
  };
}

/**
 * A notifier that POSTs each notification as JSON to a webhook, retried with exponential backoff
 * (full jitter) under a per-attempt timeout — Bulwark's own `retry` and `timeout`.
 *
 * @example
 * ```ts
 * import { webhookNotifier } from 'bulwark/metrics';
 * const notifier = webhookNotifier({ url: 'https://hooks.example/alerts', maxAttempts: 5, timeoutMs: 5_000 });
 * ```
 */
export function webhookNotifier(options: WebhookOptions): Notifier & { readonly policy: Policy } {
  const o = schema.parse(options, 'webhookNotifier');
  const clock = o.clock ?? systemClock;
  const doFetch = o.fetch ?? globalThis.fetch;
  const build = o.body ?? alertmanagerBody;
  const policy = pipeline(
    retry({
      maxAttempts: o.maxAttempts ?? 5,
      backoff: backoff.exponential({ initialMs: o.initialDelayMs ?? 500, maxMs: o.maxDelayMs ?? 30_000 }),
      clock,
      name: 'webhook',
    }),
    timeout({ timeoutMs: o.timeoutMs ?? 10_000, clock, name: 'webhook' }),
  );
  const wallMs = (clockMs: number) => clock.date() - (clock.now() - clockMs);
  return {
    policy,
    async notify(n: AlertNotification): Promise<void> {
      const body = JSON.stringify(build(n, { wallMs }));
      await policy.execute(async ({ signal }) => {
        const res = await doFetch(o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...o.headers },
          body,
          signal,
        });
        // Free the connection: the body is not needed.
        await res.body?.cancel().catch(() => {});
        if (res.ok) return;
        const err = new WebhookError(o.url, res.status);
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429)
          throw nonRetryable(err);
        throw err;
      });
    },
  };
}
