/**
 * Chain verification, one entry at a time (flat memory for any log size): every entry must
 * carry the next sequence number, link to the previous entry's hash, and hash to its stored
 * hash; the Merkle tree head at each stored checkpoint's size must equal the signed one. The
 * first problem names the entry where the stored log stops being a valid chain.
 * @module
 */

import type { AuditEntry } from './entry.js';
import { ENTRY_VERSION, GENESIS_HASH, hashHeader } from './entry.js';
import { MerkleAccumulator } from './merkle.js';

/**
 * Why verification failed at an entry:
 * - `missing`: the entry with this seq is absent (deleted), the next one follows a gap;
 * - `order`: an entry's seq is not above the previous one;
 * - `hash`: the entry's fields do not hash to its stored hash (it was edited, or moved);
 * - `link`: the entry's prevHash is not the previous entry's hash (the previous entry was
 *   rewritten with a recomputed hash, or an entry was inserted before this one);
 * - `version`: an unknown header format;
 * - `extra`: entries follow the head recorded with the last append (appended behind the log's back);
 * - `truncated`: the log ends before its recorded head or a checkpoint's tree size;
 * - `checkpoint`: the tree head at a checkpoint's size differs from the signed one, or its
 *   signature does not verify;
 * - `payload`: a stored payload does not match its entry's digest, or has no entry digest.
 */
export type VerifyReason =
  | 'extra'
  | 'missing'
  | 'order'
  | 'hash'
  | 'link'
  | 'version'
  | 'truncated'
  | 'checkpoint'
  | 'payload';

/** One problem found by `verify`. */
export interface VerifyIssue {
  readonly seq: number;
  readonly reason: VerifyReason;
  readonly message: string;
}

/** A signed tree head to check while walking the chain. */
export interface CheckpointTarget {
  readonly treeSize: number;
  readonly rootHash: string;
  /** False when its signature did not verify (reported as a `checkpoint` issue). */
  readonly signatureOk: boolean;
}

/**
 * Walks a chain entry by entry. Push entries in seq order, then `finish()`.
 *
 * @example
 * ```ts
 * import { ChainVerifier } from 'bulwark/audit';
 * const v = new ChainVerifier();
 * console.log(v.finish({ seq: 0, hash: '0'.repeat(64) })); // []
 * ```
 */
export class ChainVerifier {
  readonly issues: VerifyIssue[] = [];
  readonly #acc = new MerkleAccumulator();
  readonly #targets: CheckpointTarget[];
  #expected = 1;
  #prev = GENESIS_HASH;
  #last = 0;
  readonly #max: number;

  constructor(checkpoints: readonly CheckpointTarget[] = [], maxIssues = 100) {
    this.#targets = [...checkpoints].sort((a, b) => a.treeSize - b.treeSize);
    this.#max = maxIssues;
    for (const t of this.#targets)
      if (!t.signatureOk)
        this.#issue(
          t.treeSize,
          'checkpoint',
          `the signature of the checkpoint at tree size ${t.treeSize} does not verify`,
        );
    this.#checkTargets();
  }

  /** Entries walked so far. */
  get size(): number {
    return this.#acc.size;
  }

  /** The RFC 6962 tree head (hex) over the entries walked so far. */
  rootHash(): string {
    return Buffer.from(this.#acc.root()).toString('hex');
  }

  #issue(seq: number, reason: VerifyReason, message: string): void {
    if (this.issues.length < this.#max) this.issues.push({ seq, reason, message });
  }

  push(e: AuditEntry): void {
    if (e.seq < this.#expected) {
      this.#issue(e.seq, 'order', `entry ${e.seq} comes after entry ${this.#last}`);
    } else if (e.seq > this.#expected) {
      this.#issue(
        this.#expected,
        'missing',
        e.seq === this.#expected + 1
          ? `entry ${this.#expected} is missing (deleted)`
          : `entries ${this.#expected}..${e.seq - 1} are missing (deleted)`,
      );
    }
    let computed: string;
    try {
      computed = hashHeader(e);
    } catch {
      computed = '';
    }
    if (e.v !== ENTRY_VERSION)
      this.#issue(e.seq, 'version', `entry ${e.seq} has header version ${e.v}, expected ${ENTRY_VERSION}`);
    else if (computed !== e.hash)
      this.#issue(e.seq, 'hash', `entry ${e.seq} was altered: its fields do not hash to its stored hash`);
    else if (e.prevHash !== this.#prev)
      this.#issue(
        e.seq,
        'link',
        `entry ${e.seq} does not follow the entry before it: that entry was rewritten (hash recomputed) or an entry was inserted`,
      );
    // The tree and the chain continue from what is stored, so one bad entry is reported once.
    this.#acc.push(Buffer.from(e.hash.length === 64 ? e.hash : computed.padEnd(64, '0'), 'hex'));
    this.#prev = e.hash;
    this.#expected = e.seq + 1;
    this.#last = e.seq;
    this.#checkTargets();
  }

  #checkTargets(): void {
    while (this.#targets.length > 0 && this.#targets[0]!.treeSize <= this.#acc.size) {
      const t = this.#targets.shift()!;
      if (t.treeSize === this.#acc.size && this.rootHash() !== t.rootHash) {
        this.#issue(
          t.treeSize,
          'checkpoint',
          `the tree head over entries 1..${t.treeSize} differs from the signed checkpoint: an entry at or before ${t.treeSize} was changed`,
        );
      }
    }
  }

  /** Ends the walk: the log must reach its recorded head and every checkpoint. Returns the issues, first bad first. */
  finish(head: { seq: number; hash: string }): VerifyIssue[] {
    if (head.seq === this.#last && head.seq > 0 && head.hash !== this.#prev) {
      this.#issue(
        head.seq,
        'hash',
        `entry ${head.seq} differs from the head recorded when it was appended: it was rewritten`,
      );
    } else if (head.seq > this.#last) {
      this.#issue(
        this.#last + 1,
        'truncated',
        `the log ends at entry ${this.#last} but its head records entry ${head.seq}: entries were removed from the end`,
      );
    }
    if (this.#last > head.seq) {
      this.#issue(
        head.seq + 1,
        'extra',
        `entries ${head.seq + 1}..${this.#last} follow the head recorded with the last append: they were inserted`,
      );
    }
    for (const t of this.#targets) {
      this.#issue(
        this.#last + 1,
        'truncated',
        `the log ends at entry ${this.#last} but a signed checkpoint covers ${t.treeSize} entries`,
      );
    }
    this.#targets.length = 0;
    return [...this.issues].sort((a, b) => a.seq - b.seq);
  }
}
