/**
 * Encryption at rest for queued payloads: an envelope per item (AES-256-GCM, node:crypto).
 *
 * Each payload gets a fresh random 256-bit data key (DEK). The payload is encrypted with the DEK;
 * the DEK is wrapped (encrypted) with the keyring's current key-encryption key (KEK), whose id is
 * written in the envelope and in the item's `keyId` column. Associated data binds the ciphertext to
 * its queue and item id (payload) and additionally to the key id (wrapped DEK), so a payload copied
 * to another item or queue, or a key id swapped, fails to decrypt. Rotation adds a new current KEK;
 * `rewrap` re-wraps DEKs with it without touching payloads.
 *
 * Envelope layout (bytes): `version(1) | kidLen(1) | kid | wrapIv(12) | wrapTag(16) | edk(32) | iv(12) | tag(16) | ciphertext`.
 * Version 2 (written now) builds the associated data from length-prefixed fields (4-byte big-endian
 * length, then UTF-8), so no two (queue, id, key id) tuples share one AAD whatever characters they
 * hold. Version 1 (NUL-separated fields) is still read, and `rewrap` keeps an item's version (its
 * payload ciphertext is bound to it).
 * @module
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { BulwarkDurableError } from './errors.js';

/** The envelope version written by `sealPayload`. */
const VERSION = 2;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Decodes key material. Error messages never contain the id or the material (a key pasted in the
 * id's place must not end up in logs): only `where` and lengths.
 */
function toKeyBytes(where: string, key: Uint8Array | string): Buffer {
  let bytes: Buffer;
  if (typeof key === 'string') {
    const text = key.trim();
    bytes = Buffer.from(text, 'base64');
    // Buffer.from skips characters that are not base64: accept only text that round-trips.
    if (bytes.toString('base64') !== text) {
      const n = bytes.length;
      bytes.fill(0);
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `${where}: the key is not canonical base64 (${text.length} characters, ${n} bytes decoded); use base64 of 32 random bytes, e.g. \`openssl rand -base64 32\``,
      );
    }
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key);
  } else {
    throw new BulwarkDurableError('KEY_MISSING', `${where}: the key must be a Uint8Array or a base64 string`);
  }
  if (bytes.length !== KEY_BYTES) {
    const n = bytes.length;
    bytes.fill(0);
    throw new BulwarkDurableError(
      'KEY_MISSING',
      `${where}: a key must be ${KEY_BYTES} bytes (base64 of 32 random bytes, e.g. \`openssl rand -base64 32\`); got ${n} bytes`,
    );
  }
  return bytes;
}

/** Checks a key id; the message shows only its length (it may be key material pasted in the wrong place). */
function checkKeyId(where: string, id: string): void {
  if (typeof id !== 'string' || !KEY_ID.test(id)) {
    const shown = typeof id === 'string' ? `a string of ${id.length} characters` : typeof id;
    throw new BulwarkDurableError(
      'KEY_MISSING',
      `${where}: a key id must be 1-64 characters of A-Z a-z 0-9 . _ - (got ${shown}; not shown in case it is key material)`,
    );
  }
}

/** A key for `keyring()`: an id and 32 bytes of key material (bytes or base64). */
export interface KeyringKeyInput {
  readonly id: string;
  readonly key: Uint8Array | string;
}

/**
 * The key-encryption keys of an encrypted queue: one current key (used for new items and by
 * `rewrap`) and older keys kept for decryption. The key material never appears in `toString()`,
 * `util.inspect`, `console.log` or `JSON.stringify`: only ids are shown.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
 * ring.add('k2', randomBytes(32).toString('base64'), { current: true });
 * console.log(String(ring)); // Keyring(current=k2, keys=k1,k2)
 * ```
 */
export class Keyring {
  readonly #keys = new Map<string, Buffer>();
  #current: string;

  constructor(keys: readonly KeyringKeyInput[], options: { readonly current?: string } = {}) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new BulwarkDurableError('KEY_MISSING', 'A keyring needs at least one key ({ id, key })');
    }
    for (const [i, k] of keys.entries()) this.#add(k.id, k.key, false, `keys[${i}]`);
    const current = options.current ?? keys[0]!.id;
    if (!this.#keys.has(current)) {
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `The current key (options.current, ${String(current).length} characters) is not in the keyring`,
      );
    }
    this.#current = current;
  }

  /** The id of the key that wraps new items. */
  get currentKeyId(): string {
    return this.#current;
  }

  /** The ids of every key, in insertion order. */
  ids(): string[] {
    return [...this.#keys.keys()];
  }

  /** True when the keyring holds a key with this id. */
  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** Adds a key (and makes it current when `current` is set). A key id cannot be reused with other material. */
  add(id: string, key: Uint8Array | string, options: { readonly current?: boolean } = {}): this {
    return this.#add(id, key, options.current === true, 'keyring.add');
  }

  #add(id: string, key: Uint8Array | string, current: boolean, where: string): this {
    checkKeyId(where, id);
    const bytes = toKeyBytes(where, key);
    const existing = this.#keys.get(id);
    if (existing !== undefined && !existing.equals(bytes)) {
      bytes.fill(0);
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `${where}: the key id (${id.length} characters) is already in the keyring with other material`,
      );
    }
    if (existing === undefined) this.#keys.set(id, bytes);
    else bytes.fill(0);
    if (current) this.#current = id;
    return this;
  }

  /** Makes an existing key current: new items (and `rewrap`) use it from now on. */
  setCurrent(id: string): this {
    if (!this.#keys.has(id)) throw new BulwarkDurableError('KEY_MISSING', `No key "${id}" in the keyring`);
    this.#current = id;
    return this;
  }

  /** Removes a retired key (never the current one) and zeroes its material. */
  remove(id: string): boolean {
    if (id === this.#current) {
      throw new BulwarkDurableError('KEY_MISSING', `Key "${id}" is current; make another key current first`);
    }
    const k = this.#keys.get(id);
    if (k === undefined) return false;
    k.fill(0);
    return this.#keys.delete(id);
  }

  /** @internal Wraps `dek` with the current key. */
  _wrap(dek: Buffer, aad: Buffer): { kid: string; wrapped: Buffer } {
    const kid = this.#current;
    const kek = this.#keys.get(kid)!;
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(dek), c.final()]);
    return { kid, wrapped: Buffer.concat([iv, c.getAuthTag(), ct]) };
  }

  /** @internal Unwraps a DEK wrapped by key `kid`. Throws when the key is unknown or the data was altered. */
  _unwrap(kid: string, wrapped: Uint8Array, aad: Buffer): Buffer {
    const kek = this.#keys.get(kid);
    if (kek === undefined) {
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `The item was encrypted with key "${kid}", which is not in the keyring; add it back to decrypt`,
      );
    }
    const iv = wrapped.subarray(0, IV_BYTES);
    const tag = wrapped.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const ct = wrapped.subarray(IV_BYTES + TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]);
  }

  toString(): string {
    return `Keyring(current=${this.#current}, keys=${this.ids().join(',')})`;
  }

  toJSON(): { current: string; keys: string[] } {
    return { current: this.#current, keys: this.ids() };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Makes a keyring from keys given in configuration. The first key is current unless `current` says
 * otherwise.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * const ring = keyring([{ id: '2026-06', key: randomBytes(32) }, { id: '2026-01', key: randomBytes(32) }]);
 * console.log(ring.currentKeyId); // '2026-06'
 * ```
 */
export function keyring(
  keys: readonly KeyringKeyInput[],
  options: { readonly current?: string } = {},
): Keyring {
  return new Keyring(keys, options);
}

/**
 * Reads a keyring from an environment variable holding `id:base64key,id:base64key,…`. The FIRST key
 * is current (put a new key first to rotate); the others are kept for decryption. Errors name the
 * variable and the key id, never the material.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyringFromEnv } from 'bulwark/durable';
 * const env = { BULWARK_KEYS: `k2:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}` };
 * console.log(keyringFromEnv('BULWARK_KEYS', env).currentKeyId); // 'k2'
 * ```
 */
export function keyringFromEnv(
  variable = 'BULWARK_KEYS',
  env: Readonly<Record<string, string | undefined>> = process.env,
): Keyring {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') {
    throw new BulwarkDurableError(
      'KEY_MISSING',
      `Environment variable ${variable} is not set; set it to "id:base64key[,id:base64key…]" (first = current)`,
    );
  }
  const keys: KeyringKeyInput[] = [];
  const seen = new Map<string, number>();
  for (const [i, part] of raw.split(',').entries()) {
    // Messages name the entry by position and length only: never its id or material.
    const where = `${variable}: entry ${i + 1} (${part.trim().length} characters)`;
    const entry = part.trim();
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `${where} is not "id:base64key" (expected id, a colon, then the base64 key)`,
      );
    }
    const id = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (!KEY_ID.test(id)) {
      const swapped = KEY_ID.test(key) && Buffer.from(id, 'base64').length === KEY_BYTES;
      throw new BulwarkDurableError(
        'KEY_MISSING',
        swapped
          ? `${where} looks like "base64key:id": write the id first, then a colon, then the key`
          : `${where}: the id (${id.length} characters) must be 1-64 characters of A-Z a-z 0-9 . _ -`,
      );
    }
    const first = seen.get(id);
    if (first !== undefined) {
      throw new BulwarkDurableError('KEY_MISSING', `${where} repeats the id of entry ${first + 1}`);
    }
    seen.set(id, i);
    toKeyBytes(where, key).fill(0); // validates with this entry's position in the message
    keys.push({ id, key });
  }
  return new Keyring(keys);
}

const HEADER_V1 = Buffer.from('bulwark/durable/v1', 'utf8');
const HEADER_V2 = Buffer.from('bulwark/durable/v2', 'utf8');

/** Length-prefixed fields (4-byte big-endian byte length, then the UTF-8 bytes). */
function fields(parts: readonly string[]): Buffer {
  const chunks: Buffer[] = [HEADER_V2];
  for (const part of parts) {
    const bytes = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    chunks.push(len, bytes);
  }
  return Buffer.concat(chunks);
}

function payloadAad(version: number, queue: string, id: string): Buffer {
  if (version === 1) return Buffer.concat([HEADER_V1, Buffer.from(`\0payload\0${queue}\0${id}`, 'utf8')]);
  return fields(['payload', queue, id]);
}

function dekAad(version: number, queue: string, id: string, kid: string): Buffer {
  if (version === 1) return Buffer.concat([HEADER_V1, Buffer.from(`\0dek\0${queue}\0${id}\0${kid}`, 'utf8')]);
  return fields(['dek', queue, id, kid]);
}

const WRAPPED_BYTES = IV_BYTES + TAG_BYTES + KEY_BYTES;

interface Parsed {
  version: number;
  kid: string;
  wrapped: Uint8Array;
  iv: Uint8Array;
  tag: Uint8Array;
  ct: Uint8Array;
  bodyOffset: number;
}

function parse(bytes: Uint8Array): Parsed {
  const version = bytes[0];
  if (bytes.length < 2 || (version !== 1 && version !== 2)) throw new Error('not a version-1 or -2 envelope');
  const kidLen = bytes[1]!;
  const bodyOffset = 2 + kidLen + WRAPPED_BYTES;
  if (bytes.length < bodyOffset + IV_BYTES + TAG_BYTES) throw new Error('envelope truncated');
  const kid = Buffer.from(bytes.subarray(2, 2 + kidLen)).toString('utf8');
  return {
    version,
    kid,
    wrapped: bytes.subarray(2 + kidLen, bodyOffset),
    iv: bytes.subarray(bodyOffset, bodyOffset + IV_BYTES),
    tag: bytes.subarray(bodyOffset + IV_BYTES, bodyOffset + IV_BYTES + TAG_BYTES),
    ct: bytes.subarray(bodyOffset + IV_BYTES + TAG_BYTES),
    bodyOffset,
  };
}

function header(version: number, kid: string, wrapped: Buffer): Buffer {
  const k = Buffer.from(kid, 'utf8');
  return Buffer.concat([Buffer.from([version, k.length]), k, wrapped]);
}

/**
 * Encrypts a payload for item `id` of `queue` with a fresh data key wrapped by the current key.
 * @internal
 */
export function sealPayload(
  ring: Keyring,
  queue: string,
  id: string,
  plaintext: Uint8Array,
): { bytes: Uint8Array; keyId: string } {
  const dek = randomBytes(KEY_BYTES);
  try {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', dek, iv, { authTagLength: TAG_BYTES });
    c.setAAD(payloadAad(VERSION, queue, id));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const tag = c.getAuthTag();
    const kid = ring.currentKeyId;
    const { wrapped } = ring._wrap(dek, dekAad(VERSION, queue, id, kid));
    return { bytes: Buffer.concat([header(VERSION, kid, wrapped), iv, tag, ct]), keyId: kid };
  } finally {
    dek.fill(0);
  }
}

function decryptFailed(queue: string, id: string, cause: unknown): BulwarkDurableError {
  if (cause instanceof BulwarkDurableError && cause.code === 'KEY_MISSING') {
    return new BulwarkDurableError('DECRYPT_FAILED', `Item ${id} of queue "${queue}": ${cause.message}`, {
      cause,
    });
  }
  return new BulwarkDurableError(
    'DECRYPT_FAILED',
    `Item ${id} of queue "${queue}" could not be decrypted: the ciphertext, its key id or its queue/id binding was altered, or the key is wrong`,
    { cause },
  );
}

/**
 * Decrypts an item's payload. `storedKeyId` is the item's `keyId` column, which must match the
 * envelope. Throws `BulwarkDurableError` `DECRYPT_FAILED` on any mismatch or tampering.
 * @internal
 */
export function openPayload(
  ring: Keyring,
  queue: string,
  id: string,
  storedKeyId: string | null,
  bytes: Uint8Array,
): Uint8Array {
  let dek: Buffer | null = null;
  try {
    const p = parse(bytes);
    dek = unwrapDek(ring, queue, id, storedKeyId, p);
    const d = createDecipheriv('aes-256-gcm', dek, p.iv, { authTagLength: TAG_BYTES });
    d.setAAD(payloadAad(p.version, queue, id));
    d.setAuthTag(p.tag);
    return Buffer.concat([d.update(p.ct), d.final()]);
  } catch (error) {
    throw decryptFailed(queue, id, error);
  } finally {
    dek?.fill(0);
  }
}

/** Unwraps the data key of envelope `p`, after checking the key id column matches it. */
function unwrapDek(
  ring: Keyring,
  queue: string,
  id: string,
  storedKeyId: string | null,
  p: ReturnType<typeof parse>,
): Buffer {
  if (storedKeyId !== p.kid)
    throw new Error(`key id column "${String(storedKeyId)}" differs from the envelope`);
  return ring._unwrap(p.kid, p.wrapped, dekAad(p.version, queue, id, p.kid));
}

/**
 * Re-wraps an item's data key with the keyring's current key; the encrypted payload is kept as is.
 * @internal
 */
export function rewrapPayload(
  ring: Keyring,
  queue: string,
  id: string,
  storedKeyId: string | null,
  bytes: Uint8Array,
): { bytes: Uint8Array; keyId: string } {
  let dek: Buffer | null = null;
  try {
    const p = parse(bytes);
    dek = unwrapDek(ring, queue, id, storedKeyId, p);
    const kid = ring.currentKeyId;
    // The payload ciphertext is bound to its envelope version's AAD: keep the version.
    const { wrapped } = ring._wrap(dek, dekAad(p.version, queue, id, kid));
    return {
      bytes: Buffer.concat([header(p.version, kid, wrapped), bytes.subarray(p.bodyOffset)]),
      keyId: kid,
    };
  } catch (error) {
    throw decryptFailed(queue, id, error);
  } finally {
    dek?.fill(0);
  }
}
