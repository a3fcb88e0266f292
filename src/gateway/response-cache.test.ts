import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../testing/fake-clock.js';
import { cacheModeOf, parseCacheControl, ResponseCache } from './response-cache.js';

const settings = { maxEntries: 3, maxEntryBytes: 100, staleWhileRevalidate: true, keyHeaders: [] };

function make() {
  const clock = createFakeClock({ date: Date.UTC(2026, 0, 1) });
  return { clock, cache: new ResponseCache(settings, clock) };
}

describe('ResponseCache', () => {
  it('parses Cache-Control directives (case, quotes, lists)', () => {
    expect([...parseCacheControl(['Max-Age=5, PUBLIC', 's-maxage="9"'])]).toEqual([
      ['max-age', '5'],
      ['public', ''],
      ['s-maxage', '9'],
    ]);
  });

  it('freshness: s-maxage before max-age, then Expires - Date; Age already spent counts', () => {
    const { cache } = make();
    expect(cache.storable(200, { 'cache-control': 'max-age=10, s-maxage=20' }, {})?.freshMs).toBe(20_000);
    expect(
      cache.storable(
        200,
        { expires: 'Thu, 01 Jan 2026 00:01:00 GMT', date: 'Thu, 01 Jan 2026 00:00:00 GMT' },
        {},
      )?.freshMs,
    ).toBe(60_000);
    expect(cache.storable(200, { 'cache-control': 'max-age=10', age: '4' }, {})?.initialAgeMs).toBe(4_000);
    expect(cache.storable(200, { 'cache-control': 'max-age=10', age: '10' }, {})).toBeNull();
    expect(cache.storable(200, {}, {})).toBeNull(); // no explicit freshness: never stored
  });

  it('never stores no-store, private, no-cache, Vary: *, Set-Cookie, 5xx, or an authorised request unless public', () => {
    const { cache } = make();
    const ok = { 'cache-control': 'max-age=60' };
    for (const h of [
      { 'cache-control': 'no-store, max-age=60' },
      { 'cache-control': 'private, max-age=60' },
      { 'cache-control': 'no-cache, max-age=60' },
      { ...ok, vary: '*' },
      { ...ok, 'set-cookie': 'a=1' },
    ])
      expect(cache.storable(200, h, {})).toBeNull();
    expect(cache.storable(500, ok, {})).toBeNull();
    expect(cache.storable(200, ok, { authorization: 'Bearer x' })).toBeNull();
    expect(
      cache.storable(200, { 'cache-control': 'public, max-age=60' }, { authorization: 'Bearer x' }),
    ).not.toBeNull();
    expect(cache.storable(404, ok, {})).not.toBeNull();
  });

  it('a request asks to bypass (no-store) or refresh (no-cache, max-age=0, Pragma)', () => {
    expect(cacheModeOf({})).toBe('normal');
    expect(cacheModeOf({ 'cache-control': 'no-store' })).toBe('bypass');
    expect(cacheModeOf({ 'cache-control': 'no-cache' })).toBe('refresh');
    expect(cacheModeOf({ 'cache-control': 'max-age=0' })).toBe('refresh');
    expect(cacheModeOf({ pragma: 'no-cache' })).toBe('refresh');
  });

  it('stores variants per Vary, serves fresh then stale within stale-while-revalidate, then forgets', async () => {
    const { cache, clock } = make();
    const record = (lang: string, body: string) => {
      const r = cache.recorder('k', { 'accept-language': lang });
      r.start(200, { 'cache-control': 'max-age=10, stale-while-revalidate=5', vary: 'Accept-Language' });
      r.data(Buffer.from(body));
      r.end();
    };
    record('en', 'hello');
    record('fr', 'bonjour');
    expect(cache.size).toBe(2);
    expect(cache.lookup('k', { 'accept-language': 'fr' })?.entry.body.toString()).toBe('bonjour');
    expect(cache.lookup('k', { 'accept-language': 'de' })).toBeNull();
    await clock.tick(12_000);
    const stale = cache.lookup('k', { 'accept-language': 'en' })!;
    expect(stale.fresh).toBe(false);
    expect(stale.ageMs).toBe(12_000);
    await clock.tick(4_000);
    expect(cache.lookup('k', { 'accept-language': 'en' })).toBeNull();
  });

  it('bounds memory: bodies over maxEntryBytes are not kept, the least recently used goes first', () => {
    const { cache } = make();
    const store = (key: string, size: number) => {
      const r = cache.recorder(key, {});
      r.start(200, { 'cache-control': 'max-age=60' });
      r.data(Buffer.alloc(size));
      r.end();
    };
    store('big', 101);
    expect(cache.lookup('big', {})).toBeNull();
    store('a', 1);
    store('b', 1);
    store('c', 1);
    expect(cache.lookup('a', {})).not.toBeNull(); // a is now the most recently used
    store('d', 1);
    expect(cache.size).toBe(3);
    expect(cache.lookup('b', {})).toBeNull();
    expect(cache.lookup('a', {})).not.toBeNull();
  });
});
