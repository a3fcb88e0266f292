/**
 * Writing and reading a backup's files: streamed to disk with their SHA-256 and size computed on
 * the way, and, with a keyring, encrypted (AES-256-GCM with a fresh data key per file, the data
 * key wrapped by the keyring's current key through bulwark/durable's envelope, bound to the
 * backup id and file name).
 *
 * Encrypted layout: `BWBK1\n | envelopeLength (u32 BE) | envelope | iv (12) | ciphertext | tag (16)`.
 * @module
 */

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BulwarkError } from '../core/errors.js';
import { type Keyring, openPayload, sealPayload } from '../durable/encryption.js';

const MAGIC = Buffer.from('BWBK1\n');
const AAD_SCOPE = 'bulwark-backup';
const TAG = 16;

/** A backup file failed its checks (checksum, decryption). */
export class BackupIntegrityError extends BulwarkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKUP_CORRUPT', message, options);
  }
}

/** Flushes a written file to disk (a backup is not done until it is durable, as pg_dump does without --no-sync). @internal */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Streams `source` to `path` (encrypted with `ring` when given); resolves with the stored size and SHA-256. @internal */
export async function writeStored(
  source: Readable,
  path: string,
  ring: Keyring | undefined,
  binding: string,
): Promise<{ bytes: number; sha256: string; keyId?: string }> {
  const tap = new HashTap();
  if (ring === undefined) {
    await pipeline(source, tap, createWriteStream(path));
    await syncFile(path);
    return { bytes: tap.bytes, sha256: tap.hash.digest('hex') };
  }
  const dek = randomBytes(32);
  try {
    const { bytes: envelope, keyId } = sealPayload(ring, AAD_SCOPE, binding, dek);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dek, iv, { authTagLength: TAG });
    cipher.setAAD(Buffer.from(binding, 'utf8'));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(envelope.length);
    const header = Buffer.concat([MAGIC, len, envelope, iv]);
    let headed = false;
    const framing = new Transform({
      transform(chunk: Buffer, _e, cb) {
        if (!headed) {
          headed = true;
          this.push(header);
        }
        cb(null, chunk);
      },
      flush(cb) {
        if (!headed) this.push(header);
        cb(null, cipher.getAuthTag());
      },
    });
    // cipher emits its final block on end, then framing appends the tag.
    await pipeline(source, cipher, framing, tap, createWriteStream(path));
    await syncFile(path);
    return { bytes: tap.bytes, sha256: tap.hash.digest('hex'), keyId };
  } finally {
    dek.fill(0);
  }
}

/** Reads the first bytes of a file. */
async function head(path: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: n - 1 })) {
    chunks.push(chunk as Buffer);
    got += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks, got);
}

/** Holds back the last 16 bytes (the GCM tag) of a stream. */
class TailSplit extends Transform {
  tail = Buffer.alloc(0);
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const all = Buffer.concat([this.tail, chunk]);
    this.tail = all.subarray(Math.max(0, all.length - TAG));
    cb(null, all.subarray(0, Math.max(0, all.length - TAG)));
  }
}

/**
 * Copies stored file `path` to `out` as plaintext (decrypting with `ring` when `keyId` is set).
 * Throws `BackupIntegrityError` when the ciphertext or its binding was altered, or the key is absent. @internal
 */
export async function readStored(
  path: string,
  out: string,
  ring: Keyring | undefined,
  keyId: string | undefined,
  binding: string,
): Promise<void> {
  if (keyId === undefined) {
    await pipeline(createReadStream(path), createWriteStream(out));
    return;
  }
  if (ring === undefined) {
    throw new BackupIntegrityError(
      `${binding} is encrypted with key "${keyId}": give the keyring (BULWARK_KEYS="id:base64key,…") to read it`,
    );
  }
  const first = await head(path, MAGIC.length + 4);
  if (!first.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupIntegrityError(`${binding} is not an encrypted backup file (bad header)`);
  }
  const envLen = first.readUInt32BE(MAGIC.length);
  const headerLen = MAGIC.length + 4 + envLen + 12;
  const header = await head(path, headerLen);
  let dek: Uint8Array;
  try {
    dek = openPayload(
      ring,
      AAD_SCOPE,
      binding,
      keyId,
      header.subarray(MAGIC.length + 4, MAGIC.length + 4 + envLen),
    );
  } catch (error) {
    throw new BackupIntegrityError(
      `${binding}: its data key could not be unwrapped (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  const iv = header.subarray(headerLen - 12, headerLen);
  const decipher = createDecipheriv('aes-256-gcm', dek, iv, { authTagLength: TAG });
  decipher.setAAD(Buffer.from(binding, 'utf8'));
  const split = new TailSplit();
  const tagged = new Transform({
    transform(chunk: Buffer, _e, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      try {
        decipher.setAuthTag(split.tail);
        cb();
      } catch (error) {
        cb(error as Error);
      }
    },
  });
  try {
    // split → tagged sets the tag when the ciphertext ends, before the decipher's final() runs.
    await pipeline(
      createReadStream(path, { start: headerLen }),
      split,
      tagged,
      decipher,
      createWriteStream(out),
    );
  } catch (error) {
    throw new BackupIntegrityError(
      `${binding} failed authentication while decrypting: the file was altered or is incomplete`,
      { cause: error },
    );
  } finally {
    (dek as Buffer).fill?.(0);
  }
}
