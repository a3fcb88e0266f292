/**
 * Retention per compliance tag and legal holds, as pure functions: which entries' payloads may
 * be purged now. A legal hold always wins over retention and over an explicit purge.
 * @module
 */

import type { AuditEntry } from './entry.js';
import type { LegalHold } from './store.js';

/**
 * How long payloads are kept, per tag, in ms (`'*'`: entries with no tag listed here). An entry
 * with several listed tags keeps its payload for the LONGEST of them (a SOX record tagged
 * `gdpr` too is kept for SOX). Tags not listed and no `'*'`: kept forever.
 */
export type RetentionPolicy = Readonly<Record<string, number>>;

/** The retention of an entry in ms, or undefined when it is kept forever. */
export function retentionOf(entry: Pick<AuditEntry, 'tags'>, policy: RetentionPolicy): number | undefined {
  let best: number | undefined;
  for (const t of entry.tags) {
    const ms = policy[t];
    if (ms !== undefined && (best === undefined || ms > best)) best = ms;
  }
  return best ?? policy['*'];
}

/** True when `hold` covers `entry`. */
export function holdCovers(hold: LegalHold, entry: Pick<AuditEntry, 'tags' | 'subject'>): boolean {
  if (hold.subject !== null && hold.subject !== entry.subject) return false;
  if (hold.tags.length > 0 && !hold.tags.some((t) => entry.tags.includes(t))) return false;
  return true;
}

/** True when any hold covers `entry`. */
export function isHeld(holds: readonly LegalHold[], entry: Pick<AuditEntry, 'tags' | 'subject'>): boolean {
  return holds.some((h) => holdCovers(h, entry));
}

/** True when the entry's payload has outlived its retention at `now`. */
export function expired(
  entry: Pick<AuditEntry, 'tags' | 'time'>,
  policy: RetentionPolicy,
  now: number,
): boolean {
  const ms = retentionOf(entry, policy);
  return ms !== undefined && entry.time + ms <= now;
}
