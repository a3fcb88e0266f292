/**
 * RFC 6962 Merkle trees (Certificate Transparency, §2.1): leaf and node hashes with distinct
 * prefixes, the tree head of any number of leaves (k is the largest power of two below n, never
 * n/2 and never padded), inclusion and consistency proofs, and their verifiers (RFC 9162 §2.1.3.2
 * and §2.1.4.2). Proof generation only names the subtrees it needs (`[start, end)` ranges), so a
 * store can stream their leaves instead of holding the whole tree.
 * @module
 */

import { createHash } from 'node:crypto';

/** SHA-256 of the empty string: the head of an empty tree. */
export const EMPTY_ROOT: Uint8Array = createHash('sha256').digest();

/**
 * The leaf hash of `data`: SHA-256(0x00 ‖ data).
 *
 * @example
 * ```ts
 * import { leafHash } from 'bulwark/audit';
 * console.log(Buffer.from(leafHash(new Uint8Array())).toString('hex')); // 6e340b9c…
 * ```
 */
export function leafHash(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(Uint8Array.of(0)).update(data).digest();
}

/**
 * The interior node hash: SHA-256(0x01 ‖ left ‖ right).
 *
 * @example
 * ```ts
 * import { leafHash, nodeHash } from 'bulwark/audit';
 * const root2 = nodeHash(leafHash(new Uint8Array()), leafHash(Uint8Array.of(0)));
 * ```
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
}

/** The largest power of two strictly below `n` (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Builds a tree head from leaf hashes given one at a time, in O(log n) memory: a stack of
 * perfect subtrees, merged as they fill, folded right to left at the end.
 *
 * @example
 * ```ts
 * import { MerkleAccumulator, leafHash } from 'bulwark/audit';
 * const acc = new MerkleAccumulator();
 * acc.push(leafHash(new Uint8Array()));
 * console.log(acc.size, Buffer.from(acc.root()).toString('hex'));
 * ```
 */
export class MerkleAccumulator {
  #hashes: Uint8Array[] = [];
  #sizes: number[] = [];
  #size = 0;

  /** Number of leaves pushed. */
  get size(): number {
    return this.#size;
  }

  /** Adds the next leaf hash. */
  push(leaf: Uint8Array): void {
    let h = leaf;
    let s = 1;
    while (this.#sizes.length > 0 && this.#sizes[this.#sizes.length - 1] === s) {
      h = nodeHash(this.#hashes.pop()!, h);
      this.#sizes.pop();
      s *= 2;
    }
    this.#hashes.push(h);
    this.#sizes.push(s);
    this.#size++;
  }

  /** The head of the tree of every leaf pushed so far. */
  root(): Uint8Array {
    if (this.#hashes.length === 0) return EMPTY_ROOT;
    let r = this.#hashes[this.#hashes.length - 1]!;
    for (let i = this.#hashes.length - 2; i >= 0; i--) r = nodeHash(this.#hashes[i]!, r);
    return r;
  }

  /** A copy (to extend without changing this one). */
  clone(): MerkleAccumulator {
    const c = new MerkleAccumulator();
    c.#hashes = [...this.#hashes];
    c.#sizes = [...this.#sizes];
    c.#size = this.#size;
    return c;
  }
}

/**
 * The tree head (MTH) of `leaves` (leaf hashes).
 *
 * @example
 * ```ts
 * import { leafHash, merkleRoot } from 'bulwark/audit';
 * const root = merkleRoot([leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))]);
 * ```
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  const acc = new MerkleAccumulator();
  for (const l of leaves) acc.push(l);
  return acc.root();
}

/** A subtree of leaves `[start, end)`. */
export type LeafRange = readonly [start: number, end: number];

function checkSizes(what: string, ok: boolean): void {
  if (!ok) throw new RangeError(`${what} is out of range`);
}

/**
 * The subtrees whose hashes make the inclusion proof of leaf `index` in a tree of `size` leaves
 * (RFC 6962 PATH), in proof order (nearest sibling first).
 */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  checkSizes(`leaf ${index} of a tree of ${size}`, Number.isInteger(index) && index >= 0 && index < size);
  const out: LeafRange[] = [];
  const walk = (m: number, start: number, n: number): void => {
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, start, k);
      out.push([start + k, start + n]);
    } else {
      walk(m - k, start + k, n - k);
      out.push([start, start + k]);
    }
  };
  walk(index, 0, size);
  return out;
}

/**
 * The subtrees whose hashes make the consistency proof from a tree of `first` leaves to one of
 * `second` leaves (RFC 6962 SUBPROOF), in proof order. Empty when `first` is 0 or equals `second`.
 */
export function consistencyRanges(first: number, second: number): LeafRange[] {
  checkSizes(
    `consistency ${first} -> ${second}`,
    Number.isInteger(first) && Number.isInteger(second) && first >= 0 && first <= second,
  );
  const out: LeafRange[] = [];
  if (first === 0 || first === second) return out;
  const sub = (m: number, start: number, n: number, whole: boolean): void => {
    if (m === n) {
      if (!whole) out.push([start, start + n]);
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, start, k, whole);
      out.push([start + k, start + n]);
    } else {
      sub(m - k, start + k, n - k, false);
      out.push([start, start + k]);
    }
  };
  sub(first, 0, second, true);
  return out;
}

/** Hashes of the given ranges over in-memory leaf hashes. */
function rangesOver(leaves: readonly Uint8Array[], ranges: readonly LeafRange[]): Uint8Array[] {
  return ranges.map(([a, b]) => merkleRoot(leaves.slice(a, b)));
}

/**
 * The inclusion proof of leaf `index` in the tree of the first `size` of `leaves`.
 *
 * @example
 * ```ts
 * import { inclusionProof, leafHash, merkleRoot, verifyInclusion } from 'bulwark/audit';
 * const leaves = ['a', 'b', 'c'].map((x) => leafHash(Buffer.from(x)));
 * const proof = inclusionProof(leaves, 2);
 * console.log(verifyInclusion(leaves[2]!, 2, 3, proof, merkleRoot(leaves))); // true
 * ```
 */
export function inclusionProof(
  leaves: readonly Uint8Array[],
  index: number,
  size = leaves.length,
): Uint8Array[] {
  checkSizes(`tree size ${size}`, size <= leaves.length);
  return rangesOver(leaves, inclusionRanges(index, size));
}

/**
 * The consistency proof between the trees of the first `first` and first `second` of `leaves`.
 *
 * @example
 * ```ts
 * import { consistencyProof, leafHash, merkleRoot, verifyConsistency } from 'bulwark/audit';
 * const leaves = ['a', 'b', 'c'].map((x) => leafHash(Buffer.from(x)));
 * const proof = consistencyProof(leaves, 2, 3);
 * console.log(verifyConsistency(2, 3, merkleRoot(leaves.slice(0, 2)), merkleRoot(leaves), proof)); // true
 * ```
 */
export function consistencyProof(
  leaves: readonly Uint8Array[],
  first: number,
  second = leaves.length,
): Uint8Array[] {
  checkSizes(`tree size ${second}`, second <= leaves.length);
  return rangesOver(leaves, consistencyRanges(first, second));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

const HASH_BYTES = 32;
const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === HASH_BYTES;

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2). Returns false for any malformed input.
 *
 * @example
 * ```ts
 * import { leafHash, verifyInclusion } from 'bulwark/audit';
 * const leaf = leafHash(Buffer.from('a'));
 * console.log(verifyInclusion(leaf, 0, 1, [], leaf)); // true
 * ```
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  // Deliberate repetition: an RFC 9162 transcription, as verifyConsistency is (see there).
  if (!isHash(leaf) || !isHash(root) || !Array.isArray(proof) || !proof.every(isHash)) return false;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

/**
 * Verifies a consistency proof between tree heads (RFC 9162 §2.1.4.2). A tree of 0 leaves is
 * consistent with any tree (empty proof); equal sizes need equal roots and an empty proof.
 *
 * @example
 * ```ts
 * import { leafHash, verifyConsistency } from 'bulwark/audit';
 * const r = leafHash(Buffer.from('a'));
 * console.log(verifyConsistency(1, 1, r, r, [])); // true
 * ```
 */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  // Deliberate repetition: verifyInclusion and verifyConsistency are line-by-line transcriptions of
  // RFC 9162 §2.1.3.2 and §2.1.4.2, whose bit walks (shift fn and sn while …) read alike; kept literal
  // so each can be checked against its section.
  if (!isHash(firstRoot) || !isHash(secondRoot) || !Array.isArray(proof) || !proof.every(isHash))
    return false;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second)
    return false;
  if (first === second) return proof.length === 0 && equal(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0 && equal(firstRoot, EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = Number.isInteger(Math.log2(first)) ? [firstRoot, ...proof] : [...proof];
  let fn = BigInt(first - 1);
  let sn = BigInt(second - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(fr, firstRoot) && equal(sr, secondRoot);
}
