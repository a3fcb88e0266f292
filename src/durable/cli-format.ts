/**
 * How the `bulwark queue` CLI shows things: aligned tables for people; for `--json`, plain JSON
 * with ISO times (epoch ms beside them as `…Ms`), the last error as an object, and errors as
 * `{ error: { code, message, … } }`.
 * @module
 */

import { parseError } from './failures.js';
import type { ItemView } from './job.js';

/** Where a command writes. @internal */
export interface CliIoLike {
  out(text: string): void;
  err(text: string): void;
}

/** Renders rows as an aligned text table. @internal */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** An epoch-ms time as ISO 8601 ('' for null). @internal */
export function iso(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString();
}

/** A duration for people. @internal */
export function ageText(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The last error in one line: `[CODE] message`. @internal */
export function errorText(lastError: string | null): string {
  const e = parseError(lastError);
  if (e === null) return '';
  return `${e.code === undefined ? '' : `[${String(e.code)}] `}${String(e.message ?? '')}`;
}

/** A payload in one short cell. @internal */
export function payloadText(v: ItemView<unknown>): string {
  if (v.payloadError !== undefined) return `<${v.payloadError.slice(0, 60)}>`;
  if (v.payload instanceof Uint8Array) return `<${v.payload.length} bytes>`;
  const s = JSON.stringify(v.payload) ?? '';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const TIMES = ['runAt', 'createdAt', 'updatedAt', 'lastRedriveAt'] as const;

/**
 * An item as JSON: times as ISO strings (and as epoch ms under `…Ms`), `lastError` as an object
 * (`error`), the payload only when asked (bytes as base64). @internal
 */
export function jsonItem(v: ItemView<unknown>, withPayload: boolean): Record<string, unknown> {
  const { payload, payloadError, lastError, ...rest } = v;
  const out: Record<string, unknown> = { ...rest };
  for (const k of TIMES) {
    const ms = v[k];
    out[k] = ms === null ? null : iso(ms);
    out[`${k}Ms`] = ms;
  }
  out.error = parseError(lastError);
  if (withPayload) {
    out.payload =
      payload instanceof Uint8Array ? { base64: Buffer.from(payload).toString('base64') } : payload;
    if (payloadError !== undefined) out.payloadError = payloadError;
  }
  return out;
}

/** JSON text, two-space indented. @internal */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
