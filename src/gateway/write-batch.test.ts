import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { holdWrite, releaseWrite, type WriteHolder } from './write-batch.js';

function holder(): { h: WriteHolder; writes: string[] } {
  const writes: string[] = [];
  const socket = {
    destroyed: false,
    write: (d: string | Buffer, ...rest: unknown[]) => {
      writes.push(String(d));
      const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    },
  } as unknown as Socket;
  return { h: { socket, held: null, heldCb: null }, writes };
}

const round = () => new Promise((r) => setImmediate(r));

describe('holdWrite', () => {
  it('sends what each socket holds after the round, in order, one chunk held per socket', async () => {
    const a = holder();
    const b = holder();
    holdWrite(a.h, 'a1');
    holdWrite(b.h, Buffer.from('b1'));
    expect(a.writes).toEqual([]);
    holdWrite(a.h, 'a2'); // a second chunk for a: the first is written now
    expect(a.writes).toEqual(['a1']);
    await round();
    expect(a.writes).toEqual(['a1', 'a2']);
    expect(b.writes).toEqual(['b1']);
    expect(a.h.held).toBe(null);
  });

  it('releaseWrite sends the held chunk at once (before another write), with its callback', async () => {
    const a = holder();
    let called = 0;
    holdWrite(a.h, 'last', () => called++);
    releaseWrite(a.h);
    expect(a.writes).toEqual(['last']);
    expect(called).toBe(1);
    await round();
    expect(a.writes).toEqual(['last']); // not twice
  });

  it('a holder added while a round is flushed is sent by the next round, not lost', async () => {
    const a = holder();
    const b = holder();
    const write = a.h.socket.write.bind(a.h.socket);
    (a.h.socket as unknown as { write: typeof write }).write = ((d: string) => {
      holdWrite(b.h, 'b-during-flush');
      return write(d);
    }) as typeof write;
    holdWrite(a.h, 'a');
    await round();
    expect(a.writes).toEqual(['a']);
    await round();
    expect(b.writes).toEqual(['b-during-flush']);
  });
});
