import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { createRegistry } from '../core/registry.js';
import { createFakeClock } from '../testing/fake-clock.js';
import { ClockDriftError } from './errors.js';
import { compareHlc, formatHlc, hybridClock, isHlc, parseHlc } from './hlc.js';

/** A clock standing at `ms` (monotonic and wall clock alike): time moves only when told to. */
const frozen = (ms: number) => createFakeClock({ now: ms, date: ms });

describe('hybridClock', () => {
  it('formats sortable stamps and parses them back', () => {
    const p = { ms: 1_700_000_000_000, counter: 258, node: 'phone-1' };
    expect(formatHlc(p)).toBe('018bcfe56800-0102-phone-1');
    expect(parseHlc(formatHlc(p))).toEqual(p);
    expect(compareHlc(formatHlc({ ...p, counter: 1 }), formatHlc({ ...p, counter: 2 }))).toBeLessThan(0);
    expect(isHlc('nope')).toBe(false);
    expect(() => parseHlc('nope')).toThrow(expect.objectContaining({ code: 'INVALID_HLC' }));
  });

  it('counts past 65 535 stamps in one ms by moving into the next ms, within the drift bound', () => {
    const hlc = hybridClock({ node: 'a', maxDriftMs: 2, clock: frozen(1_000) });
    let last = '';
    let ordered = true;
    for (let i = 0; i < 3 * 65_536; i++) {
      const s = hlc.now();
      if (!(s > last)) ordered = false;
      last = s;
    }
    expect(ordered).toBe(true);
    expect(parseHlc(last).ms).toBe(1_002);
    expect(() => hlc.now()).toThrow(ClockDriftError);
    expect(hlc.snapshot()).toMatchObject({ kind: 'hybridClock', counters: { driftRejections: 1 } });
  });

  it('restarts after its last stamp, joins a registry, and validates options', () => {
    const registry = createRegistry();
    const a = hybridClock({ node: 'a', clock: frozen(5_000), registry });
    const s = a.now();
    const b = hybridClock({ node: 'a', clock: frozen(1_000), last: a.last, name: 'b' });
    expect(b.now() > s).toBe(true);
    expect(registry.get('hybridClock', 'a')).toBe(a);
    expect(JSON.parse(JSON.stringify(a))).toEqual({ node: 'a', last: a.last });
    expect(() => hybridClock({ node: 'bad node' })).toThrow(ConfigError);
    expect(() => hybridClock({ node: 'a', maxDriftMs: 0 })).toThrow(/hybridClock\.maxDriftMs/);
    expect(() => hybridClock({ node: 'a', last: 'x' })).toThrow(/hybridClock\.last must be a clock stamp/);
  });
});
