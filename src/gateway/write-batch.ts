/**
 * Write batching for the proxy's sockets: the last write of a message (a response to the client,
 * a bodiless request to the upstream) is held and sent right after the event loop's current round
 * of I/O (`setImmediate`), together with the round's other writes. A peer then wakes once per
 * round instead of once per write — on a busy proxy most of a write's cost is waking the reader —
 * at the price of at most one round of delay (the time to handle what that round read).
 *
 * One chunk is held per socket. Any other write to a socket that may hold one (a streamed body,
 * `end()`, a hand-over to another owner) first calls `releaseWrite`, so bytes keep their order.
 * Holding a chunk, unlike `cork()`, costs no stream buffer entry and no `writev`.
 * @module
 */

import type { Socket } from 'node:net';

/** Something that owns a socket and may hold one chunk for it. */
export interface WriteHolder {
  readonly socket: Socket;
  /** The held chunk (set and cleared here only). */
  held: string | Buffer | null;
  /** Its write callback. */
  heldCb: (() => void) | null;
}

const holders: WriteHolder[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  // Holders added while flushing (a write's side effects) stay for the flush they scheduled.
  const n = holders.length;
  for (let i = 0; i < n; i++) releaseWrite(holders[i]!);
  holders.splice(0, n);
}

/** Writes the holder's held chunk now, if any (call before writing to its socket otherwise). */
export function releaseWrite(h: WriteHolder): void {
  const data = h.held;
  if (data === null) return;
  const cb = h.heldCb;
  h.held = null;
  h.heldCb = null;
  const socket = h.socket;
  if (socket.destroyed) return;
  if (typeof data === 'string') socket.write(data, 'latin1', cb ?? undefined);
  else socket.write(data, cb ?? undefined);
}

/**
 * Holds `data` (a latin1 string or bytes) for the end of this round of I/O; a chunk already held
 * for the same socket is written first. Returns true: the socket's own buffer says when to wait
 * (a write that returns false is followed by 'drain').
 *
 * @example
 * ```ts nocheck
 * holdWrite(conn, head); // sent with the round's other writes
 * ```
 */
export function holdWrite(h: WriteHolder, data: string | Buffer, cb?: () => void): boolean {
  if (h.held !== null) releaseWrite(h);
  else holders.push(h);
  h.held = data;
  h.heldCb = cb ?? null;
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
  return true;
}
