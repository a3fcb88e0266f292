/**
 * Time-ordered ids (UUIDv7, RFC 9562): 48-bit ms timestamp, then a counter seeded randomly per
 * millisecond so ids made by one process sort in creation order even within one millisecond.
 * @module
 */

import { randomBytes } from 'node:crypto';

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

let lastMs = -1;
/** 12-bit counter (rand_a) followed by the top bits of rand_b: monotonic within a millisecond. */
let seq = 0;
let pool = randomBytes(4096);
let poolAt = 0;

function rnd(n: number): Buffer {
  if (poolAt + n > pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  const out = pool.subarray(poolAt, poolAt + n);
  poolAt += n;
  return out;
}

/**
 * Makes a UUIDv7 string for time `ms` (ms since the epoch). Ids made by one process are strictly
 * increasing as strings, even when `ms` goes backwards (the last time is kept).
 *
 * @example
 * ```ts
 * import { uuidv7 } from 'bulwark/durable';
 * const a = uuidv7(Date.now());
 * const b = uuidv7(Date.now());
 * console.log(a < b); // true
 * ```
 */
export function uuidv7(ms: number): string {
  let t = Math.floor(ms);
  if (t > lastMs) {
    lastMs = t;
    // Start the counter in the lower half so that it rarely overflows within one millisecond.
    seq = rnd(2).readUInt16BE(0) & 0x7ff;
  } else {
    t = lastMs;
    seq++;
    if (seq > 0xfff) {
      // Counter exhausted: borrow the next millisecond.
      lastMs++;
      t = lastMs;
      seq = 0;
    }
  }
  const r = rnd(8);
  const b0 = Math.floor(t / 2 ** 40) & 0xff;
  const b1 = Math.floor(t / 2 ** 32) & 0xff;
  const b2 = (t >>> 24) & 0xff;
  const b3 = (t >>> 16) & 0xff;
  const b4 = (t >>> 8) & 0xff;
  const b5 = t & 0xff;
  const b6 = 0x70 | ((seq >>> 8) & 0x0f);
  const b7 = seq & 0xff;
  const b8 = 0x80 | (r[0]! & 0x3f);
  return (
    HEX[b0]! +
    HEX[b1]! +
    HEX[b2]! +
    HEX[b3]! +
    '-' +
    HEX[b4]! +
    HEX[b5]! +
    '-' +
    HEX[b6]! +
    HEX[b7]! +
    '-' +
    HEX[b8]! +
    HEX[r[1]!]! +
    '-' +
    HEX[r[2]!]! +
    HEX[r[3]!]! +
    HEX[r[4]!]! +
    HEX[r[5]!]! +
    HEX[r[6]!]! +
    HEX[r[7]!]!
  );
}
