/**
 * Field-level three-way merge (RxDB's inputs: base = what the client last saw, ours = the
 * client's change, theirs = the server's current state). A field changed on one side only takes
 * that side; a field changed on both sides to different values is a conflict, surfaced by name
 * and decided by `decide` (default: keep theirs).
 * @module
 */

import { type Fields, sameValue } from './record.js';

/** What `threeWayMerge` returns. */
export interface MergeResult {
  /** The merged fields (absent fields omitted). */
  readonly merged: Record<string, unknown>;
  /** Fields changed on both sides to different values, sorted. */
  readonly conflicts: readonly string[];
}

/** Decides a conflicting field: the value to keep (`undefined` removes the field). */
export type FieldDecider = (
  field: string,
  values: { base: unknown; ours: unknown; theirs: unknown },
) => unknown;

/**
 * Merges `ours` and `theirs`, both derived from `base`, field by field.
 *
 * @example
 * ```ts
 * import { threeWayMerge } from 'bulwark/sync';
 * const base = { name: 'Ada', phone: '1' };
 * const r = threeWayMerge(base, { name: 'Ada L.', phone: '1' }, { name: 'Ada', phone: '2' });
 * console.log(r.merged, r.conflicts); // { name: 'Ada L.', phone: '2' } []
 * ```
 */
export function threeWayMerge(
  base: Fields,
  ours: Fields,
  theirs: Fields,
  decide: FieldDecider = (_f, v) => v.theirs,
): MergeResult {
  const merged: Record<string, unknown> = {};
  const conflicts: string[] = [];
  const names = new Set([...Object.keys(base), ...Object.keys(ours), ...Object.keys(theirs)]);
  for (const f of [...names].sort()) {
    const b = base[f];
    const o = ours[f];
    const t = theirs[f];
    let v: unknown;
    if (sameValue(o, t) || sameValue(t, b)) v = o;
    else if (sameValue(o, b)) v = t;
    else {
      conflicts.push(f);
      v = decide(f, { base: b, ours: o, theirs: t });
    }
    if (v !== undefined) merged[f] = v;
  }
  return { merged, conflicts };
}
