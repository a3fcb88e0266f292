/**
 * Header names on the proxy's hot path: validated as RFC 9110 tokens and lower-cased once per
 * distinct spelling. A proxy sees the same few dozen names over and over (`Content-Type`, `Date`,
 * `Host`…); the cache hands back the same interned lower-case string for each, so a request or a
 * response builds no name string and a header object's keys need no string-table lookup.
 * @module
 */

/** 1 for the bytes of an RFC 9110 token (`tchar`), 0 for the rest. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/** Spellings seen → their interned lower-case form (bounded: names are client-chosen). */
const cache = new Map<string, string>();
const CACHE_MAX = 1024;

/** True when `text[from, to)` is a non-empty token. */
export function isToken(text: string, from = 0, to = text.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * The lower-case form of header name `name`, or null when it is not a token. Repeated spellings
 * cost one map lookup and return the same interned string.
 *
 * @example
 * ```ts nocheck
 * headerKey('Content-Type'); // 'content-type'
 * headerKey('bad name'); // null
 * ```
 */
export function headerKey(name: string): string | null {
  const known = cache.get(name);
  if (known !== undefined) return known;
  if (!isToken(name)) return null;
  const lower = name.toLowerCase();
  if (cache.size >= CACHE_MAX) return lower;
  // A property key is interned: taking it back from an object gives the string-table copy.
  const interned = Object.keys({ [lower]: 0 })[0]!;
  cache.set(name, interned);
  return interned;
}
