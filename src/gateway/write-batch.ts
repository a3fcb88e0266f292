/**
 * Write batching for the proxy's sockets: writes made while the event loop handles one round of
 * I/O are held (`socket.cork()`) and sent together right after that round (`setImmediate`). A
 * peer then wakes once for the responses or requests of a round instead of once per write — on a
 * busy proxy most of a write's cost is waking the reader — at the price of at most one round of
 * delay (the time to handle what that round read).
 * @module
 */

import type { Socket } from 'node:net';

/** Something that owns a socket and remembers whether its writes are held. */
export interface WriteHolder {
  readonly socket: Socket;
  /** True while the socket is corked by the batch (set and cleared here only). */
  held: boolean;
}

const holders: WriteHolder[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  for (let i = 0; i < holders.length; i++) {
    const h = holders[i]!;
    h.held = false;
    h.socket.uncork();
  }
  holders.length = 0;
}

/**
 * Holds the holder's writes until the end of this round of I/O (idempotent within a round).
 *
 * @example
 * ```ts nocheck
 * holdWrites(conn); // before socket.write(...): sent with the round's other writes
 * conn.socket.write(head);
 * ```
 */
export function holdWrites(h: WriteHolder): void {
  if (h.held) return;
  h.held = true;
  h.socket.cork();
  holders.push(h);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}
