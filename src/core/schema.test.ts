import { describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigError } from './errors.js';
import { s } from './schema.js';

const opts = s.object({
  limit: s.int({ min: 1 }),
  queueTimeoutMs: s.optional(s.duration(), 1000),
  name: s.optional(s.string()),
  mode: s.optional(s.oneOf(['a', 'b'] as const)),
  tiers: s.optional(s.array(s.object({ url: s.string(), weight: s.optional(s.int({ min: 1 }), 1) }))),
});

function error(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('schema', () => {
  it('parses, fills defaults and types optional keys as absent', () => {
    const v = opts.parse({ limit: 2 }, 'bulkhead');
    expect(v).toEqual({ limit: 2, queueTimeoutMs: 1000 });
    expectTypeOf(v.queueTimeoutMs).toEqualTypeOf<number>();
    expectTypeOf(v.name).toEqualTypeOf<string | undefined>();
  });

  it('names the dotted path, the value and the rule', () => {
    const e = error(() => opts.parse({ limit: 0 }, 'bulkhead'));
    expect(e).toMatchObject({
      code: 'INVALID_OPTION',
      option: 'bulkhead.limit',
      value: 0,
      rule: 'an integer >= 1',
    });
    const nested = error(() =>
      opts.parse({ limit: 1, tiers: [{ url: 'x' }, { url: 'y', weight: 0.5 }] }, 'g'),
    );
    expect(nested.option).toBe('g.tiers[1].weight');
    expect(error(() => opts.parse({ limit: 1, mode: 'c' }, 'p')).rule).toBe("one of 'a', 'b'");
    expect(error(() => opts.parse('nope', 'p')).rule).toBe('an options object');
  });

  it('refuses unknown keys with a suggestion for a misspelling', () => {
    const e = error(() => opts.parse({ limit: 1, queueTimeout: 5 }, 'bulkhead'));
    expect(e).toMatchObject({
      code: 'UNKNOWN_OPTION',
      option: 'bulkhead.queueTimeout',
      suggestion: 'queueTimeoutMs',
    });
    expect(e.message).toContain('did you mean bulkhead.queueTimeoutMs?');
    const swapped = error(() => opts.parse({ limti: 1 }, 'bulkhead'));
    expect(swapped.suggestion).toBe('limit');
    expect(error(() => opts.parse({ limit: 1, zzzzzz: 1 }, 'b')).suggestion).toBeUndefined();
  });

  it('durations, ratios and Infinity follow their rules', () => {
    expect(error(() => s.duration().parse(-1, 'x')).rule).toBe('a finite number >= 0');
    expect(s.duration({ infinity: true }).parse(Number.POSITIVE_INFINITY, 'x')).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(error(() => s.duration().parse(Number.NaN, 'x')).option).toBe('x');
    expect(error(() => s.ratio().parse(0, 'q')).rule).toBe('a finite number > 0 and <= 1');
  });

  it('emits the same rules as a JSON Schema', () => {
    expect(opts.json()).toMatchObject({
      type: 'object',
      required: ['limit'],
      additionalProperties: false,
      properties: {
        limit: { type: 'integer', minimum: 1 },
        queueTimeoutMs: { type: 'number', minimum: 0, default: 1000 },
      },
    });
    expect(s.int().describe('how many').json()).toEqual({ type: 'integer', description: 'how many' });
  });

  it('a union reports the deepest error of the branch that matched in shape', () => {
    const u = s.union([s.int({ min: 1 }), s.object({ ms: s.duration() })]);
    expect(u.parse(3, 'timeout')).toBe(3);
    expect(error(() => u.parse({ ms: -1 }, 'timeout')).option).toBe('timeout.ms');
  });
});
