/**
 * Payload codecs: how a queue turns payloads into bytes and back.
 * @module
 */

import { BulwarkDurableError } from './errors.js';

/**
 * Turns payloads into bytes and back. A codec must be deterministic enough that `decode(encode(x))`
 * is what the handler expects; it runs before encryption and after decryption.
 *
 * @example
 * ```ts
 * import type { PayloadCodec } from 'bulwark/durable';
 * const text: PayloadCodec<string> = {
 *   encode: (s) => new TextEncoder().encode(s),
 *   decode: (b) => new TextDecoder().decode(b),
 * };
 * ```
 */
export interface PayloadCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const TAG_JSON = 0x4a; // 'J'
const TAG_BYTES = 0x42; // 'B'
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The default codec: `Uint8Array`/`Buffer` payloads pass through as bytes (decoded as a
 * `Uint8Array`), anything else is JSON. One tag byte tells them apart.
 *
 * @example
 * ```ts
 * import { defaultCodec } from 'bulwark/durable';
 * const bytes = defaultCodec.encode({ order: 42 });
 * console.log(defaultCodec.decode(bytes)); // { order: 42 }
 * ```
 */
export const defaultCodec: PayloadCodec<unknown> = {
  encode(value: unknown): Uint8Array {
    if (value instanceof Uint8Array) {
      const out = new Uint8Array(value.length + 1);
      out[0] = TAG_BYTES;
      out.set(value, 1);
      return out;
    }
    const json = JSON.stringify(value);
    if (json === undefined) {
      throw new BulwarkDurableError(
        'INVALID_STATE',
        'The payload cannot be encoded as JSON (undefined, a function or a symbol); pass a JSON value or bytes, or give the queue a codec',
      );
    }
    const out = Buffer.allocUnsafe(Buffer.byteLength(json) + 1);
    out[0] = TAG_JSON;
    out.write(json, 1);
    return out;
  },
  decode(bytes: Uint8Array): unknown {
    const tag = bytes[0];
    if (tag === TAG_BYTES) return Uint8Array.prototype.slice.call(bytes, 1);
    if (tag === TAG_JSON) return JSON.parse(decoder.decode(bytes.subarray(1)));
    throw new Error(`Unknown payload tag ${String(tag)}: the item was written with another codec`);
  },
};

/**
 * A plain JSON codec (no tag byte), for payloads other programs read from the table.
 *
 * @example
 * ```ts
 * import { jsonCodec } from 'bulwark/durable';
 * console.log(jsonCodec.decode(jsonCodec.encode([1, 2]))); // [ 1, 2 ]
 * ```
 */
export const jsonCodec: PayloadCodec<unknown> = {
  encode: (value) => encoder.encode(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
};
