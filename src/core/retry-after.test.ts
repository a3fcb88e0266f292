import { describe, expect, it } from 'vitest';
import { BrokenCircuitError, parseRetryAfter, retryAfterOf } from '../index.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const inSeconds = (s: number) => new Date(NOW + s * 1000).toUTCString();

describe('parseRetryAfter', () => {
  it('reads delay-seconds as milliseconds', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter('5', NOW)).toBe(5_000);
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter('1.5', NOW)).toBe(1_500);
    expect(parseRetryAfter('  7 ', NOW)).toBe(7_000);
  });

  it('reads a number (a header stored as a number) as seconds', () => {
    expect(parseRetryAfter(3, NOW)).toBe(3_000);
    expect(parseRetryAfter(0, NOW)).toBe(0);
    expect(parseRetryAfter(-1, NOW)).toBeUndefined();
    expect(parseRetryAfter(Number.NaN, NOW)).toBeUndefined();
    expect(parseRetryAfter(Number.POSITIVE_INFINITY, NOW)).toBeUndefined();
  });

  it('reads an IMF-fixdate HTTP date as the time left until it', () => {
    expect(inSeconds(30)).toBe('Thu, 01 Jan 2026 12:00:30 GMT');
    expect(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', NOW)).toBe(30_000);
  });

  it('reads the obsolete RFC 850 and asctime date forms', () => {
    expect(parseRetryAfter('Thursday, 01-Jan-26 12:01:00 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Thu Jan  1 12:00:10 2026', NOW)).toBe(
      Date.parse('Thu Jan  1 12:00:10 2026') - NOW, // asctime carries no zone: read as local time
    );
  });

  it('a date in the past means retry now (0), never a negative delay', () => {
    expect(parseRetryAfter(inSeconds(-30), NOW)).toBe(0);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', NOW)).toBe(0);
  });

  it.each([
    '',
    '   ',
    'soon',
    '-1',
    '1e3',
    '0x10',
    '12 monkeys',
    'x 2030',
    'Sat 2',
    'Thu, 32 Jan 2026 99:99:99 GMT',
  ])('the invalid value %j is ignored (undefined)', (v) => {
    expect(parseRetryAfter(v, NOW)).toBeUndefined();
  });

  it('non-strings and non-numbers are ignored', () => {
    for (const v of [undefined, null, {}, ['5'], true]) expect(parseRetryAfter(v, NOW)).toBeUndefined();
  });
});

describe('retryAfterOf', () => {
  it('reads a fetch Response (Headers) with Retry-After seconds', () => {
    const res = new Response(null, { status: 429, headers: { 'Retry-After': '3' } });
    expect(retryAfterOf(res, NOW)).toBe(3_000);
  });

  it('reads a fetch Response with an HTTP date, relative to the given wall clock', () => {
    const res = new Response(null, { status: 503, headers: { 'retry-after': inSeconds(12) } });
    expect(retryAfterOf(res, NOW)).toBe(12_000);
    expect(retryAfterOf(res, NOW + 2_000)).toBe(10_000);
  });

  it('reads an error with plain-object headers, lower- or title-case', () => {
    expect(retryAfterOf(Object.assign(new Error('x'), { headers: { 'retry-after': '4' } }), NOW)).toBe(4_000);
    expect(retryAfterOf(Object.assign(new Error('x'), { headers: { 'Retry-After': '4' } }), NOW)).toBe(4_000);
  });

  it('reads an error with a Headers instance', () => {
    const headers = new Headers({ 'Retry-After': '6' });
    expect(retryAfterOf(Object.assign(new Error('x'), { headers }), NOW)).toBe(6_000);
  });

  it("reads an error's response.headers (axios, got, ky style)", () => {
    const plain = Object.assign(new Error('x'), {
      response: { status: 429, headers: { 'retry-after': '8' } },
    });
    expect(retryAfterOf(plain, NOW)).toBe(8_000);
    const fetchStyle = Object.assign(new Error('x'), {
      response: new Response(null, { status: 503, headers: { 'Retry-After': inSeconds(9) } }),
    });
    expect(retryAfterOf(fetchStyle, NOW)).toBe(9_000);
  });

  it("reads an error's retryAfterMs (e.g. BrokenCircuitError) before any header", () => {
    expect(retryAfterOf(Object.assign(new Error('x'), { retryAfterMs: 250 }), NOW)).toBe(250);
    expect(retryAfterOf(new BrokenCircuitError('b', 'open', 1_500), NOW)).toBe(1_500);
    const both = Object.assign(new Error('x'), { retryAfterMs: 10, headers: { 'retry-after': '99' } });
    expect(retryAfterOf(both, NOW)).toBe(10);
  });

  it('ignores a retryAfterMs that is negative, infinite or not a number, and then looks at headers', () => {
    expect(
      retryAfterOf(new BrokenCircuitError('b', 'isolated', Number.POSITIVE_INFINITY), NOW),
    ).toBeUndefined();
    expect(retryAfterOf(Object.assign(new Error('x'), { retryAfterMs: -5 }), NOW)).toBeUndefined();
    expect(retryAfterOf(Object.assign(new Error('x'), { retryAfterMs: '5' }), NOW)).toBeUndefined();
    const fallsThrough = Object.assign(new Error('x'), { retryAfterMs: -5, headers: { 'retry-after': '2' } });
    expect(retryAfterOf(fallsThrough, NOW)).toBe(2_000);
  });

  it('prefers direct headers over response.headers, and falls back when the direct one is invalid', () => {
    const e = Object.assign(new Error('x'), {
      headers: { 'retry-after': '1' },
      response: { headers: { 'retry-after': '2' } },
    });
    expect(retryAfterOf(e, NOW)).toBe(1_000);
    const bad = Object.assign(new Error('x'), {
      headers: { 'retry-after': 'garbage' },
      response: { headers: { 'retry-after': '2' } },
    });
    expect(retryAfterOf(bad, NOW)).toBe(2_000);
  });

  it('is undefined without a Retry-After, for non-objects, and for odd header containers', () => {
    expect(retryAfterOf(new Response(null, { status: 503 }), NOW)).toBeUndefined();
    expect(retryAfterOf(new Error('x'), NOW)).toBeUndefined();
    expect(
      retryAfterOf(Object.assign(new Error('x'), { headers: null, response: null }), NOW),
    ).toBeUndefined();
    expect(retryAfterOf(Object.assign(new Error('x'), { headers: 'retry-after: 5' }), NOW)).toBeUndefined();
    expect(retryAfterOf('503', NOW)).toBeUndefined();
    expect(retryAfterOf(null, NOW)).toBeUndefined();
    expect(retryAfterOf(undefined, NOW)).toBeUndefined();
  });
});
