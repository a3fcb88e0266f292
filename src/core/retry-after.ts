/**
 * Reading a server's `Retry-After` (seconds or an HTTP date) from a Response-like result
 * or from an error.
 */

/** Parses a Retry-After header value into ms from `nowEpochMs`; undefined when absent or invalid. */
export function parseRetryAfter(value: unknown, nowEpochMs: number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  // An HTTP date always has a time of day; without one, Date.parse's leniency would turn
  // garbage such as "x 2030" into a date years away.
  if (!/\d\d:\d\d:\d\d/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowEpochMs);
}

function headerOf(headers: unknown): unknown {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const h = headers as { get?: (name: string) => unknown } & Record<string, unknown>;
  if (typeof h.get === 'function') return h.get('retry-after') ?? undefined;
  return h['retry-after'] ?? h['Retry-After'];
}

/**
 * The delay a failure asks for, in ms, or undefined. Looks at, in order: an error's
 * `retryAfterMs` (Bulwark's own errors), a Response-like value's `retry-after` header, and an
 * error's `headers` / `response.headers`.
 */
export function retryAfterOf(outcome: unknown, nowEpochMs: number): number | undefined {
  if (typeof outcome !== 'object' || outcome === null) return undefined;
  const o = outcome as { retryAfterMs?: unknown; headers?: unknown; response?: { headers?: unknown } | null };
  if (typeof o.retryAfterMs === 'number' && o.retryAfterMs >= 0 && Number.isFinite(o.retryAfterMs)) {
    return o.retryAfterMs;
  }
  const direct = parseRetryAfter(headerOf(o.headers), nowEpochMs);
  if (direct !== undefined) return direct;
  const r = o.response;
  if (typeof r === 'object' && r !== null) return parseRetryAfter(headerOf(r.headers), nowEpochMs);
  return undefined;
}
