/**
 * Chaining a batch after the head: sequence numbers, previous hashes and entry hashes.
 * @module
 */

import { type AuditEntry, hashHeader } from './entry.js';
import type { Chainer } from './store.js';

/** The chainer: seq, prevHash and hash after the head. @internal */
export const chainAfter: Chainer = (head, batch) => {
  let prev = head.hash;
  const out = new Array<AuditEntry>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const h = batch[i]!.header;
    const e = {
      v: h.v,
      seq: head.seq + 1 + i,
      time: h.time,
      actor: h.actor,
      action: h.action,
      resource: h.resource,
      outcome: h.outcome,
      tags: h.tags,
      subject: h.subject,
      payloadDigest: h.payloadDigest,
      prevHash: prev,
      hash: '',
    };
    e.hash = hashHeader(e);
    prev = e.hash;
    out[i] = e;
  }
  return out;
};
