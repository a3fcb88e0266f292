import { describe, expect, it } from 'vitest';
import { systemClock, systemRandom } from '../index.js';

describe('systemClock', () => {
  it('now() is monotonic and date() is the wall clock', () => {
    const a = systemClock.now();
    const b = systemClock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Math.abs(systemClock.date() - Date.now())).toBeLessThan(1_000);
  });

  it('setTimeout returns a handle that can be unref-ed, ref-ed and cleared (never firing once cleared)', () => {
    let fired = false;
    const count = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = count();
    const handle = systemClock.setTimeout(() => {
      fired = true;
    }, 60_000);
    expect(count()).toBe(before + 1);
    handle.unref();
    expect(count()).toBe(before);
    handle.ref();
    expect(count()).toBe(before + 1);
    systemClock.clearTimeout(handle);
    expect(count()).toBe(before);
    expect(fired).toBe(false);
  });
});

describe('systemRandom', () => {
  it('is Math.random', () => {
    expect(systemRandom).toBe(Math.random);
  });
});
