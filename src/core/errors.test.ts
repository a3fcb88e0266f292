import { describe, expect, it } from 'vitest';
// Deliberate repetition: an import list (it matches index.ts's export list by shape).
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  BulwarkError,
  ConfigError,
  isNonRetryable,
  NonRetryableError,
  nonRetryable,
  TimeoutError,
} from '../index.js';
import { describe as describeValue } from './errors.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('BulwarkError', () => {
  it('is an Error with a stable code, the subclass name and an optional cause', () => {
    const cause = new Error('root');
    const e = new BulwarkError('SOMETHING', 'message', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('SOMETHING');
    expect(e.message).toBe('message');
    expect(e.name).toBe('BulwarkError');
    expect(e.cause).toBe(cause);
    expect(e.stack).toContain('BulwarkError');
  });

  it('every Bulwark error is a BulwarkError named after its class', () => {
    const all: BulwarkError[] = [
      new ConfigError('x.y', 'a number', 'z'),
      new BrokenCircuitError('b', 'open', 10),
      new TimeoutError(5),
      new BulkheadRejectedError('bh', 'BULKHEAD_FULL', 1, 0),
      new NonRetryableError('v'),
    ];
    for (const e of all) {
      expect(e).toBeInstanceOf(BulwarkError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(e.constructor.name);
    }
  });
});

describe('ConfigError', () => {
  it('has code INVALID_OPTION, the option path and a message naming the option, expectation and value', () => {
    const e = new ConfigError('retry.maxAttempts', 'an integer >= 1', 0);
    expect(e.code).toBe('INVALID_OPTION');
    expect(e.option).toBe('retry.maxAttempts');
    expect(e.message).toBe('retry.maxAttempts must be an integer >= 1 (got 0)');
    expect(e.name).toBe('ConfigError');
  });

  it('describes the offending value briefly and safely', () => {
    const msg = (v: unknown) => new ConfigError('o', 'x', v).message;
    expect(msg('abc')).toBe('o must be x (got "abc")');
    expect(msg('a'.repeat(100))).toBe(`o must be x (got "${'a'.repeat(57)}...")`);
    expect(msg(Number.NaN)).toBe('o must be x (got NaN)');
    expect(msg(true)).toBe('o must be x (got true)');
    expect(msg(10n)).toBe('o must be x (got 10)');
    expect(msg(null)).toBe('o must be x (got null)');
    expect(msg(undefined)).toBe('o must be x (got undefined)');
    expect(msg(() => 1)).toBe('o must be x (got a function)');
    expect(msg([1, 2])).toBe('o must be x (got an array)');
    expect(msg({ secret: 'hunter2' })).toBe('o must be x (got an object)');
    expect(msg(new RangeError('boom'))).toBe('o must be x (got RangeError: boom)');
  });

  it('never prints the contents of an object (no secrets in messages)', () => {
    expect(describeValue({ password: 'hunter2' })).not.toContain('hunter2');
  });
});

describe('BrokenCircuitError', () => {
  it('has code BREAKER_OPEN, the breaker, state, retryAfterMs and cause', () => {
    const cause = new Error('last failure');
    const e = new BrokenCircuitError('payments', 'open', 1234.2, cause);
    expect(e.code).toBe('BREAKER_OPEN');
    expect(e.breaker).toBe('payments');
    expect(e.state).toBe('open');
    expect(e.retryAfterMs).toBe(1234.2);
    expect(e.cause).toBe(cause);
    expect(e.message).toBe(
      'Circuit breaker "payments" rejected the call: it opened after repeated failures; retry in 1235 ms or serve a fallback',
    );
  });

  it('says what to do in each state', () => {
    expect(new BrokenCircuitError('b', 'half-open', 0).message).toContain(
      'half-open and its probe slots are taken',
    );
    expect(new BrokenCircuitError('b', 'isolated', Number.POSITIVE_INFINITY).message).toContain(
      'it was isolated by an operator',
    );
    expect(new BrokenCircuitError('b', 'forced-open', Number.POSITIVE_INFINITY).message).toContain(
      'it was forced open by an operator',
    );
  });
});

describe('TimeoutError', () => {
  it('has code TIMEOUT, timeoutMs, a message with the duration and an optional cause', () => {
    const e = new TimeoutError(2_000, 'why');
    expect(e.code).toBe('TIMEOUT');
    expect(e.timeoutMs).toBe(2_000);
    expect(e.message).toMatch(/^The operation timed out after 2000 ms/);
    expect(e.cause).toBe('why');
    expect(new TimeoutError(1).cause).toBeUndefined();
  });
});

describe('BulkheadRejectedError', () => {
  it('BULKHEAD_FULL reports the bulkhead, active and queued figures', () => {
    const e = new BulkheadRejectedError('db', 'BULKHEAD_FULL', 10, 100);
    expect(e.code).toBe('BULKHEAD_FULL');
    expect([e.bulkhead, e.inFlight, e.queued]).toEqual(['db', 10, 100]);
    expect(e.message).toBe(
      'Bulkhead "db" is full (10 running, 100 queued); shed the call, retry later or raise limit/queue',
    );
  });

  it('BULKHEAD_QUEUE_TIMEOUT says the call waited too long', () => {
    const e = new BulkheadRejectedError('db', 'BULKHEAD_QUEUE_TIMEOUT', 10, 3);
    expect(e.code).toBe('BULKHEAD_QUEUE_TIMEOUT');
    expect(e.message).toContain('waited too long in bulkhead "db"');
  });
});

describe('nonRetryable and isNonRetryable', () => {
  it('marks an error object in place: same object, class, message and stack', () => {
    class PaymentDeclined extends Error {}
    const e = new PaymentDeclined('declined');
    const stack = e.stack;
    const marked = nonRetryable(e);
    expect(marked).toBe(e);
    expect(marked).toBeInstanceOf(PaymentDeclined);
    expect(marked.message).toBe('declined');
    expect(marked.stack).toBe(stack);
    expect(isNonRetryable(marked)).toBe(true);
  });

  it('the mark is invisible: not enumerable, not in JSON, not in Object.keys', () => {
    const e = nonRetryable(Object.assign(new Error('x'), { code: 'E1' }));
    expect(Object.keys(e)).toEqual(['code']);
    expect(JSON.stringify({ ...e })).toBe('{"code":"E1"}');
  });

  it('marks any object, not only errors', () => {
    const o = nonRetryable({ reason: 'bad' });
    expect(o.reason).toBe('bad');
    expect(isNonRetryable(o)).toBe(true);
  });

  it('marks a frozen error too, keeping its identity', () => {
    const frozen = Object.freeze(new Error('frozen'));
    expect(nonRetryable(frozen)).toBe(frozen);
    expect(isNonRetryable(frozen)).toBe(true);
  });

  it('marking twice is harmless', () => {
    const e = nonRetryable(nonRetryable(new Error('x')));
    expect(isNonRetryable(e)).toBe(true);
  });

  it.each([
    ['a string', 'bad input', 'A failure marked non-retryable: "bad input"'],
    ['a number', 42, 'A failure marked non-retryable: 42'],
    ['undefined', undefined, 'A failure marked non-retryable: undefined'],
    ['null', null, 'A failure marked non-retryable: null'],
  ])('wraps %s in a NonRetryableError whose cause is the value', (_label, value, message) => {
    const e = nonRetryable(value);
    expect(e).toBeInstanceOf(NonRetryableError);
    expect(e.code).toBe('NON_RETRYABLE');
    expect(e.cause).toBe(value);
    expect(e.message).toBe(message);
    expect(isNonRetryable(e)).toBe(true);
  });

  it('a NonRetryableError is non-retryable even when constructed directly', () => {
    expect(isNonRetryable(new NonRetryableError('x'))).toBe(true);
  });

  it('unmarked errors, primitives and null are not non-retryable', () => {
    expect(isNonRetryable(new Error('x'))).toBe(false);
    expect(isNonRetryable({})).toBe(false);
    expect(isNonRetryable('x')).toBe(false);
    expect(isNonRetryable(null)).toBe(false);
    expect(isNonRetryable(undefined)).toBe(false);
  });

  it('the mark is a registered symbol, so a second copy of the library recognises it', () => {
    const e = new Error('x');
    Object.defineProperty(e, Symbol.for('bulwark.nonRetryable'), { value: true });
    expect(isNonRetryable(e)).toBe(true);
  });

  it('the mark belongs to the object, not to its cause or wrapper', () => {
    const inner = nonRetryable(new Error('inner'));
    expect(isNonRetryable(new Error('outer', { cause: inner }))).toBe(false);
  });
});
