/**
 * The response cache of a route, a shared cache per RFC 9111 for GET: a response is stored only
 * with explicit freshness (`s-maxage`, then `max-age`, then `Expires`), never with `no-store`,
 * `private`, `no-cache`, `Vary: *` or `Set-Cookie`, and for a request with `Authorization` only
 * when the response says `public`, `s-maxage` or `must-revalidate`. Variants are kept per `Vary`.
 * A hit carries `Age` and `Cache-Status`; within `stale-while-revalidate` the stale copy is
 * served while one request refreshes it. Requests with `no-store` bypass the cache; `no-cache`
 * or `max-age=0` go to the upstream and refresh the stored copy. Memory is bounded by
 * `maxEntries` × `maxEntryBytes` (least recently used out first).
 * @module
 */

import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Sink } from './exchange.js';

type Headers = Record<string, string | string[] | undefined>;

/** A cache's settings (a route's `cache`, defaults filled). */
export interface CacheSettings {
  readonly maxEntries: number;
  readonly maxEntryBytes: number;
  readonly staleWhileRevalidate: boolean;
  readonly keyHeaders: readonly string[];
}

/** One stored response (a variant of a URL). */
export interface CachedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
  /** `clock.date()` when stored. */
  readonly storedAt: number;
  /** The upstream's `Age` when stored, in ms. */
  readonly initialAgeMs: number;
  /** Freshness lifetime, ms. */
  readonly freshMs: number;
  /** How long past freshness the copy may be served while it is refreshed, ms. */
  readonly staleMs: number;
  /** Lower-case request header names the response varies on, and the request's values. */
  readonly vary: readonly string[];
  readonly varyValues: readonly string[];
}

/** What a request asks of the cache. */
export type CacheMode = 'normal' | 'refresh' | 'bypass';

/** Statuses cacheable by default (RFC 9110 §15.1), with explicit freshness here. */
const CACHEABLE = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);
const MAX_VARIANTS = 8;

/**
 * Parses a Cache-Control value into directive → value ('' for a directive without value).
 *
 * @example
 * ```ts
 * import { parseCacheControl } from 'bulwark/gateway';
 * console.log(parseCacheControl('public, max-age=60, stale-while-revalidate="30"'));
 * // Map(3) { 'public' => '', 'max-age' => '60', 'stale-while-revalidate' => '30' }
 * ```
 */
export function parseCacheControl(value: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    out.set(
      name,
      eq < 0
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"|"$/g, ''),
    );
  }
  return out;
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v) * 1000;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * What a request's own Cache-Control / Pragma asks: use the cache, refresh it, or bypass it.
 *
 * @example
 * ```ts
 * import { cacheModeOf } from 'bulwark/gateway';
 * console.log(cacheModeOf({ 'cache-control': 'no-cache' })); // refresh
 * ```
 */
export function cacheModeOf(headers: IncomingHttpHeaders): CacheMode {
  const cc = headers['cache-control'];
  if (cc === undefined) return headers.pragma === 'no-cache' ? 'refresh' : 'normal';
  const d = parseCacheControl(cc);
  if (d.has('no-store')) return 'bypass';
  if (d.has('no-cache') || d.get('max-age') === '0') return 'refresh';
  return 'normal';
}

/**
 * The response cache of one route (made by the gateway for a route with `cache`).
 *
 * @example
 * ```ts
 * import { ResponseCache, cacheDefaults } from 'bulwark/gateway';
 * import { systemClock } from 'bulwark';
 * const cache = new ResponseCache(cacheDefaults, systemClock);
 * console.log(cache.storable(200, { 'cache-control': 'max-age=60' }, {})?.freshMs); // 60000
 * ```
 */
export class ResponseCache {
  private readonly map = new Map<string, CachedResponse[]>();
  private entries = 0;

  constructor(
    readonly settings: CacheSettings,
    private readonly clock: Clock,
  ) {}

  /** Responses stored now. */
  get size(): number {
    return this.entries;
  }

  /** The key of a GET: host, path with query, and the configured key headers. */
  key(host: string, path: string, headers: IncomingHttpHeaders): string {
    let k = `${host}\n${path}`;
    for (const h of this.settings.keyHeaders) k += `\n${one(headers[h]) ?? ''}`;
    return k;
  }

  /** The stored variant for this request, fresh or within its stale window, or null. */
  lookup(
    key: string,
    headers: IncomingHttpHeaders,
  ): { entry: CachedResponse; ageMs: number; fresh: boolean } | null {
    const variants = this.map.get(key);
    if (variants === undefined) return null;
    const now = this.clock.date();
    for (let i = 0; i < variants.length; i++) {
      const v = variants[i]!;
      if (!v.vary.every((h, j) => (one(headers[h]) ?? '') === v.varyValues[j])) continue;
      const ageMs = v.initialAgeMs + Math.max(0, now - v.storedAt);
      if (ageMs >= v.freshMs + v.staleMs) {
        variants.splice(i, 1);
        this.entries--;
        if (variants.length === 0) this.map.delete(key);
        return null;
      }
      this.map.delete(key); // most recently used
      this.map.set(key, variants);
      return { entry: v, ageMs, fresh: ageMs < v.freshMs };
    }
    return null;
  }

  /**
   * The freshness of a response if a shared cache may store it, else null.
   */
  storable(
    status: number,
    headers: Headers,
    request: IncomingHttpHeaders,
  ): { freshMs: number; staleMs: number; vary: string[]; initialAgeMs: number } | null {
    if (!CACHEABLE.has(status) || headers['set-cookie'] !== undefined) return null;
    const cc = parseCacheControl(headers['cache-control']);
    if (cc.has('no-store') || cc.has('private') || cc.has('no-cache')) return null;
    const vary = (one(headers.vary) ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== '');
    if (vary.includes('*')) return null;
    if (
      request.authorization !== undefined &&
      !cc.has('public') &&
      !cc.has('s-maxage') &&
      !cc.has('must-revalidate')
    )
      return null;
    let freshMs = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age'));
    if (freshMs === undefined) {
      const expires = Date.parse(one(headers.expires) ?? '');
      if (Number.isNaN(expires)) return null;
      const date = Date.parse(one(headers.date) ?? '');
      freshMs = Math.max(0, expires - (Number.isNaN(date) ? this.clock.date() : date));
    }
    const staleMs =
      this.settings.staleWhileRevalidate && !cc.has('must-revalidate') && !cc.has('proxy-revalidate')
        ? (seconds(cc.get('stale-while-revalidate')) ?? 0)
        : 0;
    const initialAgeMs = seconds(one(headers.age)) ?? 0;
    if (freshMs + staleMs <= initialAgeMs) return null;
    return { freshMs, staleMs, vary, initialAgeMs };
  }

  /** Stores a response (replacing the variant with the same Vary values). */
  store(key: string, entry: CachedResponse): void {
    const variants = this.map.get(key) ?? [];
    const same = variants.findIndex((v) => v.varyValues.every((x, i) => x === entry.varyValues[i]));
    if (same >= 0) {
      variants.splice(same, 1);
      this.entries--;
    } else if (variants.length >= MAX_VARIANTS) {
      variants.shift();
      this.entries--;
    }
    variants.push(entry);
    this.entries++;
    this.map.delete(key);
    this.map.set(key, variants);
    while (this.entries > this.settings.maxEntries) {
      const oldest = this.map.entries().next();
      if (oldest.done === true) break;
      const [k, list] = oldest.value;
      list.shift();
      this.entries--;
      if (list.length === 0) this.map.delete(k);
    }
  }

  /** A sink that collects a response and stores it when it ends complete and storable. */
  recorder(key: string, request: IncomingHttpHeaders): CacheRecorder {
    return new CacheRecorder(this, key, request);
  }

  /** Serves a stored response through `sink` with `Age` and `Cache-Status`. */
  serve(sink: Sink, hit: { entry: CachedResponse; ageMs: number; fresh: boolean }, head: boolean): void {
    const e = hit.entry;
    sink.start(e.status, {
      ...e.headers,
      age: String(Math.floor(hit.ageMs / 1000)),
      'cache-status': hit.fresh ? 'bulwark; hit' : 'bulwark; hit; stale',
    });
    if (!head && e.body.length > 0) sink.data(e.body);
    sink.end();
  }

  /** Drops every stored response. */
  clear(): void {
    this.map.clear();
    this.entries = 0;
  }

  /** Time now (the injected clock's wall clock). @internal */
  date(): number {
    return this.clock.date();
  }
}

/** Collects one upstream response for the cache (a subscriber of a flight). */
export class CacheRecorder {
  private chunks: Buffer[] | null = [];
  private bytes = 0;
  private status = 0;
  private headers: Record<string, string | string[]> | null = null;
  private fresh: ReturnType<ResponseCache['storable']> = null;

  constructor(
    private readonly cache: ResponseCache,
    private readonly key: string,
    private readonly request: IncomingHttpHeaders,
  ) {}

  /** True while the response may still be stored. */
  get active(): boolean {
    return this.chunks !== null;
  }

  start(status: number, headers: Headers): void {
    this.fresh = this.cache.storable(status, headers, this.request);
    if (this.fresh === null) {
      this.chunks = null;
      return;
    }
    this.status = status;
    const kept: Record<string, string | string[]> = {};
    for (const k in headers) {
      const v = headers[k];
      if (v !== undefined && k !== 'age' && k !== 'x-request-id') kept[k] = v;
    }
    this.headers = kept;
  }

  data(chunk: Buffer): void {
    if (this.chunks === null) return;
    this.bytes += chunk.length;
    if (this.bytes > this.cache.settings.maxEntryBytes) this.chunks = null;
    else this.chunks.push(chunk);
  }

  end(): void {
    if (this.chunks === null || this.fresh === null || this.headers === null) return;
    const f = this.fresh;
    this.cache.store(this.key, {
      status: this.status,
      headers: this.headers,
      body: Buffer.concat(this.chunks, this.bytes),
      storedAt: this.cache.date(),
      initialAgeMs: f.initialAgeMs,
      freshMs: f.freshMs,
      staleMs: f.staleMs,
      vary: f.vary,
      varyValues: f.vary.map((h) => one(this.request[h]) ?? ''),
    });
    this.chunks = null;
  }

  abandon(): void {
    this.chunks = null;
  }
}
