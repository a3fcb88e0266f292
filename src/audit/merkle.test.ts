/**
 * RFC 6962 Merkle trees against the certificate-transparency reference test vectors (leaves,
 * tree heads for sizes 0..8, inclusion and consistency proofs, as in the CT Go/C++
 * implementations' merkle tests), and against an independent, literal transcription of the
 * RFC's recursive definitions (MTH, PATH, SUBPROOF) for many random sizes.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
// The module under test, as one namespace (the names it exports are the barrel's).
import * as M from './merkle.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

// Deliberate repetition: the certificate-transparency reference vectors (leaves, roots, inclusion
// and consistency proofs), transcribed as published: lists of hashes of the same shape.
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(unhex);
// Deliberate repetition: reference vectors transcribed as the RFC 6962 / certificate-transparency
// test data gives them (roots, then inclusion and consistency proofs of the same shape).
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION = [
  { index: 0, size: 1, proof: [] as string[] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const CONSISTENCY = [
  { first: 1, second: 1, proof: [] as string[] },
  {
    first: 1,
    second: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    first: 6,
    second: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    first: 2,
    second: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    first: 2,
    second: 8,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
];

// The RFC's definitions, transcribed literally over the raw leaf data (independent of merkle.ts).
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
const mth = (d: Uint8Array[]): Uint8Array =>
  d.length === 0
    ? sha()
    : d.length === 1
      ? sha(Uint8Array.of(0), d[0]!)
      : sha(Uint8Array.of(1), mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length))));
const path = (m: number, d: Uint8Array[]): Uint8Array[] => {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
};
const subproof = (m: number, d: Uint8Array[], b: boolean): Uint8Array[] => {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
};

describe('RFC 6962 Merkle tree', () => {
  const hashes = LEAVES.map(M.leafHash);

  it('tree heads of sizes 0..8 equal the CT reference roots', () => {
    expect(hex(M.EMPTY_ROOT)).toBe(ROOTS[0]);
    for (let n = 0; n <= 8; n++) {
      expect(hex(M.merkleRoot(hashes.slice(0, n))), `size ${n}`).toBe(ROOTS[n]);
      expect(hex(mth(LEAVES.slice(0, n))), `reference size ${n}`).toBe(ROOTS[n]);
    }
  });

  it('inclusion proofs equal the CT reference proofs and verify', () => {
    for (const v of INCLUSION) {
      expect(M.inclusionProof(hashes, v.index, v.size).map(hex)).toEqual(v.proof);
      expect(
        M.verifyInclusion(hashes[v.index]!, v.index, v.size, v.proof.map(unhex), unhex(ROOTS[v.size]!)),
      ).toBe(true);
    }
  });

  it('consistency proofs equal the CT reference proofs and verify', () => {
    for (const v of CONSISTENCY) {
      expect(M.consistencyProof(hashes, v.first, v.second).map(hex)).toEqual(v.proof);
      const ok = M.verifyConsistency(
        v.first,
        v.second,
        unhex(ROOTS[v.first]!),
        unhex(ROOTS[v.second]!),
        v.proof.map(unhex),
      );
      expect(ok, `${v.first}->${v.second}`).toBe(true);
    }
  });

  it('for random trees, roots and proofs equal the literal RFC definitions; every proof verifies; any altered proof fails', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (data, a, b, flip) => {
          const leaves = data.map(M.leafHash);
          const n = data.length;
          const root = M.merkleRoot(leaves);
          expect(hex(root)).toBe(hex(mth(data)));
          const acc = new M.MerkleAccumulator();
          for (const l of leaves) acc.push(l);
          expect(hex(acc.root())).toBe(hex(root));

          const i = a % n;
          const proof = M.inclusionProof(leaves, i);
          expect(proof.map(hex)).toEqual(path(i, data).map(hex));
          expect(M.verifyInclusion(leaves[i]!, i, n, proof, root)).toBe(true);
          if (proof.length > 0) {
            const bad = proof.map((p) => Uint8Array.from(p));
            bad[flip % bad.length]![flip % 32]! ^= 1;
            expect(M.verifyInclusion(leaves[i]!, i, n, bad, root)).toBe(false);
            expect(M.verifyInclusion(leaves[i]!, i, n, proof.slice(1), root)).toBe(false);
          }
          const other = leaves[(i + 1) % n]!;
          if (hex(other) !== hex(leaves[i]!)) expect(M.verifyInclusion(other, i, n, proof, root)).toBe(false);

          const m = (b % n) + 1;
          const cproof = M.consistencyProof(leaves, m, n);
          const firstRoot = M.merkleRoot(leaves.slice(0, m));
          expect(cproof.map(hex)).toEqual(m === n ? [] : subproof(m, data, true).map(hex));
          expect(M.verifyConsistency(m, n, firstRoot, root, cproof)).toBe(true);
          if (cproof.length > 0) {
            const bad = cproof.map((p) => Uint8Array.from(p));
            bad[flip % bad.length]![flip % 32]! ^= 1;
            expect(M.verifyConsistency(m, n, firstRoot, root, bad)).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects malformed input', () => {
    const root = M.merkleRoot(hashes);
    const proof = M.inclusionProof(hashes, 5);
    expect(M.verifyInclusion(hashes[5]!, 8, 8, proof, root)).toBe(false);
    expect(M.verifyInclusion(hashes[5]!, -1, 8, proof, root)).toBe(false);
    expect(M.verifyInclusion(new Uint8Array(31), 5, 8, proof, root)).toBe(false);
    expect(M.verifyConsistency(6, 8, root, root, [])).toBe(false);
    expect(M.verifyConsistency(8, 6, root, root, [])).toBe(false);
    expect(M.verifyConsistency(0, 8, M.EMPTY_ROOT, root, [])).toBe(true);
    expect(() => M.inclusionProof(hashes, 8)).toThrow(RangeError);
    expect(() => M.consistencyProof(hashes, 5, 3)).toThrow(RangeError);
  });
});
