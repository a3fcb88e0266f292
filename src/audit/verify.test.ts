/**
 * Property tests: any single edit, deletion, insertion or reorder of stored entries is detected
 * and located (the verifier names the first entry where the stored log stops being a valid chain).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { chainAfter } from './chain.js';
import {
  type AuditEntry,
  canonical,
  canonicalHeader,
  ENTRY_VERSION,
  GENESIS_HASH,
  hashHeader,
  headerOf,
  loadCanonical,
} from './entry.js';
import { ChainVerifier, type VerifyIssue } from './verify.js';

beforeAll(async () => {
  await loadCanonical();
});

const entryArb = fc.record({
  actor: fc.string({ minLength: 1, maxLength: 8 }),
  action: fc.constantFrom('login', 'refund', 'purge', 'export'),
  resource: fc.string({ minLength: 1, maxLength: 8 }),
  outcome: fc.constantFrom('success', 'failure', 'denied') as fc.Arbitrary<'success' | 'failure' | 'denied'>,
  tags: fc.uniqueArray(fc.constantFrom('gdpr', 'sox', 'pci', 'hipaa'), { maxLength: 3 }),
  time: fc.integer({ min: 0, max: 2 ** 40 }),
  digest: fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: null }),
});

function build(rows: (typeof entryArb extends fc.Arbitrary<infer T> ? T : never)[]): AuditEntry[] {
  return chainAfter(
    { seq: 0, hash: GENESIS_HASH },
    rows.map((r) => ({
      header: {
        v: ENTRY_VERSION,
        time: r.time,
        actor: r.actor,
        action: r.action,
        resource: r.resource,
        outcome: r.outcome,
        tags: [...r.tags].sort(),
        subject: null,
        payloadDigest: r.digest,
      },
      payload: null,
    })),
  );
}

function check(entries: readonly AuditEntry[], head: { seq: number; hash: string }): VerifyIssue | undefined {
  const v = new ChainVerifier();
  for (const e of entries) v.push(e);
  return v.finish(head)[0];
}

const headOf = (c: AuditEntry[]) => ({ seq: c.length, hash: c[c.length - 1]!.hash });
const renumber = (list: AuditEntry[], from: number) =>
  list.map((e, i) => (i >= from ? { ...e, seq: i + 1 } : e));

describe('verify locates any single tampering', () => {
  const chain = fc.array(entryArb, { minLength: 2, maxLength: 25 }).map(build);

  it('an untouched chain verifies', () => {
    fc.assert(
      fc.property(chain, (c) => {
        expect(check(c, headOf(c))).toBeUndefined();
      }),
    );
  });

  it('an edited field is found at that entry', () => {
    fc.assert(
      fc.property(
        chain,
        fc.nat(),
        fc.constantFrom('actor', 'resource', 'time', 'outcome', 'tags', 'payloadDigest', 'prevHash'),
        (c, k, field) => {
          const i = k % c.length;
          const e = c[i]!;
          const changed: AuditEntry = {
            ...e,
            actor: field === 'actor' ? `${e.actor}x` : e.actor,
            resource: field === 'resource' ? `${e.resource}x` : e.resource,
            time: field === 'time' ? e.time + 1 : e.time,
            outcome: field === 'outcome' ? (e.outcome === 'success' ? 'failure' : 'success') : e.outcome,
            tags: field === 'tags' ? [...e.tags, 'zz'] : e.tags,
            payloadDigest: field === 'payloadDigest' ? 'f'.repeat(64) : e.payloadDigest,
            prevHash: field === 'prevHash' ? 'a'.repeat(64) : e.prevHash,
          };
          const tampered = c.map((x, j) => (j === i ? changed : x));
          expect(check(tampered, headOf(c))).toMatchObject({ seq: i + 1, reason: 'hash' });
        },
      ),
    );
  });

  it('an edit whose hash was recomputed is found at the next entry (or at the recorded head)', () => {
    fc.assert(
      fc.property(chain, fc.nat(), (c, k) => {
        const i = k % c.length;
        const e = { ...c[i]!, actor: `${c[i]!.actor}x` };
        const tampered = c.map((x, j) => (j === i ? { ...e, hash: hashHeader(e) } : x));
        const issue = check(tampered, headOf(c));
        if (i === c.length - 1) expect(issue).toMatchObject({ seq: i + 1, reason: 'hash' });
        else expect(issue).toMatchObject({ seq: i + 2, reason: 'link' });
      }),
    );
  });

  it('a deleted entry is named as missing (the last one as truncation)', () => {
    fc.assert(
      fc.property(chain, fc.nat(), (c, k) => {
        const i = k % c.length;
        const tampered = c.filter((_, j) => j !== i);
        const issue = check(tampered, headOf(c));
        if (i === c.length - 1) expect(issue).toMatchObject({ seq: c.length, reason: 'truncated' });
        else expect(issue).toMatchObject({ seq: i + 1, reason: 'missing' });
      }),
    );
  });

  it('an inserted entry is found: a forged one at itself, a well-forged one at the entry it displaced', () => {
    fc.assert(
      fc.property(chain, fc.nat(), fc.boolean(), (c, k, wellForged) => {
        const i = k % (c.length + 1);
        const prev = i === 0 ? GENESIS_HASH : c[i - 1]!.hash;
        const base = { ...c[0]!, seq: i + 1, prevHash: prev, actor: 'mallory' };
        const forged = { ...base, hash: wellForged ? hashHeader(base) : 'b'.repeat(64) };
        const tampered = renumber([...c.slice(0, i), forged, ...c.slice(i)], i);
        const issue = check(tampered, headOf(c));
        if (!wellForged) expect(issue).toMatchObject({ seq: i + 1, reason: 'hash' });
        else if (i === c.length) expect(issue).toMatchObject({ seq: c.length + 1, reason: 'extra' });
        else expect(issue).toMatchObject({ seq: i + 2, reason: 'hash' });
      }),
    );
  });

  it('two reordered entries are found at the first of them', () => {
    fc.assert(
      fc.property(chain, fc.nat(), fc.nat(), (c, a, b) => {
        const i = a % c.length;
        const j = b % c.length;
        fc.pre(i !== j && c[i]!.hash !== c[j]!.hash);
        const [lo, hi] = i < j ? [i, j] : [j, i];
        const tampered = c.map((e, x) =>
          x === lo ? { ...c[hi]!, seq: lo + 1 } : x === hi ? { ...c[lo]!, seq: hi + 1 } : e,
        );
        expect(check(tampered, headOf(c))).toMatchObject({ seq: lo + 1, reason: 'hash' });
      }),
    );
  });

  it('a checkpoint catches a history rewritten from scratch', () => {
    fc.assert(
      fc.property(chain, fc.nat(), (c, k) => {
        const v0 = new ChainVerifier();
        for (const e of c) v0.push(e);
        const cp = { treeSize: c.length, rootHash: v0.rootHash(), signatureOk: true };
        const i = k % c.length;
        // The attacker rewrites entry i and re-chains everything after it, head included.
        const rows = c.map((e, j) => ({
          header: { ...e, actor: j === i ? 'mallory' : e.actor },
          payload: null,
        }));
        const forged = chainAfter({ seq: 0, hash: GENESIS_HASH }, rows);
        const v = new ChainVerifier([cp]);
        for (const e of forged) v.push(e);
        expect(v.finish(headOf(forged))[0]).toMatchObject({ seq: c.length, reason: 'checkpoint' });
      }),
    );
  });
});

describe('canonicalHeader', () => {
  it('equals the general RFC 8785 canonicaliser for any header', () => {
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.integer({ min: 1, max: 2 ** 50 }),
          time: fc.integer({ min: 0, max: 2 ** 50 }),
          actor: fc.string({ unit: 'grapheme', minLength: 1 }),
          action: fc.string({ minLength: 1 }),
          resource: fc.string({ unit: 'binary', minLength: 1 }),
          tags: fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }),
          subject: fc.option(fc.string({ unit: 'grapheme' }), { nil: null }),
          payloadDigest: fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: null }),
        }),
        (r) => {
          const h = { ...r, v: ENTRY_VERSION, outcome: 'success' as const, prevHash: GENESIS_HASH };
          let general: string | undefined;
          try {
            general = canonical(headerOf(h));
          } catch {
            general = undefined;
          }
          if (general === undefined) expect(() => canonicalHeader(h)).toThrow();
          else expect(canonicalHeader(h)).toBe(general);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('canonical', () => {
  it('equals the canonicalize package (RFC 8785) for any value, or both refuse it', async () => {
    const pkg = (await import('canonicalize')).default as (v: unknown) => string | undefined;
    await loadCanonical();
    const value = fc.oneof(
      fc.jsonValue(),
      fc.anything({
        withNullPrototype: true,
        withObjectString: true,
        withSparseArray: true,
        withBoxedValues: true,
      }),
      fc.dictionary(fc.string({ unit: 'binary' }), fc.oneof(fc.string({ unit: 'binary' }), fc.double())),
    );
    fc.assert(
      fc.property(value, (v) => {
        let expected: string | undefined;
        try {
          expected = pkg(v);
        } catch {
          expected = undefined;
        }
        if (expected === undefined) expect(() => canonical(v)).toThrow();
        else expect(canonical(v)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
