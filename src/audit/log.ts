/**
 * `openAuditLog`: the tamper-evident audit log. Appends are group-committed (everything that
 * arrives while the previous commit is in flight goes in the next transaction) and resolve only
 * once durable. Entries form a SHA-256 hash chain over RFC 8785 canonical headers; payloads are
 * stored apart under a salted digest (purgeable, encryptable); signed RFC 6962 tree heads
 * (checkpoints) can leave the box; `verify` names the first bad entry.
 * @module
 */

import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import type { Component, ComponentEvent, ComponentOperation, Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter, reportError } from '../core/events.js';
import { joinRegistry } from '../core/registry.js';
import type { PayloadScope } from '../keyring/protector.js';
import { chainAfter } from './chain.js';
import { CHECKPOINT_VERSION, privateKeyOf, signCheckpoint, verifyCheckpoint } from './checkpoint.js';
import {
  type AuditEntry,
  type AuditEntryInput,
  checkInput,
  digestPayload,
  loadCanonical,
  type StoredPayload,
} from './entry.js';
import { BulwarkAuditError } from './errors.js';
import type { AuditLogEvent } from './events.js';
import {
  type AuditLogOptions,
  type AuditRecord,
  type ConsistencyProof,
  DESCRIPTOR,
  type InclusionProof,
  optionsSchema,
  type PurgeOptions,
  type VerifyReport,
} from './log-types.js';
import { consistencyRanges, inclusionRanges, MerkleAccumulator } from './merkle.js';
import { expired } from './retention.js';
import { auditStoreFromSpec } from './spec.js';
import type { AuditFilter, AuditHead, AuditStore, Checkpoint, LegalHold, PreparedEntry } from './store.js';
import { hashRanges, purgePayloads, rewrapBatch } from './store-ops.js';
import { ChainVerifier, type VerifyIssue } from './verify.js';

interface Waiter {
  readonly prepared: PreparedEntry;
  resolve(e: AuditEntry): void;
  reject(e: unknown): void;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The audit log. Create it with `openAuditLog`.
 */
export class AuditLog implements Component {
  readonly kind = 'auditLog';
  readonly name: string;
  readonly descriptor = DESCRIPTOR;
  readonly store: AuditStore;
  readonly #emitter = new PolicyEmitter<AuditLogEvent>();
  readonly #clock: Clock;
  readonly #o: AuditLogOptions & { name: string; maxBatch: number };
  readonly #ready: Promise<void>;
  readonly #signing: KeyObject | undefined;
  readonly #public: KeyObject | undefined;
  #pending: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;
  #closed: Promise<void> | undefined;
  #acc = new MerkleAccumulator();
  #seq = 0;
  #sinceCheckpoint = 0;
  #tampered = false;
  #timer: TimerHandle | undefined;
  #isReady = false; // the store is open: append skips an await
  readonly #counters = { appends: 0, appendFailures: 0, verifies: 0, checkpoints: 0, purges: 0 };

  constructor(options: AuditLogOptions) {
    this.#o = optionsSchema.parse(options, 'openAuditLog') as AuditLogOptions & {
      name: string;
      maxBatch: number;
    };
    this.name = this.#o.name;
    this.#clock = this.#o.clock ?? systemClock;
    const store = typeof this.#o.store === 'string' ? auditStoreFromSpec(this.#o.store) : this.#o.store;
    this.store = store;
    this.#signing = this.#o.signingKey === undefined ? undefined : privateKeyOf(this.#o.signingKey);
    const pub = this.#o.publicKey ?? this.#signing;
    this.#public =
      pub === undefined
        ? undefined
        : typeof pub !== 'string' && pub.type === 'public'
          ? pub
          : createPublicKey(pub);
    this.#ready = (async () => {
      await loadCanonical();
      await store.init();
      this.#seq = (await store.head()).seq;
      this.#isReady = true;
    })();
    this.#ready.catch(() => {});
    this.#armTimer();
    joinRegistry(this.#o.registry, this);
  }

  #armTimer(): void {
    const ms = this.#o.checkpoints?.everyMs;
    if (ms === undefined || this.#signing === undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#autoCheckpoint();
      if (this.#closed === undefined) this.#armTimer();
    }, ms);
    this.#timer.unref();
  }

  async #open(): Promise<void> {
    if (this.#closed !== undefined)
      throw new BulwarkAuditError('CLOSED', `The audit log "${this.name}" is closed`);
    await this.#ready;
  }

  #scope(digest: string, subject: string | null): PayloadScope {
    return { namespace: `audit:${this.name}`, id: digest, subject };
  }

  /**
   * Appends an entry; resolves with it (seq, hash) once it is durable.
   */
  append(input: AuditEntryInput): Promise<AuditEntry> {
    // The common path (store open, payloads not sealed) makes one promise, the waiter's.
    if (!this.#isReady || this.#closed !== undefined || this.#o.encryption !== undefined) {
      return this.#appendAfterAwaits(input);
    }
    let prepared: PreparedEntry;
    try {
      prepared = checkInput(input, this.#clock.date());
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(prepared);
  }

  /** `append` when the store is still opening, the log is closed or payloads are sealed. */
  async #appendAfterAwaits(input: AuditEntryInput): Promise<AuditEntry> {
    if (!this.#isReady || this.#closed !== undefined) await this.#open();
    const { header, payload: p } = checkInput(input, this.#clock.date());
    const enc = this.#o.encryption;
    if (p === null || enc === undefined) return this.#enqueue({ header, payload: p });
    const sealed = await enc.seal(this.#scope(p.digest, header.subject), p.body);
    return this.#enqueue({ header, payload: { salt: p.salt, body: sealed.bytes, keyId: sealed.keyId } });
  }

  #enqueue(prepared: PreparedEntry): Promise<AuditEntry> {
    return new Promise<AuditEntry>((resolve, reject) => {
      this.#pending.push({ prepared, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing !== undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending.splice(0, this.#o.maxBatch);
    if (batch.length === 0) return;
    try {
      const prepared = new Array<PreparedEntry>(batch.length);
      for (let i = 0; i < batch.length; i++) prepared[i] = batch[i]!.prepared;
      const entries = await this.store.append(prepared, chainAfter);
      this.#counters.appends += entries.length;
      const last = entries[entries.length - 1]!;
      this.#seq = last.seq;
      this.#sinceCheckpoint += entries.length;
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(entries[i]!);
      if (this.#emitter.wants('appended'))
        this.#emit({ event: 'appended', seq: last.seq, count: entries.length });
      const every = this.#o.checkpoints?.everyEntries;
      if (every !== undefined && this.#sinceCheckpoint >= every) this.#autoCheckpoint();
    } catch (error) {
      this.#counters.appendFailures += batch.length;
      const err =
        error instanceof BulwarkAuditError
          ? error
          : new BulwarkAuditError(
              'STORE_UNAVAILABLE',
              `The audit store ${this.store.description} refused the commit; nothing of this batch was written, retry`,
              {
                cause: error,
              },
            );
      for (const w of batch) w.reject(err);
    }
  }

  #autoCheckpoint(): void {
    if (this.#signing === undefined || this.#closed !== undefined) return;
    this.#sinceCheckpoint = 0;
    this.checkpoint().then(
      (cp) => this.#o.checkpoints?.onCheckpoint?.(cp),
      (error: unknown) => this.#emit({ event: 'error', operation: 'checkpoint', error }),
    );
  }

  #emit(e: { event: AuditLogEvent['event'] } & Record<string, unknown>): void {
    if (!this.#emitter.active) return;
    this.#emitter.emit({
      kind: 'auditLog',
      name: this.name,
      priority: 'normal',
      operation: undefined,
      attempt: 0,
      ...e,
    } as AuditLogEvent);
  }

  /** The head: the last committed entry's seq and hash. */
  async head(): Promise<AuditHead> {
    await this.#open();
    return this.store.head();
  }

  /** Entries matching `filter`, with their payloads when `payloads: true`. */
  async list(filter: AuditFilter & { readonly payloads?: boolean } = {}): Promise<AuditRecord[]> {
    await this.#open();
    const { payloads: withPayloads, ...f } = filter;
    const entries = await this.store.list(f);
    if (withPayloads !== true)
      return entries.map((e) => ({ ...e, payloadState: e.payloadDigest === null ? 'none' : 'present' }));
    const rows = new Map(
      (await this.store.payloads(entries.filter((e) => e.payloadDigest !== null).map((e) => e.seq))).map(
        (p) => [p.seq, p],
      ),
    );
    return Promise.all(entries.map((e) => this.#withPayload(e, rows.get(e.seq))));
  }

  async #openPayload(e: AuditEntry, p: StoredPayload): Promise<Uint8Array> {
    if (p.keyId === null) return p.body;
    if (this.#o.encryption === undefined) {
      throw new BulwarkAuditError(
        'STORE_UNAVAILABLE',
        `Entry ${e.seq}'s payload is encrypted: give the log its \`encryption\``,
      );
    }
    return this.#o.encryption.open(this.#scope(e.payloadDigest ?? '', e.subject), p.keyId, p.body);
  }

  async #withPayload(e: AuditEntry, p: StoredPayload | undefined): Promise<AuditRecord> {
    if (e.payloadDigest === null) return { ...e, payloadState: 'none' };
    if (p === undefined) return { ...e, payloadState: 'purged' };
    try {
      const bytes = await this.#openPayload(e, p);
      return { ...e, payloadState: 'present', payload: JSON.parse(Buffer.from(bytes).toString('utf8')) };
    } catch (error) {
      if ((error as { code?: string }).code === 'SUBJECT_ERASED') return { ...e, payloadState: 'unreadable' };
      throw error;
    }
  }

  /** One entry (with its payload), or undefined. */
  async get(seq: number): Promise<AuditRecord | undefined> {
    const [e] = await this.list({ afterSeq: seq - 1, beforeSeq: seq + 1, limit: 1, payloads: true });
    return e;
  }

  /**
   * Walks the whole log: chain, payload digests, checkpoints. `onProgress(done, total)` is
   * called after each page.
   */
  async verify(
    options: {
      payloads?: boolean;
      pageSize?: number;
      onProgress?: (done: number, total: number) => void;
    } = {},
  ): Promise<VerifyReport> {
    await this.#open();
    this.#counters.verifies++;
    const head = await this.store.head();
    const cps = await this.store.checkpoints();
    const targets = cps.map((c) => ({
      treeSize: c.treeSize,
      rootHash: c.rootHash,
      signatureOk: this.#public === undefined || verifyCheckpoint(c, this.#public),
    }));
    const v = new ChainVerifier(targets);
    const payloadIssues: VerifyIssue[] = [];
    let checked = 0;
    let unreadable = 0;
    for await (const page of this.store.scan(1, head.seq, options.pageSize ?? 5000)) {
      for (const e of page) v.push(e);
      if (options.payloads !== false) {
        const rows = await this.store.payloads(
          page.filter((e) => e.payloadDigest !== null).map((e) => e.seq),
        );
        const bySeq = new Map(page.map((e) => [e.seq, e]));
        for (const p of rows) {
          const r = await this.#checkPayload(bySeq.get(p.seq)!, p);
          if (r === 'unreadable') unreadable++;
          else if (r !== 'ok') payloadIssues.push({ seq: p.seq, reason: 'payload', message: r });
          checked++;
        }
      }
      options.onProgress?.(v.size, head.seq);
    }
    // An entry past the head that no append recorded was inserted behind the log's back.
    const [beyond] = await this.store.list({ afterSeq: head.seq, limit: 1 });
    if (beyond !== undefined && (await this.store.head()).seq < beyond.seq) v.push(beyond);
    const issues = [...v.finish(head), ...payloadIssues].sort((a, b) => a.seq - b.seq);
    const ok = issues.length === 0;
    this.#tampered = !ok;
    this.#emit({ event: 'verified', ok, firstBad: issues[0] });
    return {
      ok,
      entries: v.size,
      rootHash: v.rootHash(),
      checkpoints: cps.length,
      signaturesChecked: this.#public !== undefined,
      payloads: { checked, unreadable },
      firstBad: issues[0],
      issues,
    };
  }

  async #checkPayload(e: AuditEntry, p: StoredPayload): Promise<'ok' | 'unreadable' | string> {
    if (e.payloadDigest === null)
      return `entry ${e.seq} has no payload digest but a payload is stored for it`;
    if (p.keyId !== null && this.#o.encryption === undefined) return 'unreadable';
    let bytes: Uint8Array;
    try {
      bytes = await this.#openPayload(e, p);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'SUBJECT_ERASED' || code === 'KEY_MISSING') return 'unreadable';
      return `entry ${e.seq}'s payload does not decrypt: it was altered`;
    }
    return digestPayload(bytes, p.salt) === e.payloadDigest
      ? 'ok'
      : `entry ${e.seq}'s payload does not match its digest: it was altered`;
  }

  /** Brings the cached tree up to `size` entries (reading only the entries not yet seen). */
  async #treeAt(size: number): Promise<MerkleAccumulator> {
    if (this.#acc.size > size) this.#acc = new MerkleAccumulator();
    for await (const page of this.store.scan(this.#acc.size + 1, size, 5000)) {
      for (const e of page) this.#acc.push(Buffer.from(e.hash, 'hex'));
    }
    if (this.#acc.size !== size)
      throw new BulwarkAuditError(
        'NOT_FOUND',
        `The log has ${this.#acc.size} entries, not ${size}: run verify`,
      );
    return this.#acc;
  }

  /** Signs the current tree head and stores it; send the result off the box. */
  async checkpoint(): Promise<Checkpoint> {
    await this.#open();
    if (this.#signing === undefined) {
      throw new BulwarkAuditError(
        'NO_SIGNING_KEY',
        "checkpoint() needs the log's `signingKey` (an Ed25519 private key)",
      );
    }
    const head = await this.store.head();
    const acc = await this.#treeAt(head.seq);
    const cp = signCheckpoint(
      {
        v: CHECKPOINT_VERSION,
        log: this.name,
        treeSize: head.seq,
        rootHash: hex(acc.root()),
        time: this.#clock.date(),
      },
      this.#signing,
    );
    await this.store.addCheckpoint(cp);
    this.#counters.checkpoints++;
    this.#emit({ event: 'checkpoint', treeSize: cp.treeSize });
    return cp;
  }

  /** Stored checkpoints, by ascending tree size. */
  async checkpoints(): Promise<Checkpoint[]> {
    await this.#open();
    return this.store.checkpoints();
  }

  /** The inclusion proof of entry `seq` in the tree of the first `treeSize` entries (default: all). */
  async proof(seq: number, treeSize?: number): Promise<InclusionProof> {
    await this.#open();
    const size = treeSize ?? (await this.store.head()).seq;
    if (!Number.isSafeInteger(seq) || seq < 1 || seq > size) {
      throw new BulwarkAuditError('NOT_FOUND', `No entry ${seq} in a tree of ${size} entries`);
    }
    const { hashes, roots } = await hashRanges(this.store, inclusionRanges(seq - 1, size), [size]);
    const [entry] = await this.store.list({ afterSeq: seq - 1, limit: 1 });
    return { seq, treeSize: size, leafHash: entry!.hash, path: hashes, rootHash: roots[0]! };
  }

  /** The consistency proof between the trees of `first` and `second` entries (default: all). */
  async consistency(first: number, second?: number): Promise<ConsistencyProof> {
    await this.#open();
    const size = second ?? (await this.store.head()).seq;
    if (!Number.isSafeInteger(first) || first < 1 || first > size) {
      throw new BulwarkAuditError(
        'NOT_FOUND',
        `A consistency proof needs 1 <= first (${first}) <= second (${size})`,
      );
    }
    const { hashes, roots } = await hashRanges(this.store, consistencyRanges(first, size), [first, size]);
    return { first, second: size, firstRoot: roots[0]!, secondRoot: roots[1]!, path: hashes };
  }

  /** Current legal holds. */
  async holds(): Promise<LegalHold[]> {
    await this.#open();
    return this.store.holds();
  }

  /** Places a legal hold (recorded as an entry): matching payloads are never purged while it lasts. */
  async hold(h: {
    id: string;
    tags?: readonly string[];
    subject?: string;
    reason: string;
    actor: string;
  }): Promise<LegalHold> {
    await this.#open();
    const hold: LegalHold = {
      id: h.id,
      tags: [...(h.tags ?? [])],
      subject: h.subject ?? null,
      reason: h.reason,
      since: this.#clock.date(),
    };
    await this.store.putHold(hold);
    await this.append({
      actor: h.actor,
      action: 'audit.hold',
      resource: `audit:${this.name}`,
      tags: ['audit'],
      payload: hold,
    });
    return hold;
  }

  /** Lifts a legal hold (recorded as an entry). */
  async release(id: string, by: { actor: string; reason: string }): Promise<boolean> {
    await this.#open();
    const had = await this.store.deleteHold(id);
    if (had)
      await this.append({
        actor: by.actor,
        action: 'audit.release',
        resource: `audit:${this.name}`,
        tags: ['audit'],
        payload: { id, reason: by.reason },
      });
    return had;
  }

  /** Purges payloads matching `selection` (never held ones) and records the purge as an entry. */
  async purge(options: PurgeOptions): Promise<{ purged: number; held: number; entry: AuditEntry }> {
    await this.#open();
    const { actor, reason, seqs, before, ...filter } = options;
    const select = (e: AuditEntry) =>
      (seqs === undefined || seqs.includes(e.seq)) && (before === undefined || e.time < before);
    return this.#purgeWhere({ ...filter, ...(before === undefined ? {} : { until: before }) }, select, {
      actor,
      reason,
      selection: { seqs, before, ...filter },
    });
  }

  /** Purges payloads whose retention (per tag) has passed, except held ones; records it as an entry. */
  async applyRetention(
    by: { actor?: string } = {},
  ): Promise<{ purged: number; held: number; entry: AuditEntry }> {
    await this.#open();
    const policy = this.#o.retention ?? {};
    const now = this.#clock.date();
    return this.#purgeWhere({}, (e) => expired(e, policy, now), {
      actor: by.actor ?? 'system',
      reason: 'retention',
      selection: { retention: policy },
    });
  }

  async #purgeWhere(
    filter: AuditFilter,
    select: (e: AuditEntry) => boolean,
    record: { actor: string; reason: string; selection: unknown },
  ): Promise<{ purged: number; held: number; entry: AuditEntry }> {
    const { purged, held } = await purgePayloads(this.store, filter, select);
    this.#counters.purges += purged;
    this.#emit({ event: 'purged', count: purged, held });
    const entry = await this.append({
      actor: record.actor,
      action: 'audit.purge',
      resource: `audit:${this.name}`,
      tags: ['audit'],
      payload: { reason: record.reason, selection: record.selection, purged, held },
    });
    return { purged, held, entry };
  }

  /**
   * Re-wraps encrypted payloads with the current key (after a rotation), in batches of
   * `batchSize`, at most `maxBatches` (default: until done); resume from `cursor`.
   */
  async rewrapPayloads(
    options: { batchSize?: number; cursor?: number; maxBatches?: number } = {},
  ): Promise<{ rewrapped: number; failed: number; cursor: number; done: boolean }> {
    await this.#open();
    const enc = this.#o.encryption;
    if (enc === undefined) return { rewrapped: 0, failed: 0, cursor: 0, done: true };
    let total = { rewrapped: 0, failed: 0, cursor: options.cursor ?? 0, done: false };
    for (let i = 0; i < (options.maxBatches ?? Number.POSITIVE_INFINITY) && !total.done; i++) {
      const r = await rewrapBatch(
        this.store,
        enc,
        (e) => this.#scope(e.payloadDigest ?? '', e.subject),
        total.cursor,
        options.batchSize ?? 500,
      );
      total = {
        rewrapped: total.rewrapped + r.rewrapped,
        failed: total.failed + r.failed,
        cursor: r.cursor,
        done: r.done,
      };
    }
    return total;
  }

  /** The control plane's views of this log (see `auditOperations`). */
  operations(): readonly ComponentOperation[] {
    return auditOperations(this);
  }

  snapshot(): Snapshot {
    return {
      kind: 'auditLog',
      name: this.name,
      state: this.#closed !== undefined ? 'closed' : this.#tampered ? 'tampered' : 'open',
      gauges: { seq: this.#seq, pending: this.#pending.length },
      counters: { ...this.#counters },
      details: { store: this.store.description, signed: this.#signing !== undefined },
    };
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.#emitter.on(listener as Listener<AuditLogEvent>);
  }

  /** Waits for pending appends to commit, then closes the store. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      await this.#ready.catch(() => {});
      while (this.#flushing !== undefined || this.#pending.length > 0 || this.#scheduled) {
        await (this.#flushing ?? new Promise((r) => setImmediate(r)));
      }
      await this.store.close().catch((e: unknown) => reportError('Closing the audit store', e));
      this.#o.registry?.unregister(this);
    })();
    return this.#closed;
  }
}

/**
 * Opens an audit log (returns at once; the store opens in the background, and every method
 * waits for it).
 *
 * @example
 * ```ts
 * import { openAuditLog } from 'bulwark/audit';
 * const log = openAuditLog({ store: 'sqlite::memory:' });
 * const e = await log.append({ actor: 'alice', action: 'refund', resource: 'order:42', tags: ['sox'], payload: { amount: 10 } });
 * console.log(e.seq, (await log.verify()).ok); // 1 true
 * await log.close();
 * ```
 */
export function openAuditLog(options: AuditLogOptions): AuditLog {
  return new AuditLog(options);
}

import { auditOperations } from './operations.js';
