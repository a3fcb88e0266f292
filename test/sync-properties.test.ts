/**
 * Property tests of bulwark/sync (issue 17, acceptance 1):
 * - strong eventual consistency: replicas applying the same operations in any order, with
 *   duplicates, end equal, for every built-in strategy that claims it (`convergent`);
 * - whatever the strategy, devices that sync through the server end equal to the server;
 * - the hybrid logical clock is monotonic under random wall-clock jumps and its lead over the wall
 *   clock never exceeds `maxDriftMs`;
 * - three-way merge: non-overlapping field edits never conflict, overlapping edits always do.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/core/clock.js';
import {
  applyOperation,
  ClockDriftError,
  emptyRecord,
  formatHlc,
  hybridClock,
  localTransport,
  lww,
  memorySyncStore,
  openSyncClient,
  parseHlc,
  type SyncOperation,
  type SyncRecord,
  type SyncStrategy,
  serverWins,
  syncServer,
  threeWay,
  threeWayMerge,
} from '../src/sync/index.js';

const STRATEGIES: SyncStrategy[] = [lww(), serverWins(), threeWay(), threeWay({ default: 'client' })];
const FIELDS = ['a', 'b', 'c', 'd'];
const NODES = ['n1', 'n2', 'n3'];

/** Operations with unique opIds and unique stamps (as real clocks make them). */
const opsArb = fc
  .array(
    fc.record({
      id: fc.constantFrom('r1', 'r2'),
      kind: fc.constantFrom('put', 'put', 'put', 'delete') as fc.Arbitrary<'put' | 'delete'>,
      fields: fc.dictionary(fc.constantFrom(...FIELDS), fc.integer({ min: 0, max: 3 }), {
        minKeys: 1,
        maxKeys: 3,
      }),
      base: fc.dictionary(fc.constantFrom(...FIELDS), fc.integer({ min: 0, max: 3 }), { maxKeys: 3 }),
      ms: fc.integer({ min: 0, max: 20 }),
      counter: fc.integer({ min: 0, max: 3 }),
      node: fc.constantFrom(...NODES),
    }),
    { minLength: 1, maxLength: 25 },
  )
  .map((raw) => {
    const seen = new Set<string>();
    const ops: SyncOperation[] = [];
    raw.forEach((r, i) => {
      const hlc = formatHlc({ ms: 1_700_000_000_000 + r.ms, counter: r.counter, node: r.node });
      if (seen.has(hlc)) return;
      seen.add(hlc);
      ops.push({
        opId: `op${i}`,
        clientId: r.node,
        entity: 'note',
        id: r.id,
        kind: r.kind,
        fields: r.kind === 'put' ? r.fields : {},
        base: r.base,
        baseVersion: 0,
        hlc,
        priority: 'normal',
        seq: i,
      });
    });
    return ops;
  });

/** The state that must converge: fields, stamps and tombstone of each record (not the version count). */
function stateOf(records: Map<string, SyncRecord>): unknown {
  return [...records.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, r]) => [k, r.fields, r.stamps, r.deleted]);
}

function replay(ops: readonly SyncOperation[], strategy: SyncStrategy): Map<string, SyncRecord> {
  const records = new Map<string, SyncRecord>();
  for (const op of ops) {
    const r = records.get(op.id) ?? emptyRecord(op.entity, op.id);
    records.set(op.id, applyOperation(r, op, strategy).record);
  }
  return records;
}

describe('strong eventual consistency', () => {
  const convergent = STRATEGIES.filter((x) => x.convergent);

  it('at least last-writer-wins claims it', () => {
    expect(convergent.map((x) => x.name)).toContain('lww');
  });

  for (const strategy of convergent) {
    it(`${strategy.name}: any order, with duplicates, gives the same state`, () => {
      fc.assert(
        fc.property(
          opsArb,
          fc.array(fc.nat(), { minLength: 2, maxLength: 4 }),
          fc.array(fc.nat(), { maxLength: 10 }),
          (ops, seeds, dups) => {
            const withDups = [...ops, ...dups.map((d) => ops[d % ops.length]!)];
            const reference = stateOf(replay(ops, strategy));
            for (const seed of seeds) {
              const shuffled = fc.sample(fc.shuffledSubarray(withDups, { minLength: withDups.length }), {
                seed,
                numRuns: 1,
              })[0]!;
              expect(stateOf(replay(shuffled, strategy))).toEqual(reference);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});

describe('devices syncing through the server converge to it, for every strategy', () => {
  STRATEGIES.forEach((strategy, i) => {
    it(`${strategy.name} (#${i})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              device: fc.integer({ min: 0, max: 2 }),
              action: fc.constantFrom('put', 'put', 'put', 'delete', 'sync', 'offline', 'online'),
              id: fc.constantFrom('r1', 'r2'),
              fields: fc.dictionary(fc.constantFrom(...FIELDS), fc.integer({ min: 0, max: 3 }), {
                minKeys: 1,
                maxKeys: 2,
              }),
            }),
            { maxLength: 18 },
          ),
          async (steps) => {
            const server = syncServer({ store: memorySyncStore(), strategy });
            const transports = [0, 1, 2].map((i) => localTransport(server, `d${i}`));
            const noRetry = {
              execute: <T>(fn: (c: { signal: AbortSignal }) => Promise<T>) =>
                fn({ signal: new AbortController().signal }),
            };
            const devices = await Promise.all(
              transports.map((t, i) =>
                openSyncClient({
                  clientId: `d${i}`,
                  path: ':memory:',
                  transport: t,
                  policy: noRetry,
                  deferMs: 1,
                }),
              ),
            );
            try {
              for (const s of steps) {
                const d = devices[s.device]!;
                if (s.action === 'put') await d.put('note', s.id, s.fields);
                else if (s.action === 'delete') await d.delete('note', s.id);
                else if (s.action === 'sync') await d.sync();
                else transports[s.device]!.online = s.action === 'online';
              }
              for (const t of transports) t.online = true;
              for (let round = 0; round < 2; round++) for (const d of devices) await d.sync();
              const truth = (await server.pull('check', { cursor: 0 })).changes
                .filter((r) => Object.keys(r.fields).length > 0)
                .sort((x, y) => (x.id < y.id ? -1 : 1))
                .map((r) => [r.id, r.fields]);
              for (const d of devices) {
                expect(d.pending).toBe(0);
                expect([...d.list('note').entries()]).toEqual(truth);
              }
            } finally {
              await Promise.all(devices.map((d) => d.close()));
            }
          },
        ),
        { numRuns: 12 },
      );
    });
  });
});

function wallClock(start: number): Clock & { wall: number } {
  const c = {
    wall: start,
    now: () => c.wall,
    date: () => c.wall,
    setTimeout: () => ({ ref: () => c, unref: () => c }),
    clearTimeout: () => {},
  };
  return c;
}

describe('hybrid logical clock', () => {
  it('stays monotonic under random wall-clock jumps, and within the drift bound', () => {
    const maxDriftMs = 5_000;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              t: fc.constant('jump' as const),
              by: fc.integer({ min: -3_600_000, max: 3_600_000 }),
            }),
            fc.record({ t: fc.constant('tick' as const), by: fc.integer({ min: 0, max: 50 }) }),
            fc.record({ t: fc.constant('now' as const), n: fc.integer({ min: 1, max: 5 }) }),
            fc.record({
              t: fc.constant('receive' as const),
              lead: fc.integer({ min: -10_000, max: 2 * maxDriftMs }),
              counter: fc.integer({ min: 0, max: 0xffff }),
            }),
          ),
          { maxLength: 80 },
        ),
        (steps) => {
          const clock = wallClock(1_700_000_000_000);
          const hlc = hybridClock({ node: 'me', maxDriftMs, clock });
          let last = '';
          // The bound holds against the highest wall-clock reading so far: a wall clock stepped
          // back cannot make stamps go back, so the lead over the stepped-back clock may grow.
          let maxWall = 0;
          for (const s of steps) {
            if (s.t === 'jump' || s.t === 'tick') {
              clock.wall = Math.max(0, clock.wall + s.by);
            } else if (s.t === 'now') {
              for (let i = 0; i < s.n; i++) {
                const stamp = hlc.now();
                maxWall = Math.max(maxWall, clock.wall);
                expect(stamp > last).toBe(true);
                expect(parseHlc(stamp).ms - maxWall).toBeLessThanOrEqual(maxDriftMs);
                last = stamp;
              }
            } else {
              const remote = formatHlc({
                ms: Math.max(0, clock.wall + s.lead),
                counter: s.counter,
                node: 'other',
              });
              const before = hlc.last;
              maxWall = Math.max(maxWall, clock.wall);
              if (parseHlc(remote).ms - maxWall > maxDriftMs) {
                expect(() => hlc.receive(remote)).toThrow(ClockDriftError);
                expect(hlc.last).toBe(before);
              } else {
                hlc.receive(remote);
                const next = hlc.now();
                expect(next > remote && next > last).toBe(true);
                expect(parseHlc(next).ms - maxWall).toBeLessThanOrEqual(maxDriftMs);
                last = next;
              }
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('three-way merge', () => {
  const values = fc.integer({ min: 0, max: 5 });
  const baseArb = fc.dictionary(fc.constantFrom(...FIELDS), values, { minKeys: 0, maxKeys: 4 });

  it('non-overlapping field edits never conflict and keep both sides', () => {
    fc.assert(
      fc.property(
        baseArb,
        fc.subarray(FIELDS),
        fc.array(values, { minLength: 4, maxLength: 4 }),
        fc.array(values, { minLength: 4, maxLength: 4 }),
        (base, mine, vo, vt) => {
          const ours: Record<string, unknown> = { ...base };
          const theirs: Record<string, unknown> = { ...base };
          FIELDS.forEach((f, i) => {
            if (mine.includes(f)) ours[f] = 10 + vo[i]!;
            else theirs[f] = 20 + vt[i]!;
          });
          const r = threeWayMerge(base, ours, theirs);
          expect(r.conflicts).toEqual([]);
          for (const f of FIELDS) expect(r.merged[f]).toBe(mine.includes(f) ? ours[f] : theirs[f]);
          // The same through the server's apply (three-way strategy): no conflict reported.
          const record: SyncRecord = {
            ...emptyRecord('note', '1'),
            fields: theirs,
            stamps: Object.fromEntries(Object.keys(theirs).map((f) => [f, '000000000001-0000-s'])),
            version: 2,
          };
          const op: SyncOperation = {
            opId: 'o',
            clientId: 'c',
            entity: 'note',
            id: '1',
            kind: 'put',
            fields: Object.fromEntries(mine.map((f) => [f, ours[f]])),
            base: Object.fromEntries(mine.filter((f) => base[f] !== undefined).map((f) => [f, base[f]])),
            baseVersion: 1,
            hlc: '000000000002-0000-c',
            priority: 'normal',
            seq: 1,
          };
          expect(applyOperation(record, op, threeWay()).conflict).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('overlapping field edits (to different values) always conflict, on exactly those fields', () => {
    fc.assert(
      fc.property(
        baseArb,
        fc.subarray(FIELDS, { minLength: 1 }),
        fc.subarray(FIELDS),
        fc.subarray(FIELDS),
        (base, both, onlyOurs, onlyTheirs) => {
          const ours: Record<string, unknown> = { ...base };
          const theirs: Record<string, unknown> = { ...base };
          for (const f of onlyOurs) ours[f] = 100;
          for (const f of onlyTheirs) theirs[f] = 200;
          for (const f of both) {
            ours[f] = 300;
            theirs[f] = 400;
          }
          const r = threeWayMerge(base, ours, theirs);
          const expected = FIELDS.filter(
            (f) => both.includes(f) || (onlyOurs.includes(f) && onlyTheirs.includes(f)),
          ).sort();
          expect(r.conflicts).toEqual(expected);
          const record: SyncRecord = { ...emptyRecord('note', '1'), fields: theirs, stamps: {}, version: 2 };
          const changed = FIELDS.filter((f) => ours[f] !== base[f]);
          const op: SyncOperation = {
            opId: 'o',
            clientId: 'c',
            entity: 'note',
            id: '1',
            kind: 'put',
            fields: Object.fromEntries(changed.map((f) => [f, ours[f]])),
            base: Object.fromEntries(changed.filter((f) => base[f] !== undefined).map((f) => [f, base[f]])),
            baseVersion: 1,
            hlc: '000000000002-0000-c',
            priority: 'normal',
            seq: 1,
          };
          expect(applyOperation(record, op, threeWay()).conflict?.fields).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
