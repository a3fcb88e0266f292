/**
 * Conflict strategies and the one function that applies an operation to a record under them.
 *
 * Every strategy detects conflicts the same way (a field the operation changes whose server value
 * moved away from the operation's base: both sides edited it) and differs only in what it keeps:
 * - `lww()`: last writer wins per field, by clock stamp (base ignored for the value). Replicas that
 *   receive the same operations in any order, with duplicates, end equal (`convergent`).
 * - `serverWins()`: server-authoritative: a conflicting field keeps the server's value.
 * - `threeWay({ fields, default })`: three-way merge; a conflicting field follows its policy
 *   (`lww`, `server`, `client` or a function).
 * - Per-entity `resolvers` (given to the server) override any strategy for their entity type.
 *
 * Deletes are stamped tombstones for every strategy: a write stamped before the tombstone is
 * ignored, a write stamped after it survives (and is reported as a conflict).
 * @module
 */

import { ConfigError } from '../core/errors.js';
import {
  type ConflictReport,
  type Fields,
  pick,
  type SyncOperation,
  type SyncRecord,
  sameValue,
} from './record.js';

/** The values of one conflicting field. */
export interface FieldConflict {
  readonly entity: string;
  readonly id: string;
  readonly field: string;
  readonly base: unknown;
  readonly ours: unknown;
  readonly theirs: unknown;
  /** The operation's stamp and the stamp of the server's value. */
  readonly oursStamp: string;
  readonly theirsStamp: string | undefined;
}

/** A field policy of `threeWay`. */
export type FieldPolicy = 'lww' | 'server' | 'client' | ((c: FieldConflict) => unknown);

/**
 * A conflict strategy. `resolve` returns the value to keep for a conflicting field.
 */
export interface SyncStrategy {
  readonly name: string;
  /** True when replicas applying the same operations in any order (with duplicates) converge. */
  readonly convergent: boolean;
  /** True when every field's value is decided by stamp alone (last writer wins). */
  readonly byStamp: boolean;
  resolve(c: FieldConflict): unknown;
}

/** The input of a per-entity resolver: every conflicting field of one operation at once. */
export interface EntityConflict {
  readonly entity: string;
  readonly id: string;
  readonly clientId: string;
  readonly fields: readonly string[];
  /** Whole views: the client's base, the client's changed fields, and the server's record. */
  readonly base: Fields;
  readonly ours: Fields;
  readonly theirs: Fields;
  readonly oursStamp: string;
}

/**
 * A resolver for one entity type: returns the values to keep for the conflicting fields (a field
 * it leaves out follows the server's strategy). Must be deterministic.
 */
export type EntityResolver = (c: EntityConflict) => Readonly<Record<string, unknown>>;

function lwwPick(c: FieldConflict): unknown {
  return c.theirsStamp === undefined || c.oursStamp > c.theirsStamp ? c.ours : c.theirs;
}

/**
 * Last writer wins, per field, by hybrid-logical-clock stamp. Convergent.
 *
 * @example
 * ```ts
 * import { lww } from 'bulwark/sync';
 * const strategy = lww(); // syncServer({ strategy, … })
 * ```
 */
export function lww(): SyncStrategy {
  return { name: 'lww', convergent: true, byStamp: true, resolve: lwwPick };
}

/**
 * Server-authoritative: a field both sides changed keeps the server's value; fields only the
 * client changed are applied.
 *
 * @example
 * ```ts
 * import { serverWins } from 'bulwark/sync';
 * const strategy = serverWins();
 * ```
 */
export function serverWins(): SyncStrategy {
  return { name: 'serverWins', convergent: false, byStamp: false, resolve: (c) => c.theirs };
}

/** Options of `threeWay()`. */
export interface ThreeWayOptions {
  /** Policy per field name. */
  fields?: Readonly<Record<string, FieldPolicy>>;
  /** Policy of the other fields. Default `lww`. */
  default?: FieldPolicy;
}

function policyFn(path: string, p: unknown): (c: FieldConflict) => unknown {
  if (typeof p === 'function') return p as (c: FieldConflict) => unknown;
  if (p === 'lww') return lwwPick;
  if (p === 'server') return (c) => c.theirs;
  if (p === 'client') return (c) => c.ours;
  throw new ConfigError(path, "'lww', 'server', 'client' or a function", p);
}

/**
 * Three-way merge against the client's base: non-overlapping edits merge without conflict; a
 * field changed on both sides is a conflict decided by its policy.
 *
 * @example
 * ```ts
 * import { threeWay } from 'bulwark/sync';
 * const strategy = threeWay({ fields: { balance: 'server', notes: 'client' }, default: 'lww' });
 * ```
 */
export function threeWay(options: ThreeWayOptions = {}): SyncStrategy {
  const fallback = policyFn('threeWay.default', options.default ?? 'lww');
  const per = new Map<string, (c: FieldConflict) => unknown>();
  for (const [f, p] of Object.entries(options.fields ?? {})) per.set(f, policyFn(`threeWay.fields.${f}`, p));
  return {
    name: 'threeWay',
    convergent: false,
    byStamp: false,
    resolve: (c) => (per.get(c.field) ?? fallback)(c),
  };
}

/** What `applyOperation` returns. */
export interface ApplyResult {
  readonly record: SyncRecord;
  /** True when the record changed (its version was raised). */
  readonly changed: boolean;
  /** The conflict this operation met, or null. */
  readonly conflict: ConflictReport | null;
}

function maxStamp(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b;
}

function report(
  op: SyncOperation,
  strategy: string,
  fields: string[],
  theirs: Fields,
  result: Fields,
): ConflictReport {
  return {
    entity: op.entity,
    id: op.id,
    opId: op.opId,
    clientId: op.clientId,
    strategy,
    fields,
    base: pick(op.base, fields),
    ours: pick(op.fields, fields),
    theirs: pick(theirs, fields),
    result: pick(result, fields),
  };
}

function applyDelete(record: SyncRecord, op: SyncOperation): ApplyResult {
  if (record.deleted !== null && op.hlc <= record.deleted) return { record, changed: false, conflict: null };
  const fields: Record<string, unknown> = {};
  const stamps: Record<string, string> = {};
  for (const [f, st] of Object.entries(record.stamps)) {
    if (st > op.hlc) {
      stamps[f] = st;
      fields[f] = record.fields[f];
    }
  }
  const survivors = Object.keys(fields).sort();
  const next = { ...record, fields, stamps, deleted: op.hlc, version: record.version + 1 };
  const conflict = survivors.length > 0 ? report(op, 'tombstone', survivors, record.fields, fields) : null;
  return { record: next, changed: true, conflict };
}

/**
 * Applies `op` to `record` under `strategy` (or the entity's `resolver`): the new record, whether
 * it changed, and the conflict met, if any. Pure and deterministic.
 *
 * @example
 * ```ts
 * import { applyOperation, emptyRecord, lww } from 'bulwark/sync';
 * const op = { opId: 'o1', clientId: 'a', entity: 'note', id: '1', kind: 'put' as const, fields: { text: 'hi' },
 *   base: {}, baseVersion: 0, hlc: '018bcfe56800-0000-a', priority: 'normal' as const, seq: 1 };
 * const { record } = applyOperation(emptyRecord('note', '1'), op, lww());
 * console.log(record.fields, record.version); // { text: 'hi' } 1
 * ```
 */
export function applyOperation(
  record: SyncRecord,
  op: SyncOperation,
  strategy: SyncStrategy,
  resolver?: EntityResolver,
): ApplyResult {
  if (op.kind === 'delete') return applyDelete(record, op);
  const names = Object.keys(op.fields).sort();
  if (record.deleted !== null && op.hlc <= record.deleted) {
    // Edited concurrently with a later delete: the tombstone wins; the client hears of it.
    return { record, changed: false, conflict: report(op, 'tombstone', names, record.fields, {}) };
  }
  const fields: Record<string, unknown> = { ...record.fields };
  const stamps: Record<string, string> = { ...record.stamps };
  const conflicting: FieldConflict[] = [];
  // A per-entity resolver overrides the strategy, last-writer-wins included.
  const byStamp = strategy.byStamp && resolver === undefined;
  let changed = false;
  const set = (f: string, v: unknown, stamp: string): void => {
    if (!sameValue(fields[f], v) || stamps[f] !== stamp) changed = true;
    if (v === undefined) delete fields[f];
    else fields[f] = v;
    stamps[f] = stamp;
  };
  for (const f of names) {
    const o = op.fields[f];
    const t = record.fields[f];
    const st = record.stamps[f];
    const c: FieldConflict = {
      entity: op.entity,
      id: op.id,
      field: f,
      base: op.base[f],
      ours: o,
      theirs: t,
      oursStamp: op.hlc,
      theirsStamp: st,
    };
    const conflict = !sameValue(t, c.base) && !sameValue(o, t);
    if (conflict) conflicting.push(c);
    if (byStamp) {
      if (st === undefined || op.hlc > st) set(f, o, op.hlc);
    } else if (!conflict) {
      set(f, o, maxStamp(st, op.hlc));
    }
  }
  let name = strategy.name;
  if (conflicting.length > 0 && !byStamp) {
    const chosen =
      resolver === undefined
        ? undefined
        : resolver({
            entity: op.entity,
            id: op.id,
            clientId: op.clientId,
            fields: conflicting.map((c) => c.field),
            base: op.base,
            ours: op.fields,
            theirs: record.fields,
            oursStamp: op.hlc,
          });
    if (chosen !== undefined) name = `custom:${op.entity}`;
    for (const c of conflicting) {
      const v =
        chosen !== undefined && Object.hasOwn(chosen, c.field) ? chosen[c.field] : strategy.resolve(c);
      if (sameValue(v, c.theirs)) continue; // the server's value stays, with its stamp
      set(c.field, v, maxStamp(c.theirsStamp, op.hlc));
    }
  }
  const next: SyncRecord = changed ? { ...record, fields, stamps, version: record.version + 1 } : record;
  const conflict =
    conflicting.length === 0
      ? null
      : report(
          op,
          name,
          conflicting.map((c) => c.field),
          record.fields,
          next.fields,
        );
  return { record: next, changed, conflict };
}
