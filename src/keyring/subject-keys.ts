/**
 * Per-subject data keys for crypto-shredding. Each data subject gets a random 256-bit key, kept
 * wrapped by the master keyring (the durable envelope: AES-256-GCM, key id in every envelope)
 * in a small table. Payloads about the subject are sealed with it; `erase(subject)` destroys
 * it, and every payload sealed with it becomes unreadable for good — wherever copies of the
 * ciphertext live (backups, exports of encrypted rows, queue items).
 * @module
 */

import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { type Keyring, keyring, openPayload, rewrapPayload, sealPayload } from '../durable/encryption.js';
import { BulwarkKeyringError } from './errors.js';

const NS = 'bulwark/subject-keys';

/** A stored subject key: wrapped by the master keyring. `generation` grows with each new key of a subject. */
export interface SubjectKeyRecord {
  readonly subject: string;
  readonly generation: number;
  /** The master key id that wraps it (null once erased). */
  readonly keyId: string | null;
  /** The wrapped key (null once erased: a tombstone keeps the generation). */
  readonly wrapped: Uint8Array | null;
  readonly erasedAt: number | null;
}

/** Where subject keys live. Built in: memory (tests), SQLite, PostgreSQL. */
export interface SubjectKeyStore {
  init(): Promise<void>;
  get(subject: string): Promise<SubjectKeyRecord | undefined>;
  /** Inserts or replaces. */
  put(record: SubjectKeyRecord): Promise<void>;
  /**
   * Stores a NEW key: only when the subject has no row (generation 1) or its row is an erased
   * one of generation `record.generation - 1`. False when another writer got there first.
   * Without it, concurrent first uses of a subject could each make a key and lose one.
   */
  create?(record: SubjectKeyRecord): Promise<boolean>;
  list(afterSubject: string, limit: number): Promise<SubjectKeyRecord[]>;
  close(): Promise<void>;
}

/**
 * An in-memory subject key store (tests, examples).
 *
 * @example
 * ```ts
 * import { memorySubjectKeyStore } from 'bulwark/keyring';
 * const store = memorySubjectKeyStore();
 * ```
 */
export function memorySubjectKeyStore(): SubjectKeyStore {
  const rows = new Map<string, SubjectKeyRecord>();
  return {
    init: async () => {},
    get: async (s) => rows.get(s),
    put: async (r) => {
      rows.set(r.subject, r);
    },
    create: async (r) => {
      const old = rows.get(r.subject);
      const free =
        old === undefined ? r.generation === 1 : old.wrapped === null && old.generation === r.generation - 1;
      if (free) rows.set(r.subject, r);
      return free;
    },
    list: async (after, limit) =>
      [...rows.values()]
        .filter((r) => r.subject > after)
        .sort((a, b) => (a.subject < b.subject ? -1 : 1))
        .slice(0, limit),
    close: async () => {},
  };
}

/**
 * A SQLite subject key store (one table; keep it in the same file as the data it protects, or
 * its own file).
 *
 * @example
 * ```ts
 * import { sqliteSubjectKeyStore } from 'bulwark/keyring';
 * const store = sqliteSubjectKeyStore({ path: ':memory:' });
 * ```
 */
export function sqliteSubjectKeyStore(options: { path: string; table?: string }): SubjectKeyStore {
  const t = options.table ?? 'bulwark_subject_keys';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(t))
    throw new BulwarkKeyringError('SOURCE_FAILED', 'table must be a plain SQL identifier');
  let db: BetterSqlite3.Database | undefined;
  const row = (r: Record<string, unknown> | undefined): SubjectKeyRecord | undefined =>
    r === undefined
      ? undefined
      : {
          subject: r.subject as string,
          generation: Number(r.generation),
          keyId: (r.key_id as string | null) ?? null,
          wrapped: (r.wrapped as Buffer | null) ?? null,
          erasedAt: r.erased_at === null ? null : Number(r.erased_at),
        };
  const ready = () => {
    if (db === undefined)
      throw new BulwarkKeyringError('SOURCE_FAILED', 'The subject key store is closed or not initialised');
    return db;
  };
  return {
    async init() {
      if (db !== undefined) return;
      const Database = (await import('better-sqlite3')).default;
      db = new Database(options.path);
      if (options.path !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${t} (subject TEXT PRIMARY KEY, generation INTEGER NOT NULL, key_id TEXT, wrapped BLOB, erased_at INTEGER)`,
      );
    },
    get: async (subject) =>
      row(
        ready().prepare(`SELECT * FROM ${t} WHERE subject = ?`).get(subject) as
          | Record<string, unknown>
          | undefined,
      ),
    async put(r) {
      ready()
        .prepare(
          `INSERT OR REPLACE INTO ${t} (subject, generation, key_id, wrapped, erased_at) VALUES (?, ?, ?, ?, ?)`,
        )
        .run(r.subject, r.generation, r.keyId, r.wrapped, r.erasedAt);
    },
    async create(r) {
      return (
        ready()
          .prepare(
            `INSERT INTO ${t} (subject, generation, key_id, wrapped, erased_at) VALUES (?, ?, ?, ?, NULL)
             ON CONFLICT (subject) DO UPDATE SET generation = excluded.generation, key_id = excluded.key_id,
               wrapped = excluded.wrapped, erased_at = NULL
             WHERE ${t}.wrapped IS NULL AND ${t}.generation = excluded.generation - 1`,
          )
          .run(r.subject, r.generation, r.keyId, r.wrapped).changes === 1
      );
    },
    list: async (after, limit) =>
      (
        ready()
          .prepare(`SELECT * FROM ${t} WHERE subject > ? ORDER BY subject LIMIT ?`)
          .all(after, limit) as Record<string, unknown>[]
      ).map((r) => row(r)!),
    async close() {
      db?.close();
      db = undefined;
    },
  };
}

/** Options of `subjectKeys`. */
export interface SubjectKeysOptions {
  /** The master keyring that wraps subject keys. */
  readonly keyring: Keyring;
  readonly store: SubjectKeyStore;
  /** Clock for `erasedAt` (epoch ms). */
  readonly now?: () => number;
}

/** The key id written for payloads sealed with generation `g` of a subject key. */
export const subjectKeyId = (generation: number): string => `subject:${generation}`;

/**
 * Per-subject data keys. `ringFor(subject)` gives a one-key keyring for sealing; `erase`
 * destroys the key (crypto-shredding).
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * import { memorySubjectKeyStore, subjectKeys } from 'bulwark/keyring';
 * const keys = subjectKeys({ keyring: keyring([{ id: 'k1', key: randomBytes(32) }]), store: memorySubjectKeyStore() });
 * await keys.ringFor('user-42', { create: true });
 * await keys.erase('user-42');
 * console.log(await keys.isErased('user-42')); // true
 * ```
 */
export class SubjectKeys {
  readonly #o: SubjectKeysOptions;
  #init: Promise<void> | undefined;

  constructor(options: SubjectKeysOptions) {
    this.#o = options;
  }

  async #ready(): Promise<SubjectKeyStore> {
    this.#init ??= this.#o.store.init();
    await this.#init;
    return this.#o.store;
  }

  /**
   * The subject's current key as a one-key keyring (id `s`) and its generation. With `create`,
   * makes one when the subject has none (or was erased: a new generation). With `generation`,
   * only that generation: an older (erased) one throws `SUBJECT_ERASED`.
   */
  async ringFor(
    subject: string,
    options: { create?: boolean; generation?: number } = {},
  ): Promise<{ ring: Keyring; generation: number }> {
    const store = await this.#ready();
    const rec = await store.get(subject);
    if (
      (rec === undefined || rec.wrapped === null) &&
      options.create === true &&
      options.generation === undefined
    ) {
      const generation = (rec?.generation ?? 0) + 1;
      const raw = randomBytes(32);
      try {
        const { bytes, keyId } = sealPayload(this.#o.keyring, NS, subject, raw);
        const fresh = { subject, generation, keyId, wrapped: bytes, erasedAt: null };
        if (store.create === undefined) await store.put(fresh);
        else if (!(await store.create(fresh))) {
          // Another writer made the subject's key first: use theirs.
          return this.ringFor(subject, options);
        }
        return { ring: keyring([{ id: 's', key: raw }]), generation };
      } finally {
        raw.fill(0);
      }
    }
    if (
      rec === undefined ||
      rec.wrapped === null ||
      rec.keyId === null ||
      (options.generation !== undefined && options.generation !== rec.generation)
    ) {
      throw new BulwarkKeyringError(
        'SUBJECT_ERASED',
        'The data subject was erased (or never had a key): its payloads cannot be decrypted',
      );
    }
    const raw = Buffer.from(openPayload(this.#o.keyring, NS, subject, rec.keyId, rec.wrapped));
    try {
      return { ring: keyring([{ id: 's', key: raw }]), generation: rec.generation };
    } finally {
      raw.fill(0);
    }
  }

  /** Destroys the subject's key: everything sealed with it is unreadable from now on. Returns false when it had none. */
  async erase(subject: string): Promise<boolean> {
    const store = await this.#ready();
    const rec = await store.get(subject);
    if (rec === undefined || rec.wrapped === null) return false;
    await store.put({
      subject,
      generation: rec.generation,
      keyId: null,
      wrapped: null,
      erasedAt: (this.#o.now ?? Date.now)(),
    });
    return true;
  }

  /** True when the subject's key was destroyed. */
  async isErased(subject: string): Promise<boolean> {
    const rec = await (await this.#ready()).get(subject);
    return rec !== undefined && rec.wrapped === null;
  }

  /** Re-wraps every subject key with the master keyring's current key (after a rotation). */
  async rewrap(options: { batchSize?: number } = {}): Promise<{ rewrapped: number; failed: number }> {
    const store = await this.#ready();
    let after = '';
    let rewrapped = 0;
    let failed = 0;
    for (;;) {
      const page = await store.list(after, options.batchSize ?? 500);
      if (page.length === 0) break;
      after = page[page.length - 1]!.subject;
      for (const r of page) {
        if (r.wrapped === null || r.keyId === null || r.keyId === this.#o.keyring.currentKeyId) continue;
        try {
          const next = rewrapPayload(this.#o.keyring, NS, r.subject, r.keyId, r.wrapped);
          await store.put({ ...r, keyId: next.keyId, wrapped: next.bytes });
          rewrapped++;
        } catch {
          failed++;
        }
      }
    }
    return { rewrapped, failed };
  }

  close(): Promise<void> {
    return this.#o.store.close();
  }
}

/**
 * Creates the per-subject key manager.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * import { memorySubjectKeyStore, subjectKeys } from 'bulwark/keyring';
 * const keys = subjectKeys({ keyring: keyring([{ id: 'k1', key: randomBytes(32) }]), store: memorySubjectKeyStore() });
 * ```
 */
export function subjectKeys(options: SubjectKeysOptions): SubjectKeys {
  return new SubjectKeys(options);
}
