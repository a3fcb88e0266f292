import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { holdWrites } from './write-batch.js';

function holder() {
  const calls: string[] = [];
  const socket = { cork: () => calls.push('cork'), uncork: () => calls.push('uncork') } as unknown as Socket;
  return { h: { socket, held: false }, calls };
}

describe('holdWrites', () => {
  it('corks once per round and uncorks every held socket after the round', async () => {
    const a = holder();
    const b = holder();
    holdWrites(a.h);
    holdWrites(a.h);
    holdWrites(b.h);
    expect(a.calls).toEqual(['cork']);
    expect(b.calls).toEqual(['cork']);
    expect(a.h.held).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(a.calls).toEqual(['cork', 'uncork']);
    expect(b.calls).toEqual(['cork', 'uncork']);
    expect(a.h.held).toBe(false);
    // The next round starts a new batch.
    holdWrites(a.h);
    await new Promise((r) => setImmediate(r));
    expect(a.calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);
  });
});
