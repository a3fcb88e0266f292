/**
 * Which backups to keep: the newest `keepLast`, plus grandfather-father-son buckets (the newest
 * backup of each of the last `daily` days, `weekly` ISO weeks and `monthly` months that have
 * one, in UTC). The newest backup is always kept. A pure function: `prune` applies it.
 * @module
 */

import { s } from '../core/schema.js';

/** A retention policy. Every count defaults to 0 (that rule keeps nothing on its own). */
export interface RetentionPolicy {
  /** The newest N backups. */
  keepLast?: number;
  /** The newest backup of each of the last N days that have one. */
  daily?: number;
  /** … of each of the last N ISO weeks. */
  weekly?: number;
  /** … of each of the last N calendar months. */
  monthly?: number;
}

/** A backup as retention sees it. */
export interface RetentionItem {
  readonly id: string;
  /** Epoch ms. */
  readonly createdAt: number;
}

/** The decision: ids to keep (with why) and ids to remove. */
export interface RetentionDecision {
  readonly keep: ReadonlyMap<string, readonly string[]>;
  readonly remove: readonly string[];
}

const policySchema = s.object({
  keepLast: s.optional(s.int({ min: 0 }), 0),
  daily: s.optional(s.int({ min: 0 }), 0),
  weekly: s.optional(s.int({ min: 0 }), 0),
  monthly: s.optional(s.int({ min: 0 }), 0),
});

function dayKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function isoWeekKey(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const t = new Date(thursday);
  // Week 1 holds the year's first Thursday, so whole weeks since 1 January count the rest.
  const week = 1 + Math.floor((thursday - Date.UTC(t.getUTCFullYear(), 0, 1)) / 86_400_000 / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

function monthKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/**
 * Decides which backups a policy keeps.
 *
 * @example
 * ```ts
 * import { selectRetention } from 'bulwark/backup';
 * const day = 86_400_000;
 * const items = Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, createdAt: Date.UTC(2026, 0, 1) + i * day }));
 * const { keep, remove } = selectRetention(items, { keepLast: 2, weekly: 2 });
 * console.log([...keep.keys()], remove.length);
 * ```
 */
export function selectRetention(items: readonly RetentionItem[], policy: RetentionPolicy): RetentionDecision {
  const p = policySchema.parse(policy, 'retention');
  const sorted = [...items].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  const keep = new Map<string, string[]>();
  const mark = (id: string, why: string) => {
    const list = keep.get(id) ?? [];
    list.push(why);
    keep.set(id, list);
  };
  if (sorted[0] !== undefined) mark(sorted[0].id, 'newest');
  for (const [i, b] of sorted.slice(0, p.keepLast).entries()) mark(b.id, `last ${i + 1}`);
  const bucket = (n: number, key: (ms: number) => string, label: string) => {
    const seen = new Set<string>();
    for (const b of sorted) {
      if (seen.size >= n) break;
      const k = key(b.createdAt);
      if (seen.has(k)) continue;
      seen.add(k);
      mark(b.id, `${label} ${k}`);
    }
  };
  bucket(p.daily, dayKey, 'daily');
  bucket(p.weekly, isoWeekKey, 'weekly');
  bucket(p.monthly, monthKey, 'monthly');
  return { keep, remove: sorted.filter((b) => !keep.has(b.id)).map((b) => b.id) };
}

/** @internal exposed for tests */
export const _keys = { dayKey, isoWeekKey, monthKey };
