/**
 * Audit entries: the header that is hashed (RFC 8785 canonical JSON), the SHA-256 hash chain and
 * the salted payload digest. The payload itself is stored apart from the header, so purging it
 * (or losing its key) leaves the chain verifiable.
 *
 * `hash = SHA-256(0x00 ‖ JCS(header))` — the RFC 6962 leaf hash of the canonical header, so the
 * same value links the chain and is the entry's leaf in the Merkle tree.
 * @module
 */

import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { BulwarkAuditError, loadPeer } from './errors.js';

/** The header format version written into every entry. */
export const ENTRY_VERSION = 1;
/** The `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** How an audited action ended. */
export type AuditOutcome = 'success' | 'failure' | 'denied';

/** What a caller appends. */
export interface AuditEntryInput {
  /** Who acted: a user id, a service, `system`. */
  readonly actor: string;
  /** What they did, e.g. `queue.purge`, `GET /orders/:id`. */
  readonly action: string;
  /** What it was done to, e.g. `queue:payments`, `/orders/42`. */
  readonly resource: string;
  /** Default `success`. */
  readonly outcome?: AuditOutcome;
  /** Compliance tags (`gdpr`, `sox`, `pci`, `hipaa` or your own): drive retention and holds. */
  readonly tags?: readonly string[];
  /** The data subject the entry is about (a pseudonymous id): subject access and erasure find it. */
  readonly subject?: string;
  /** Details (before/after, reason, request digests…): stored apart, purgeable, encryptable. */
  readonly payload?: unknown;
  /** Epoch milliseconds; default the log's clock. */
  readonly time?: number;
}

/** The hashed part of an entry. */
export interface AuditHeader {
  readonly v: number;
  readonly seq: number;
  readonly time: number;
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  readonly outcome: AuditOutcome;
  readonly tags: readonly string[];
  readonly subject: string | null;
  /** SHA-256(salt ‖ JCS(payload)) in hex, or null when the entry has no payload. */
  readonly payloadDigest: string | null;
  readonly prevHash: string;
}

/** A stored entry: its header and its hash (hex). */
export interface AuditEntry extends AuditHeader {
  readonly hash: string;
}

/** A payload row, stored apart from the entry. `body` is the JCS bytes, or their envelope when encrypted. */
export interface StoredPayload {
  readonly seq: number;
  readonly salt: Uint8Array;
  readonly body: Uint8Array;
  /** The key id of an encrypted body (`subject:…` for a subject key), null when plain. */
  readonly keyId: string | null;
}

const q = JSON.stringify;
/** A character JSON.stringify escapes, or a surrogate (a lone one is escaped as `\udxxx`). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;
/** Set when `str` escaped a lone surrogate since the caller last cleared it (RFC 8785 refuses those). */
let loneSurrogate = false;
/**
 * JSON string literal of `s`, as JSON.stringify writes it: the common string with nothing to
 * escape is quoted as it is (no scan and copy by JSON.stringify); others go through JSON.stringify,
 * noting a lone surrogate escape in `loneSurrogate`.
 */
function str(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  const out = q(s);
  if (out.includes('\\ud')) loneSurrogate = true;
  return out;
}
const strOrNull = (x: string | null): string => (x === null ? 'null' : str(x));

type Canonicalize = (value: unknown) => string | undefined;
let canonicalizeFn: Canonicalize | undefined;

/** Loads the RFC 8785 canonicaliser (the optional peer `canonicalize`). @internal */
export async function loadCanonical(): Promise<Canonicalize> {
  canonicalizeFn ??= await loadPeer(
    'canonicalize',
    async () => (await import('canonicalize')).default as Canonicalize,
    'The audit log (RFC 8785 canonical JSON)',
  );
  return canonicalizeFn;
}

/**
 * RFC 8785 of plain JSON data (null, booleans, finite numbers, strings, arrays, plain objects)
 * in one pass; undefined when the value needs the general canonicaliser (anything else, or too
 * deep). Keys sort by UTF-16 code units and strings and numbers serialise as JSON.stringify
 * does, as RFC 8785 specifies; a property test checks it against the `canonicalize` package.
 */
function fastCanonical(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'number':
      return Number.isFinite(v) ? q(v) : undefined;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (depth > 32) return undefined;
      let out: string;
      if (Array.isArray(v)) {
        out = '[';
        for (let i = 0; i < v.length; i++) {
          const c = fastCanonical(v[i], depth + 1);
          if (c === undefined) return undefined;
          out += i === 0 ? c : `,${c}`;
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if ((proto !== Object.prototype && proto !== null) || 'toJSON' in v) return undefined;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      out = '{';
      for (let i = 0; i < keys.length; i++) {
        const c = fastCanonical(o[keys[i]!], depth + 1);
        if (c === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${str(keys[i]!)}:${c}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

/** RFC 8785 canonical JSON of `value`; `loadCanonical()` must have resolved first. @internal */
export function canonical(value: unknown): string {
  loneSurrogate = false;
  const fast = fastCanonical(value, 0);
  // JSON.stringify writes a lone surrogate as \udxxx; RFC 8785 refuses it: let the package decide.
  if (fast !== undefined && !loneSurrogate) return fast;
  if (canonicalizeFn === undefined) throw new Error('canonical() before loadCanonical()');
  let text: string | undefined;
  try {
    text = canonicalizeFn(value);
  } catch (cause) {
    throw new BulwarkAuditError(
      'INVALID_ENTRY',
      `The value cannot be written as canonical JSON: ${String(cause)}`,
      {
        cause,
      },
    );
  }
  if (text === undefined) {
    throw new BulwarkAuditError('INVALID_ENTRY', 'The value is not JSON (undefined, a function or a symbol)');
  }
  return text;
}

/** The header of an entry, with exactly the hashed fields. */
export function headerOf(e: AuditHeader): AuditHeader {
  return {
    v: e.v,
    seq: e.seq,
    time: e.time,
    actor: e.actor,
    action: e.action,
    resource: e.resource,
    outcome: e.outcome,
    tags: e.tags,
    subject: e.subject,
    payloadDigest: e.payloadDigest,
    prevHash: e.prevHash,
  };
}

/**
 * RFC 8785 of a header, written directly: its keys are fixed (already in UTF-16 order), strings
 * serialise as JSON.stringify does (as RFC 8785 specifies) and numbers are safe integers. Falls
 * back to the general canonicaliser for anything else, and whenever the text holds `\ud` (how
 * JSON.stringify writes a lone surrogate, which RFC 8785 refuses). A property test checks it
 * equals `canonical(headerOf(h))`. @internal
 */
export function canonicalHeader(h: AuditHeader): string {
  let plain =
    Number.isSafeInteger(h.seq) &&
    Number.isSafeInteger(h.time) &&
    Number.isSafeInteger(h.v) &&
    typeof h.action === 'string' &&
    typeof h.actor === 'string' &&
    typeof h.outcome === 'string' &&
    typeof h.prevHash === 'string' &&
    typeof h.resource === 'string' &&
    (h.subject === null || typeof h.subject === 'string') &&
    (h.payloadDigest === null || typeof h.payloadDigest === 'string');
  loneSurrogate = false;
  let tags = '';
  for (let i = 0; plain && i < h.tags.length; i++) {
    const t = h.tags[i];
    if (typeof t !== 'string') plain = false;
    else tags += i === 0 ? str(t) : `,${str(t)}`;
  }
  if (!plain) return canonical(headerOf(h));
  const out = `{"action":${str(h.action)},"actor":${str(h.actor)},"outcome":${str(h.outcome)},"payloadDigest":${strOrNull(h.payloadDigest)},"prevHash":${str(h.prevHash)},"resource":${str(h.resource)},"seq":${h.seq},"subject":${strOrNull(h.subject)},"tags":[${tags}],"time":${h.time},"v":${h.v}}`;
  return loneSurrogate ? canonical(headerOf(h)) : out;
}

/** One-shot `crypto.hash` (Node >= 20.12): about twice as fast as createHash for small inputs. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string })
  .hash;
const sha256Hex = (data: string | Uint8Array): string =>
  oneShot !== undefined ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');

/** SHA-256(0x00 ‖ JCS(header)) in hex (the NUL character is the one byte 0x00 in UTF-8). */
export function hashHeader(header: AuditHeader): string {
  return sha256Hex(`\u0000${canonicalHeader(header)}`);
}

let saltPool = Buffer.alloc(0);
let saltAt = 0;
/** Where the next 16 random bytes stand in the pooled 4 KiB draw (one getrandom call per 256 salts). */
function nextSalt(): number {
  if (saltAt + 16 > saltPool.length) {
    saltPool = randomBytes(4096);
    saltAt = 0;
  }
  saltAt += 16;
  return saltAt - 16;
}
/** A payload ready to store (a payload row but its seq): its canonical bytes, a fresh salt and the digest under it. */
export interface SaltedPayload extends Omit<StoredPayload, 'seq'> {
  /** SHA-256(salt ‖ body), hex. */
  readonly digest: string;
}

/**
 * The canonical bytes of `value` behind a fresh salt, written once into one buffer (salt, then
 * bytes) that is hashed as it is; `salt` and `body` are views of it. @internal
 */
export function saltedPayload(value: unknown): SaltedPayload {
  const text = canonical(value);
  const both = Buffer.allocUnsafe(16 + Buffer.byteLength(text));
  const at = nextSalt();
  saltPool.copy(both, 0, at, at + 16);
  both.write(text, 16);
  return { salt: both.subarray(0, 16), body: both.subarray(16), keyId: null, digest: sha256Hex(both) };
}

/** The digest of payload bytes under their stored `salt`: SHA-256(salt ‖ bytes), hex. */
export function digestPayload(bytes: Uint8Array, salt: Uint8Array): string {
  const both = Buffer.allocUnsafe(salt.length + bytes.length);
  both.set(salt, 0);
  both.set(bytes, salt.length);
  return sha256Hex(both);
}

const TAG = /^[a-z0-9][a-z0-9._:-]{0,63}$/;
const LIMITS = { actor: 256, action: 256, resource: 1024, subject: 256 } as const;

function text(input: AuditEntryInput, key: keyof typeof LIMITS, required: boolean): string | null {
  const v = input[key];
  if (v === undefined && !required) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > LIMITS[key]) {
    throw new BulwarkAuditError(
      'INVALID_ENTRY',
      `An audit entry's ${key} must be a non-empty string of at most ${LIMITS[key]} characters (got ${typeof v === 'string' ? `${v.length} characters` : typeof v})`,
    );
  }
  return v;
}

/** An input entry, checked: what a store chains (see `PreparedEntry`), its payload not sealed. */
export interface CheckedInput {
  readonly header: Omit<AuditHeader, 'seq' | 'prevHash'>;
  readonly payload: SaltedPayload | null;
}

/**
 * Checks an input entry and returns its header (tags sorted and unique, the time `now` unless
 * given) and its salted canonical payload. @internal
 */
export function checkInput(input: AuditEntryInput, now: number): CheckedInput {
  if (typeof input !== 'object' || input === null) {
    throw new BulwarkAuditError('INVALID_ENTRY', 'append() takes an object { actor, action, resource, … }');
  }
  const outcome = input.outcome ?? 'success';
  if (outcome !== 'success' && outcome !== 'failure' && outcome !== 'denied') {
    throw new BulwarkAuditError(
      'INVALID_ENTRY',
      `outcome must be 'success', 'failure' or 'denied' (got ${String(outcome)})`,
    );
  }
  const given = input.tags;
  // One tag (the common case) needs no de-duplication and no sort; still a copy of the caller's array.
  const tags = Array.isArray(given) && given.length === 1 ? [given[0]] : [...new Set(given ?? [])].sort();
  for (const t of tags) {
    if (typeof t !== 'string' || !TAG.test(t)) {
      throw new BulwarkAuditError(
        'INVALID_ENTRY',
        `A tag must be 1-64 characters of a-z 0-9 . _ : - starting with a letter or digit (got ${JSON.stringify(t)})`,
      );
    }
  }
  const time = input.time ?? now;
  if (!Number.isSafeInteger(time) || time < 0) {
    throw new BulwarkAuditError('INVALID_ENTRY', `time must be epoch milliseconds (got ${String(time)})`);
  }
  const actor = text(input, 'actor', true)!;
  const action = text(input, 'action', true)!;
  const resource = text(input, 'resource', true)!;
  const subject = text(input, 'subject', false);
  const payload = input.payload === undefined ? null : saltedPayload(input.payload);
  return {
    header: {
      v: ENTRY_VERSION,
      time,
      actor,
      action,
      resource,
      outcome,
      tags,
      subject,
      payloadDigest: payload === null ? null : payload.digest,
    },
    payload,
  };
}
