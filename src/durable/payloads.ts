/**
 * A queue's payloads: encoded by its codec, encrypted with its keyring (when it has one), bound to
 * the queue and item id; and decoded back for handlers and readers.
 * @module
 */

import type { PayloadCodec } from './codec.js';
import { type Keyring, openPayload, sealPayload } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import type { ItemView } from './job.js';
import { parseProgress } from './progress.js';
import type { StoredItem } from './store.js';

/** Seals and opens the payloads of one queue. @internal */
export class Payloads<T> {
  constructor(
    private readonly queue: string,
    private readonly codec: PayloadCodec<T>,
    private readonly keyring: Keyring | undefined,
  ) {}

  /** Encodes (and encrypts) a payload for item `id`. */
  seal(id: string, payload: T): { bytes: Uint8Array; keyId: string | null } {
    let plain: Uint8Array;
    try {
      plain = this.codec.encode(payload);
    } catch (error) {
      throw new BulwarkDurableError(
        'ENCODE_FAILED',
        `The payload for queue "${this.queue}" cannot be encoded (${error instanceof Error ? error.message : String(error)}); pass plain JSON data (no cycles, no BigInt) or a codec`,
        { cause: error },
      );
    }
    if (this.keyring === undefined) return { bytes: plain, keyId: null };
    return sealPayload(this.keyring, this.queue, id, plain);
  }

  /** Decrypts and decodes an item's payload; throws DECRYPT_FAILED or the codec's error. */
  open(item: StoredItem): T {
    let bytes = item.payload;
    if (item.keyId !== null) {
      if (this.keyring === undefined) {
        throw new BulwarkDurableError(
          'DECRYPT_FAILED',
          `Item ${item.id} of queue "${this.queue}" is encrypted with key "${item.keyId}" but the queue has no keyring`,
        );
      }
      bytes = openPayload(this.keyring, this.queue, item.id, item.keyId, bytes);
    }
    return this.codec.decode(bytes);
  }

  /** The item's payload bound to queue `to` (re-encrypted for it when encrypted). */
  rebind(item: StoredItem, to: string): { payload: Uint8Array; keyId: string | null } {
    if (item.keyId === null) return { payload: item.payload, keyId: null };
    if (this.keyring === undefined) {
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `Queue "${this.queue}" has no keyring to re-encrypt ${item.id}`,
      );
    }
    const plain = openPayload(this.keyring, this.queue, item.id, item.keyId, item.payload);
    const sealed = sealPayload(this.keyring, to, item.id, plain);
    return { payload: sealed.bytes, keyId: sealed.keyId };
  }

  /** An item as shown to readers: the payload decoded, or why it cannot be. */
  view(item: StoredItem): ItemView<T> {
    const { payload: _raw, progress, ...fields } = item;
    const rest = { ...fields, progress: parseProgress(progress) };
    try {
      return { ...rest, payload: this.open(item) };
    } catch (error) {
      return {
        ...rest,
        payload: undefined,
        payloadError: error instanceof Error ? error.message : String(error),
      };
    }
  }
}
