import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerKey, isToken } from './header-name.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

describe('header names', () => {
  it('isToken agrees with the RFC 9110 token grammar, over any string and range', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 12 }), (s) => {
        expect(isToken(s)).toBe(TOKEN.test(s));
        expect(isToken(`x${s}y`, 1, s.length + 1)).toBe(TOKEN.test(s));
      }),
    );
  });

  it('headerKey lower-cases tokens, refuses the rest, and returns one string per spelling', () => {
    expect(headerKey('Content-Type')).toBe('content-type');
    expect(headerKey('X-Request-ID')).toBe('x-request-id');
    expect(headerKey('__proto__')).toBe('__proto__');
    expect(headerKey('bad name')).toBeNull();
    expect(headerKey('')).toBeNull();
    expect(headerKey('caf\u00e9')).toBeNull();
    const a = headerKey(['Da', 'te'].join(''));
    const b = headerKey('Date');
    expect(a).toBe('date');
    expect(Object.is(a, b)).toBe(true);
  });

  it('stays right past its cache bound (names are client-chosen)', () => {
    for (let i = 0; i < 3000; i++) expect(headerKey(`X-Name-${i}`)).toBe(`x-name-${i}`);
    expect(headerKey('Bad Name 3001')).toBeNull();
  });
});
