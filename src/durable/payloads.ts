/**
 * A queue's payloads: encoded by its codec, encrypted with its keyring (when it has one), bound to
 * the queue and item id; and decoded back for handlers and readers.
 * @module
 */

import { ConfigError } from '../core/errors.js';
import type { PayloadCodec } from './codec.js';
import { type Keyring, openPayload, sealPayload } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import type { ItemView } from './job.js';
import { parseProgress } from './progress.js';
import type { QueueStore, StoredItem } from './store.js';

/**
 * Per-subject data keys for a queue (crypto-shredding): items enqueued with a `subject` are sealed
 * with that subject's key; once the subject is erased they cannot be decrypted (a worker
 * dead-letters them with `DECRYPT_FAILED`, readers see a `payloadError`). `subjectKeys(...)` of
 * `bulwark/keyring` is one.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring, openQueue, sqliteStore } from 'bulwark/durable';
 * import { memorySubjectKeyStore, subjectKeys } from 'bulwark/keyring';
 * const keys = subjectKeys({ keyring: keyring([{ id: 'k1', key: randomBytes(32) }]), store: memorySubjectKeyStore() });
 * const q = await openQueue({ name: 'mail', store: sqliteStore({ path: ':memory:' }), subjectKeys: keys });
 * const { id } = await q.enqueue({ to: 'ada@example.com' }, { subject: 'user-42' });
 * await keys.erase('user-42');
 * console.log((await q.get(id))?.payload); // undefined
 * await q.close();
 * ```
 */
export interface SubjectKeyProvider {
  /** The subject's key as a one-key keyring (`create`: make one if none; `generation`: only that one). */
  ringFor(
    subject: string,
    options?: { create?: boolean; generation?: number },
  ): Promise<{ ring: Keyring; generation: number }>;
}

/** A subject key ready to seal with. @internal */
export interface SubjectSealing {
  readonly subject: string;
  readonly ring: Keyring;
  readonly generation: number;
}

const SUBJECT_PREFIX = 'subject:';
/** How many opened subject keys wait for their item's open (claimed or listed, not yet read). */
const MAX_READY = 10_000;

/** The key id column of an item sealed with a subject key: `subject:<generation>:<subject>`. @internal */
export function subjectItemKeyId(generation: number, subject: string): string {
  return `${SUBJECT_PREFIX}${generation}:${subject}`;
}

function parseSubjectKeyId(keyId: string): { generation: number; subject: string } | undefined {
  if (!keyId.startsWith(SUBJECT_PREFIX)) return undefined;
  const colon = keyId.indexOf(':', SUBJECT_PREFIX.length);
  const generation = Number(keyId.slice(SUBJECT_PREFIX.length, colon));
  if (colon < 0 || !Number.isSafeInteger(generation)) return undefined;
  return { generation, subject: keyId.slice(colon + 1) };
}

/** True when an item's key id names a subject key (such items are not re-wrapped by the queue). @internal */
export const isSubjectKeyId = (keyId: string | null): boolean =>
  keyId !== null && keyId.startsWith(SUBJECT_PREFIX);

/**
 * The store as seen by a queue with subject keys: `claim`, `get` and `list` load the subject keys
 * of the items they return (so the synchronous open finds them). Other methods pass through.
 */
function warmingStore(store: QueueStore, warm: (items: readonly StoredItem[]) => Promise<void>): QueueStore {
  const wrapped: Partial<Record<keyof QueueStore, unknown>> = {
    claim: async (...a: Parameters<QueueStore['claim']>) => {
      const items = await store.claim(...a);
      await warm(items);
      return items;
    },
    get: async (...a: Parameters<QueueStore['get']>) => {
      const item = await store.get(...a);
      if (item !== undefined) await warm([item]);
      return item;
    },
    list: async (...a: Parameters<QueueStore['list']>) => {
      const items = await store.list(...a);
      await warm(items);
      return items;
    },
  };
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const own = wrapped[prop as keyof QueueStore];
      if (own !== undefined) return own;
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      let b = bound.get(prop);
      if (b === undefined) {
        b = (v as (...args: unknown[]) => unknown).bind(target);
        bound.set(prop, b);
      }
      return b;
    },
  });
}

/** Seals and opens the payloads of one queue. @internal */
export class Payloads<T> {
  /** Subject keys loaded for items about to be opened (item id → key, or why there is none). */
  readonly #ready = new Map<string, Keyring | Error>();

  private subjects: SubjectKeyProvider | undefined;

  constructor(
    private readonly queue: string,
    private readonly codec: PayloadCodec<T>,
    private readonly keyring: Keyring | undefined,
  ) {}

  /**
   * Uses per-subject keys (when given): returns the store as the queue must see it, whose
   * `claim`, `get` and `list` load the subject keys of the items they return.
   */
  withSubjectKeys(store: QueueStore, subjects: SubjectKeyProvider | undefined): QueueStore {
    this.subjects = subjects;
    return subjects === undefined ? store : warmingStore(store, (items) => this.warm(items));
  }

  /** The key to seal a payload about `subject` with (created on first use). */
  async sealing(subject: string): Promise<SubjectSealing> {
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 200) {
      throw new ConfigError('enqueue.subject', 'a string of 1-200 characters', subject);
    }
    if (this.subjects === undefined) {
      throw new BulwarkDurableError(
        'KEY_MISSING',
        `Queue "${this.queue}" has no subjectKeys: open it with subjectKeys to enqueue items with a subject`,
      );
    }
    const { ring, generation } = await this.subjects.ringFor(subject, { create: true });
    return { subject, ring, generation };
  }

  /** The sealing key of each entry's subject (undefined for entries without one), one lookup per subject. */
  async sealings(subjects: readonly (string | undefined)[]): Promise<(SubjectSealing | undefined)[]> {
    const bySubject = new Map<string, SubjectSealing>();
    for (const s of subjects)
      if (s !== undefined && !bySubject.has(s)) bySubject.set(s, await this.sealing(s));
    return subjects.map((s) => (s === undefined ? undefined : bySubject.get(s)));
  }

  /**
   * Loads the subject keys of these items (before a synchronous `open`/`view`). An erased subject
   * is remembered as such; any other failure of the key store propagates.
   */
  async warm(items: readonly StoredItem[]): Promise<void> {
    if (this.subjects === undefined) return;
    const byKey = new Map<string, StoredItem[]>();
    for (const item of items) {
      if (!isSubjectKeyId(item.keyId)) continue;
      const list = byKey.get(item.keyId!);
      if (list === undefined) byKey.set(item.keyId!, [item]);
      else list.push(item);
    }
    for (const [keyId, list] of byKey) {
      const parsed = parseSubjectKeyId(keyId);
      let got: Keyring | Error;
      try {
        if (parsed === undefined) throw new Error(`malformed subject key id "${keyId}"`);
        got = (await this.subjects.ringFor(parsed.subject, { generation: parsed.generation })).ring;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SUBJECT_ERASED' && parsed !== undefined) throw error;
        got = error as Error;
      }
      for (const item of list) this.#ready.set(item.id, got);
    }
    for (const id of this.#ready.keys()) {
      if (this.#ready.size <= MAX_READY) break;
      this.#ready.delete(id);
    }
  }

  /** Encodes (and encrypts) a payload for item `id`; with `subject`, under the subject's key. */
  seal(id: string, payload: T, subject?: SubjectSealing): { bytes: Uint8Array; keyId: string | null } {
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
    if (subject !== undefined) {
      const { bytes } = sealPayload(subject.ring, this.queue, id, plain);
      return { bytes, keyId: subjectItemKeyId(subject.generation, subject.subject) };
    }
    if (this.keyring === undefined) return { bytes: plain, keyId: null };
    return sealPayload(this.keyring, this.queue, id, plain);
  }

  #openSubject(item: StoredItem): Uint8Array {
    const got = this.#ready.get(item.id);
    this.#ready.delete(item.id);
    if (got === undefined || got instanceof Error) {
      throw new BulwarkDurableError(
        'DECRYPT_FAILED',
        got === undefined
          ? `Item ${item.id} of queue "${this.queue}" is sealed with a subject key that was not loaded (open the queue with its subjectKeys)`
          : `Item ${item.id} of queue "${this.queue}" is sealed with the key of a data subject that was erased: it can never be decrypted`,
        got === undefined ? undefined : { cause: got },
      );
    }
    return openPayload(got, this.queue, item.id, 's', item.payload);
  }

  /** Decrypts and decodes an item's payload; throws DECRYPT_FAILED or the codec's error. */
  open(item: StoredItem): T {
    let bytes = item.payload;
    if (isSubjectKeyId(item.keyId)) {
      bytes = this.#openSubject(item);
    } else if (item.keyId !== null) {
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
