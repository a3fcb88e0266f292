/**
 * A deterministic random source for tests.
 */

import type { RandomSource } from '../core/clock.js';

/**
 * A seeded pseudo-random source (mulberry32): the same seed gives the same numbers.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 * import { seededRandom } from 'bulwark/testing';
 * const policy = retry({ random: seededRandom(42) });
 * ```
 */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random source that returns the given numbers in turn (then repeats the last).
 *
 * @example
 * ```ts
 * import { fixedRandom } from 'bulwark/testing';
 * const r = fixedRandom(0.5); r(); // 0.5
 * ```
 */
export function fixedRandom(...values: number[]): RandomSource {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}
