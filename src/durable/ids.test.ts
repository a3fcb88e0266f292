import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultCodec, jsonCodec } from './codec.js';
import { BulwarkDurableError } from './errors.js';
import { uuidv7 } from './ids.js';
import { storeFromSpec } from './store-spec.js';

describe('uuidv7', () => {
  it('is a version-7 UUID carrying the time, strictly increasing even within a millisecond or when time goes back', () => {
    const t = Date.UTC(2026, 0, 1);
    const id = uuidv7(t);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 200 }), (steps) => {
        let now = t + 1_000_000;
        let prev = uuidv7(now);
        for (const s of steps) {
          now += s;
          const next = uuidv7(now);
          if (!(next > prev)) return false;
          prev = next;
        }
        return true;
      }),
    );
    const many = Array.from({ length: 10_000 }, () => uuidv7(t + 5_000_000));
    expect(new Set(many).size).toBe(many.length);
    expect([...many].sort()).toEqual(many);
  });
});

describe('codecs', () => {
  it('default codec: JSON values round-trip, bytes pass through', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(defaultCodec.decode(defaultCodec.encode(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
    const bytes = new Uint8Array([0, 1, 255]);
    const out = defaultCodec.decode(defaultCodec.encode(bytes)) as Uint8Array;
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Array.from(out)).toEqual([0, 1, 255]);
    expect(Array.from(defaultCodec.decode(defaultCodec.encode(Buffer.from('hi'))) as Uint8Array)).toEqual([
      104, 105,
    ]);
    expect(() => defaultCodec.encode(undefined)).toThrow(BulwarkDurableError);
    expect(() => defaultCodec.decode(new Uint8Array([0x00]))).toThrow(/Unknown payload tag/);
    expect(jsonCodec.decode(jsonCodec.encode({ a: [1] }))).toEqual({ a: [1] });
  });
});

describe('storeFromSpec', () => {
  it('understands sqlite: and postgres:// specs and rejects others without echoing passwords', async () => {
    expect(storeFromSpec('sqlite::memory:').description).toBe('sqlite::memory:');
    expect(storeFromSpec('sqlite:///tmp/x.db').description).toBe('sqlite:/tmp/x.db');
    expect(storeFromSpec('./data/q.db').description).toBe('sqlite:./data/q.db');
    const pg = storeFromSpec('postgres://user:secret@127.0.0.1:1/db');
    expect(pg.description).not.toContain('secret');
    await pg.close();
    expect(() => storeFromSpec('mysql://user:secret@host/db')).toThrow(/INVALID|Unknown store/);
    try {
      storeFromSpec('mysql://user:secret@host/db');
    } catch (error) {
      expect((error as Error).message).not.toContain('secret');
    }
  });
});
