import { describe, expect, it } from 'vitest';
import { BulkheadRejectedError, ConfigError, Handler, handle, nonRetryable } from '../index.js';
import { DEFAULT_FAILURES } from './handle.js';

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}
class NotFound extends HttpError {
  constructor() {
    super(404);
  }
}

const econnreset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('handle.all', () => {
  it('handles every error, including non-Error throws, and no result', () => {
    const h = handle.all();
    for (const e of [new Error('x'), new TypeError('t'), 'string', 42, null, undefined, {}]) {
      expect(h.handlesError(e)).toBe(true);
    }
    expect(h.handlesResult(new Response(null, { status: 503 }))).toBe(false);
    expect(h.resultPredicate).toBeNull();
  });
});

describe('handle.errors', () => {
  it('with no argument handles every error', () => {
    expect(handle.errors().handlesError(new Error('x'))).toBe(true);
    expect(handle.errors().handlesError('x')).toBe(true);
  });

  it('by class: instances of the class and of its subclasses', () => {
    const h = handle.errors(HttpError);
    expect(h.handlesError(new HttpError(500))).toBe(true);
    expect(h.handlesError(new NotFound())).toBe(true);
    expect(h.handlesError(new Error('x'))).toBe(false);
    expect(h.handlesError({ status: 500 })).toBe(false);
  });

  it('Error itself handles every Error but not thrown primitives', () => {
    const h = handle.errors(Error);
    expect(h.handlesError(new RangeError('x'))).toBe(true);
    expect(h.handlesError('x')).toBe(false);
  });

  it('by predicate: the predicate decides and receives the error', () => {
    const seen: unknown[] = [];
    const h = handle.errors((e) => {
      seen.push(e);
      return (e as { code?: string }).code === 'EBUSY';
    });
    const busy = Object.assign(new Error('x'), { code: 'EBUSY' });
    expect(h.handlesError(busy)).toBe(true);
    expect(h.handlesError(new Error('y'))).toBe(false);
    expect(seen[0]).toBe(busy);
  });

  it('several matchers, classes and predicates mixed: any one matching is enough', () => {
    const h = handle.errors(RangeError, (e) => e === 'retry-me', HttpError);
    expect(h.handlesError(new RangeError('x'))).toBe(true);
    expect(h.handlesError('retry-me')).toBe(true);
    expect(h.handlesError(new NotFound())).toBe(true);
    expect(h.handlesError(new TypeError('x'))).toBe(false);
  });

  it('a class that does not extend Error is matched with instanceof, never called', () => {
    class Failure {
      constructor(readonly why: string) {}
    }
    const h = handle.errors(Failure);
    expect(h.handlesError(new Failure('x'))).toBe(true);
    expect(h.handlesError(new Error('x'))).toBe(false);
  });

  it('a pre-ES2015 constructor extending Error is matched with instanceof', () => {
    function LegacyError(this: Error, message: string) {
      this.message = message;
    }
    LegacyError.prototype = Object.create(Error.prototype);
    const Legacy = LegacyError as unknown as new (m: string) => Error;
    const h = handle.errors(Legacy);
    expect(h.handlesError(new Legacy('x'))).toBe(true);
    expect(h.handlesError(new Error('x'))).toBe(false);
  });

  it('rejects a matcher that is neither a class nor a function with a ConfigError', () => {
    const bad = 'TypeError' as unknown as () => boolean;
    expect(() => handle.errors(bad)).toThrow(ConfigError);
    expect(() => handle.errors(bad)).toThrow(
      'handle.errors must be error classes or predicates (error) => boolean (got "TypeError")',
    );
    expect(() => handle.all().orErrors(bad)).toThrow(expect.objectContaining({ option: 'handle.orErrors' }));
    expect(() => handle.all().except(bad)).toThrow(expect.objectContaining({ option: 'handle.except' }));
  });
});

describe('handle.results', () => {
  it('handles results matching the predicate and no error', () => {
    const h = handle.results((r: Response) => r.status === 503);
    expect(h.handlesResult(new Response(null, { status: 503 }))).toBe(true);
    expect(h.handlesResult(new Response(null, { status: 200 }))).toBe(false);
    expect(h.handlesError(new Error('x'))).toBe(false);
    expect(h.errorPredicate).toBeNull();
  });

  it('rejects a predicate that is not a function with a ConfigError', () => {
    const bad = 503 as unknown as (r: unknown) => boolean;
    expect(() => handle.results(bad)).toThrow(
      'handle.results must be a predicate (result) => boolean (got 503)',
    );
    expect(() => handle.none().orResults(bad)).toThrow(
      expect.objectContaining({ option: 'handle.orResults' }),
    );
  });
});

describe('handle.transient', () => {
  it('handles transient errors and transient results, as isTransient classifies them', () => {
    const h = handle.transient();
    expect(h.handlesError(econnreset())).toBe(true);
    expect(h.handlesError(new Error('invalid input'))).toBe(false);
    expect(h.handlesError(nonRetryable(econnreset()))).toBe(false);
    expect(h.handlesResult(new Response(null, { status: 429 }))).toBe(true);
    expect(h.handlesResult(new Response(null, { status: 404 }))).toBe(false);
    expect(h.handlesResult('ok')).toBe(false);
  });
});

describe('handle.none', () => {
  it('handles nothing', () => {
    const h = handle.none();
    expect(h.handlesError(new Error('x'))).toBe(false);
    expect(h.handlesResult(new Response(null, { status: 503 }))).toBe(false);
    expect(h.errorPredicate).toBeNull();
    expect(h.resultPredicate).toBeNull();
  });
});

describe('combinators', () => {
  it('orErrors adds error classes or predicates', () => {
    const h = handle.transient().orErrors(HttpError, (e) => e === 'flaky');
    expect(h.handlesError(econnreset())).toBe(true);
    expect(h.handlesError(new NotFound())).toBe(true);
    expect(h.handlesError('flaky')).toBe(true);
    expect(h.handlesError(new Error('x'))).toBe(false);
    expect(h.handlesResult(new Response(null, { status: 503 }))).toBe(true);
  });

  it('orErrors() with no argument adds every error', () => {
    expect(handle.none().orErrors().handlesError(new Error('x'))).toBe(true);
  });

  it('orResults adds a result predicate, keeping the existing one', () => {
    const h = handle.transient().orResults((r: { ok: boolean } | undefined) => r?.ok === false);
    expect(h.handlesResult({ ok: false })).toBe(true);
    expect(h.handlesResult(new Response(null, { status: 503 }))).toBe(true);
    expect(h.handlesResult({ ok: true })).toBe(false);
    expect(h.handlesError(econnreset())).toBe(true);
  });

  it('or joins two handlers: errors and results of either', () => {
    const h = handle.errors(RangeError).or(handle.results((r) => r === 'bad'));
    expect(h.handlesError(new RangeError('x'))).toBe(true);
    expect(h.handlesError(new TypeError('x'))).toBe(false);
    expect(h.handlesResult('bad')).toBe(true);
    expect(h.handlesResult('good')).toBe(false);
    const both = handle.errors(RangeError).or(handle.errors(TypeError));
    expect(both.handlesError(new TypeError('x'))).toBe(true);
    expect(both.handlesError(new SyntaxError('x'))).toBe(false);
  });

  it('or with none keeps the original predicates (no wrapper needed)', () => {
    const h = handle.errors(RangeError);
    const joined = h.or(handle.none());
    expect(joined.errorPredicate).toBe(h.errorPredicate);
    expect(joined.resultPredicate).toBeNull();
    expect(handle.none().or(h).errorPredicate).toBe(h.errorPredicate);
  });

  it('except removes errors by class or predicate, and leaves results alone', () => {
    const h = handle
      .all()
      .orResults((r) => r === 'bad')
      .except(NotFound, (e) => (e as { code?: string }).code === 'EPERM');
    expect(h.handlesError(new HttpError(500))).toBe(true);
    expect(h.handlesError(new NotFound())).toBe(false);
    expect(h.handlesError(Object.assign(new Error('x'), { code: 'EPERM' }))).toBe(false);
    expect(h.handlesResult('bad')).toBe(true);
  });

  it('except() with nothing excludes nothing', () => {
    const h = handle.all().except();
    expect(h.handlesError(new Error('x'))).toBe(true);
  });

  it('except on a handler without errors still handles no error', () => {
    const h = handle.results(() => true).except(RangeError);
    expect(h.handlesError(new TypeError('x'))).toBe(false);
    expect(h.handlesResult(1)).toBe(true);
  });

  it('except applies to what was combined before it, not to what is added after', () => {
    const h = handle.errors(HttpError).except(NotFound).orErrors(NotFound);
    expect(h.handlesError(new NotFound())).toBe(true);
  });
});

describe('immutability', () => {
  it('every combinator returns a new handler and leaves the original unchanged', () => {
    const base = handle.errors(RangeError);
    const derived = [
      base.orErrors(TypeError),
      base.orResults(() => true),
      base.or(handle.transient()),
      base.except(RangeError),
    ];
    for (const d of derived) {
      expect(d).not.toBe(base);
      expect(d).toBeInstanceOf(Handler);
    }
    expect(base.handlesError(new RangeError('x'))).toBe(true);
    expect(base.handlesError(new TypeError('x'))).toBe(false);
    expect(base.handlesResult('anything')).toBe(false);
  });

  it('the builders return a fresh handler each time', () => {
    expect(handle.all()).not.toBe(handle.all());
    expect(handle.transient()).not.toBe(handle.transient());
  });
});

describe('DEFAULT_FAILURES (the breaker default)', () => {
  it("counts every error except a bulkhead's own rejection", () => {
    expect(DEFAULT_FAILURES.handlesError(new Error('x'))).toBe(true);
    expect(DEFAULT_FAILURES.handlesError(new BulkheadRejectedError('b', 'BULKHEAD_FULL', 1, 0))).toBe(false);
    expect(DEFAULT_FAILURES.handlesResult('x')).toBe(false);
  });
});
