import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  handle,
  isResponseLike,
  isTransient,
  isTransientResult,
  isTransientStatus,
  NonRetryableError,
  nonRetryable,
  TimeoutError,
} from '../index.js';

/** An Error with extra fields, as Node, undici and database drivers make them. */
function err(fields: Record<string, unknown>, message = 'failure'): Error {
  return Object.assign(new Error(message), fields);
}

const TRANSIENT_STATUSES = [408, 425, 429, 500, 502, 503, 504];
const PERMANENT_STATUSES = [200, 204, 301, 400, 401, 403, 404, 409, 422, 501, 505];

describe('isTransient: Node and undici network errors', () => {
  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'])(
    'a Node error with code %s is transient',
    (code) => {
      expect(isTransient(err({ code }))).toBe(true);
    },
  );

  it.each(['UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])(
    'an undici error with code %s is transient',
    (code) => {
      expect(isTransient(err({ code }))).toBe(true);
    },
  );

  it("fetch's TypeError('fetch failed') is transient when its cause is a network error", () => {
    const cause = err({ code: 'UND_ERR_CONNECT_TIMEOUT' }, 'Connect Timeout Error');
    expect(isTransient(new TypeError('fetch failed', { cause }))).toBe(true);
    const econn = err({ code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
    expect(isTransient(new TypeError('fetch failed', { cause: econn }))).toBe(true);
  });

  it("fetch's TypeError('fetch failed') is not transient on its own or with a permanent cause", () => {
    expect(isTransient(new TypeError('fetch failed'))).toBe(false);
    expect(isTransient(new TypeError('fetch failed', { cause: err({ code: 'ERR_INVALID_URL' }) }))).toBe(
      false,
    );
  });

  it('an unknown error code, a plain error and a programming error are not transient', () => {
    expect(isTransient(err({ code: 'ENOENT' }))).toBe(false);
    expect(isTransient(err({ code: 'EACCES' }))).toBe(false);
    expect(isTransient(new Error('invalid input'))).toBe(false);
    expect(isTransient(new TypeError('x is not a function'))).toBe(false);
    expect(isTransient(new RangeError('bad'))).toBe(false);
  });
});

describe('isTransient: HTTP statuses', () => {
  it.each(TRANSIENT_STATUSES)('a fetch Response with status %i is transient', (status) => {
    expect(isTransient(new Response(null, { status }))).toBe(true);
  });

  it.each(PERMANENT_STATUSES.filter((s) => s >= 200))('a fetch Response with status %i is not', (status) => {
    const body = status === 204 || status === 301 ? null : 'x';
    expect(isTransient(new Response(body, { status }))).toBe(false);
  });

  it.each(TRANSIENT_STATUSES)('a Response-like object with status %i is transient', (status) => {
    expect(isTransient({ status, headers: {} })).toBe(true);
    expect(isTransient({ status, ok: false })).toBe(true);
    expect(isTransient({ status, statusText: 'x' })).toBe(true);
  });

  it.each(TRANSIENT_STATUSES)(
    'an error carrying status %i (status, statusCode or response.status) is transient',
    (status) => {
      expect(isTransient(err({ status }))).toBe(true);
      expect(isTransient(err({ statusCode: status }))).toBe(true);
      expect(isTransient(err({ response: { status } }))).toBe(true);
      expect(isTransient(err({ response: { statusCode: status } }))).toBe(true);
    },
  );

  it.each([400, 404, 501])('status %i is not transient, on a Response or on an error', (status) => {
    expect(isTransient(new Response('x', { status }))).toBe(false);
    expect(isTransient(err({ status }))).toBe(false);
    expect(isTransient(err({ statusCode: status }))).toBe(false);
    expect(isTransient(err({ response: { status } }))).toBe(false);
  });

  it('a status of the wrong type is ignored', () => {
    expect(isTransient(err({ status: '503' }))).toBe(false);
    expect(isTransient(err({ response: null }))).toBe(false);
  });
});

describe('isTransient: databases', () => {
  it.each(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300'])(
    'PostgreSQL SQLSTATE %s is transient',
    (code) => {
      expect(isTransient(err({ code, severity: 'ERROR' }))).toBe(true);
    },
  );

  it.each(['08000', '08001', '08003', '08004', '08006', '08007', '08P01'])(
    'PostgreSQL connection-exception class 08 (%s) is transient',
    (code) => {
      expect(isTransient(err({ code }))).toBe(true);
    },
  );

  it.each(['23505', '42P01', '22P02', '42601', '57014'])(
    'PostgreSQL SQLSTATE %s is not transient',
    (code) => {
      expect(isTransient(err({ code }))).toBe(false);
    },
  );

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it.each([
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
  ])('the Redis reply "%s" is transient', (message) => {
    expect(isTransient(new Error(message))).toBe(true);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it.each([
    'BUSYGROUP Consumer Group name already exists',
    'BUSYKEY Target key name already exists.',
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    'ERR unknown command',
    'NOSCRIPT No matching script',
  ])('the Redis reply "%s" is not transient', (message) => {
    expect(isTransient(new Error(message))).toBe(false);
  });

  it.each([1205, 1213])('MySQL errno %i is transient', (errno) => {
    expect(isTransient(err({ errno, sqlState: '40001' }))).toBe(true);
    expect(isTransient(err({ errno }))).toBe(true);
  });

  it('MySQL errors are also recognised by their mysql2 code names', () => {
    expect(isTransient(err({ code: 'ER_LOCK_WAIT_TIMEOUT' }))).toBe(true);
    expect(isTransient(err({ code: 'ER_LOCK_DEADLOCK' }))).toBe(true);
  });

  it('other MySQL errors are not transient', () => {
    expect(isTransient(err({ errno: 1062, code: 'ER_DUP_ENTRY' }))).toBe(false);
    expect(isTransient(err({ errno: 1064, code: 'ER_PARSE_ERROR' }))).toBe(false);
  });
});

describe('isTransient: what is never transient', () => {
  it('an error marked nonRetryable() is never transient, whatever it carries', () => {
    expect(isTransient(nonRetryable(err({ code: 'ECONNRESET' })))).toBe(false);
    expect(isTransient(nonRetryable(err({ status: 503 })))).toBe(false);
    expect(isTransient(nonRetryable(new TimeoutError(10)))).toBe(false);
    expect(isTransient(new NonRetryableError('x'))).toBe(false);
  });

  it('a transient error wrapped by a nonRetryable one is not transient (the mark stops the walk)', () => {
    const inner = err({ code: 'ECONNRESET' });
    expect(isTransient(nonRetryable(new Error('outer', { cause: inner })))).toBe(false);
  });

  it('an AbortError is never transient, even with a transient code or cause', () => {
    const abort = new DOMException('This operation was aborted', 'AbortError');
    expect(isTransient(abort)).toBe(false);
    expect(isTransient(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ECONNRESET' }))).toBe(
      false,
    );
    expect(
      isTransient(
        Object.assign(new Error('aborted', { cause: err({ code: 'ECONNRESET' }) }), { name: 'AbortError' }),
      ),
    ).toBe(false);
  });

  it('non-objects (strings, numbers, null, undefined) are never transient', () => {
    for (const v of ['ECONNRESET', 503, null, undefined, true, Symbol('x')])
      expect(isTransient(v)).toBe(false);
  });

  it('a plain successful value is not transient', () => {
    expect(isTransient({ ok: true })).toBe(false);
    expect(isTransient([1, 2])).toBe(false);
    expect(isTransient({ status: 'pending' })).toBe(false);
  });
});

describe('isTransient: cause chains and AggregateError', () => {
  it('follows the cause chain', () => {
    const root = err({ code: 'ECONNRESET' });
    const mid = new Error('query failed', { cause: root });
    expect(isTransient(new Error('request failed', { cause: mid }))).toBe(true);
  });

  it('follows the chain only a few levels deep (a cause at depth 4 is seen, at depth 5 it is not)', () => {
    const chain = (depth: number): Error => {
      let e: Error = err({ code: 'ECONNRESET' });
      for (let i = 0; i < depth; i++) e = new Error(`level ${i}`, { cause: e });
      return e;
    };
    expect(isTransient(chain(4))).toBe(true);
    expect(isTransient(chain(5))).toBe(false);
  });

  it('terminates on a self-referential and on a cyclic cause', () => {
    const self = new Error('self') as Error & { cause?: unknown };
    self.cause = self;
    expect(isTransient(self)).toBe(false);
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isTransient(a)).toBe(false);
  });

  it('an AggregateError is transient when any of its errors is (as from happy-eyeballs connects)', () => {
    const agg = new AggregateError([new Error('x'), err({ code: 'ECONNREFUSED' })], 'connect failed');
    expect(isTransient(agg)).toBe(true);
    expect(isTransient(new TypeError('fetch failed', { cause: agg }))).toBe(true);
    expect(isTransient(new AggregateError([new Error('x'), new RangeError('y')]))).toBe(false);
    expect(isTransient(new AggregateError([]))).toBe(false);
  });
});

describe('isTransient: Bulwark errors', () => {
  it("Bulwark's TimeoutError is transient", () => {
    expect(isTransient(new TimeoutError(2_000))).toBe(true);
    expect(isTransient(new Error('wrapped', { cause: new TimeoutError(1) }))).toBe(true);
  });

  it('an open breaker is not transient by classification (retrying into it is pointless)', () => {
    expect(isTransient(new BrokenCircuitError('b', 'open', 1_000))).toBe(false);
  });
});

describe('isTransientStatus', () => {
  it.each(TRANSIENT_STATUSES)('%i is a transient status', (s) => {
    expect(isTransientStatus(s)).toBe(true);
  });
  it.each([...PERMANENT_STATUSES, 0, -1, 503.5, Number.NaN])('%d is not', (s) => {
    expect(isTransientStatus(s)).toBe(false);
  });
});

describe('isResponseLike', () => {
  it('is true for a fetch Response and for objects with a numeric status and headers, ok or statusText', () => {
    expect(isResponseLike(new Response('x'))).toBe(true);
    expect(isResponseLike({ status: 200, headers: {} })).toBe(true);
    expect(isResponseLike({ status: 200, ok: true })).toBe(true);
    expect(isResponseLike({ status: 200, statusText: 'OK' })).toBe(true);
  });

  it('is false for a bare status, a non-numeric status and non-objects', () => {
    expect(isResponseLike({ status: 200 })).toBe(false);
    expect(isResponseLike({ status: '200', headers: {} })).toBe(false);
    expect(isResponseLike(null)).toBe(false);
    expect(isResponseLike(undefined)).toBe(false);
    expect(isResponseLike(200)).toBe(false);
    expect(isResponseLike('HTTP/1.1 200 OK')).toBe(false);
  });
});

describe('isTransient: the platform timeout', () => {
  it("counts AbortSignal.timeout()'s DOMException TimeoutError as transient", async () => {
    const signal = AbortSignal.timeout(1);
    await new Promise((r) => setTimeout(r, 5));
    expect((signal.reason as Error).name).toBe('TimeoutError');
    expect(isTransient(signal.reason)).toBe(true);
    expect(isTransient(new DOMException('stop', 'AbortError'))).toBe(false);
  });
});

describe('results are failures only when they are Response-like', () => {
  it('plain objects that merely look like errors are not transient results', () => {
    for (const r of [
      { status: 503 },
      { id: 1, code: '08001' },
      { message: 'BUSY until 5pm' },
      { statusCode: 500 },
    ]) {
      expect(isTransient(r)).toBe(false);
      expect(isTransientResult(r)).toBe(false);
      expect(handle.transient().handlesResult(r)).toBe(false);
    }
    expect(isTransientResult(new Response(null, { status: 503 }))).toBe(true);
    expect(handle.transient().handlesResult(new Response(null, { status: 429 }))).toBe(true);
    expect(isTransientResult(Object.assign(new Error('x'), { status: 503, headers: {} }))).toBe(false);
  });
});
