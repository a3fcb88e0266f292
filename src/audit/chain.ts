/**
 * Chaining a batch after the head: sequence numbers, previous hashes and entry hashes.
 * @module
 */

import { hashHeader } from './entry.js';
import type { Chainer } from './store.js';

/** The chainer: seq, prevHash and hash after the head. @internal */
export const chainAfter: Chainer = (head, batch) => {
  let prev = head.hash;
  return batch.map((p, i) => {
    const header = { ...p.header, seq: head.seq + 1 + i, prevHash: prev };
    const hash = hashHeader(header);
    prev = hash;
    return { ...header, hash };
  });
};
