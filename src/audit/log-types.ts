/**
 * The options and result types of the audit log, its option schema and component descriptor.
 * @module
 */

import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { ComponentDescriptor } from '../core/component.js';
import type { Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import type { PayloadProtector } from '../keyring/protector.js';
import type { SigningKey } from './checkpoint.js';
import type { AuditEntry } from './entry.js';
import type { RetentionPolicy } from './retention.js';
import type { AuditStore, Checkpoint } from './store.js';
import type { VerifyIssue } from './verify.js';

/** Options of `openAuditLog`. */
export interface AuditLogOptions {
  /** `sqlite:./audit.db`, `postgres://…` (add `?schema=NAME` for a schema), or a store object. */
  readonly store: string | AuditStore;
  /** The log's name (component name, checkpoint `log` field, encryption namespace). Default `audit`. */
  readonly name?: string;
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** Encrypts payloads (`payloadEncryption({ keyring, subjectKeys })` from `bulwark/keyring`). */
  readonly encryption?: PayloadProtector;
  /** Ed25519 private key that signs checkpoints. */
  readonly signingKey?: SigningKey;
  /** Public key checkpoints are verified with (default: the signing key's). */
  readonly publicKey?: KeyObject | string;
  /** Automatic checkpoints: every N entries and/or every T ms, each handed to `onCheckpoint` (send it off the box). */
  readonly checkpoints?: {
    readonly everyEntries?: number;
    readonly everyMs?: number;
    readonly onCheckpoint?: (checkpoint: Checkpoint) => void | Promise<void>;
  };
  /** Payload retention per tag, in ms (see `RetentionPolicy`). */
  readonly retention?: RetentionPolicy;
  /** Most entries per commit. Default 5 000. */
  readonly maxBatch?: number;
}

export const optionsSchema = s.object({
  store: s.union([
    s.string(),
    s.custom('a store object', (v, p) =>
      typeof v === 'object' && v !== null ? v : s.fail(p, 'a store object', v),
    ),
  ]),
  name: s.optional(
    s.string({ pattern: /^[A-Za-z0-9._-]{1,64}$/, patternRule: '1-64 characters of A-Z a-z 0-9 . _ -' }),
    'audit',
  ),
  registry: s.optional(s.unknown()),
  clock: s.optional(s.unknown()),
  encryption: s.optional(s.unknown()),
  signingKey: s.optional(s.unknown()),
  publicKey: s.optional(s.unknown()),
  checkpoints: s.optional(
    s.object({
      everyEntries: s.optional(s.int({ min: 1 })),
      everyMs: s.optional(s.duration({ positive: true })),
      onCheckpoint: s.optional(s.fn()),
    }),
  ),
  retention: s.optional(s.record(s.duration())),
  maxBatch: s.optional(s.int({ min: 1, max: 100_000 }), 5000),
});

/** An entry with its payload, as `list({ payloads: true })` returns it. */
export interface AuditRecord extends AuditEntry {
  /** `none` (no payload), `present` (in `payload`), `purged`, or `unreadable` (subject erased / key gone). */
  readonly payloadState: 'none' | 'present' | 'purged' | 'unreadable';
  readonly payload?: unknown;
}

/** What `verify` found. */
export interface VerifyReport {
  readonly ok: boolean;
  /** Entries walked. */
  readonly entries: number;
  /** RFC 6962 tree head over them, hex. */
  readonly rootHash: string;
  readonly checkpoints: number;
  /** False when no public key was available to check checkpoint signatures. */
  readonly signaturesChecked: boolean;
  readonly payloads: { readonly checked: number; readonly unreadable: number };
  /** The first problem (lowest seq), if any. */
  readonly firstBad: VerifyIssue | undefined;
  readonly issues: readonly VerifyIssue[];
}

/** An inclusion proof of one entry in the tree of `treeSize` entries. */
export interface InclusionProof {
  readonly seq: number;
  readonly treeSize: number;
  readonly leafHash: string;
  readonly path: readonly string[];
  readonly rootHash: string;
}

/** A consistency proof between two tree sizes. */
export interface ConsistencyProof {
  readonly first: number;
  readonly second: number;
  readonly firstRoot: string;
  readonly secondRoot: string;
  readonly path: readonly string[];
}

/** What to purge: payloads of entries matching every given field. */
export interface PurgeOptions {
  readonly seqs?: readonly number[];
  readonly before?: number;
  readonly tag?: string;
  readonly subject?: string;
  /** Who purges (recorded). */
  readonly actor: string;
  readonly reason: string;
}

// Deliberate repetition: every component's descriptor is a literal of the same keys (kind, help,
// category, states, gauges, counters) that the registry and dashboard read; the values are its own.
export const DESCRIPTOR: ComponentDescriptor = {
  kind: 'auditLog',
  help: 'A tamper-evident audit log (hash chain, signed Merkle checkpoints)',
  category: 'audit',
  states: ['open', 'tampered', 'closed'],
  gauges: { seq: 'sequence number of the last entry', pending: 'appends waiting for the next commit' },
  counters: {
    appends: 'entries committed',
    appendFailures: 'entries whose commit failed',
    verifies: 'verifications run',
    checkpoints: 'signed checkpoints made',
    purges: 'payloads purged',
  },
};
