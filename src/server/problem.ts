/**
 * RFC 9457 problem details: every error the admin API returns is `application/problem+json`
 * with a `type`, `title`, `status`, `detail` and, for bad input, the dotted `field` at fault.
 */
import type { ServerResponse } from 'node:http';
import { BulwarkError, ConfigError } from '../core/errors.js';

/** The body of a problem response. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** For bad input: the dotted path of the offending field, e.g. `body.input.limit`. */
  readonly field?: string;
  /** For bad input: the rule the field broke. */
  readonly rule?: string;
  readonly [extra: string]: unknown;
}

/**
 * An HTTP error with its problem body. Handlers throw it; the control plane answers it.
 *
 * @example
 * ```ts
 * import { HttpProblem } from 'bulwark/server';
 * throw new HttpProblem(404, 'Not found', 'No circuitBreaker named "payments"');
 * ```
 */
export class HttpProblem extends BulwarkError {
  readonly status: number;
  readonly title: string;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(
    status: number,
    title: string,
    detail: string,
    extra: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(`HTTP_${status}`, detail, { cause });
    this.status = status;
    this.title = title;
    this.extra = extra;
  }

  /** The problem body. */
  body(): ProblemBody {
    return {
      type: `https://bulwark.dev/problems/${this.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
      title: this.title,
      status: this.status,
      detail: this.message,
      ...this.extra,
    };
  }
}

/** Turns any thrown value into an HttpProblem: ConfigError → 400 naming the field; others → 500. */
export function toProblem(error: unknown, fieldPrefix = ''): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof ConfigError) {
    const field = fieldPrefix === '' ? error.option : `${fieldPrefix}${error.option}`;
    return new HttpProblem(400, 'Invalid request', error.message, {
      field,
      rule: error.rule,
      ...(error.suggestion !== undefined ? { suggestion: error.suggestion } : {}),
    });
  }
  if (error instanceof BulwarkError) {
    return new HttpProblem(409, 'Operation refused', error.message, { code: error.code }, error);
  }
  return new HttpProblem(
    500,
    'Internal error',
    'The operation failed unexpectedly; see the server log',
    {},
    error,
  );
}

/** Writes `problem` to `res` (no-op when headers were already sent). */
export function sendProblem(
  res: ServerResponse,
  problem: HttpProblem,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problem.body());
  res.writeHead(problem.status, {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}
