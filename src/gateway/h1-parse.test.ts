import { describe, expect, it } from 'vitest';
import { type ResponseHeaders, ResponseParser, UpstreamError } from './h1-parse.js';

interface Parsed {
  status: number;
  headers: ResponseHeaders;
  body: string;
  heads: number;
  done: boolean;
  stop: number;
  keepAlive: boolean;
}

/** Feeds `raw` in pieces of `step` bytes (0: all at once). */
function parse(raw: string, step = 0, method = 'GET'): Parsed {
  const out = { status: 0, headers: {} as ResponseHeaders, body: '', heads: 0 };
  const p = new ResponseParser({
    head: (status, headers) => {
      out.status = status;
      out.headers = headers;
      out.heads++;
    },
    body: (chunk) => {
      out.body += chunk.toString('latin1');
    },
  });
  p.reset(method);
  const buf = Buffer.from(raw, 'latin1');
  let stop = 0;
  const size = step === 0 ? buf.length : step;
  for (let i = 0; i < buf.length && !p.done; i += size) {
    const piece = buf.subarray(i, Math.min(buf.length, i + size));
    stop = i + p.execute(piece);
  }
  return { ...out, done: p.done, stop, keepAlive: p.keepAlive };
}

function fails(raw: string, message: RegExp): void {
  let error: unknown;
  try {
    parse(raw);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UpstreamError);
  expect((error as UpstreamError).code).toBe('UPSTREAM_PROTOCOL');
  expect((error as Error).message).toMatch(message);
}

describe('ResponseParser', () => {
  const cl =
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello world';
  const chunked =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';

  it('frames Content-Length bodies, whatever the split', () => {
    for (const step of [0, 1, 2, 3, 7, 50]) {
      const r = parse(cl, step);
      expect(r).toMatchObject({ status: 200, body: 'hello world', done: true, keepAlive: true, heads: 1 });
      expect(r.headers['content-type']).toBe('text/plain');
      expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    }
  });

  it('decodes chunked bodies (extensions skipped, trailers dropped), whatever the split', () => {
    for (const step of [0, 1, 2, 5, 13]) {
      const r = parse(chunked, step);
      expect(r).toMatchObject({ status: 200, body: 'hello 0123456789', done: true });
    }
  });

  it('stops at the end of the message and says where', () => {
    const r = parse(`${cl}HTTP/1.1 200 OK\r\n`);
    expect(r.done).toBe(true);
    expect(r.stop).toBe(Buffer.byteLength(cl));
  });

  it('knows bodiless responses: HEAD, 204, 304', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 0, 'HEAD')).toMatchObject({
      done: true,
      body: '',
    });
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ status: 204, done: true });
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n')).toMatchObject({
      status: 304,
      done: true,
    });
  });

  it('skips interim 1xx heads', () => {
    const r = parse(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    );
    expect(r).toMatchObject({ status: 201, body: 'ok', heads: 1, done: true });
  });

  it('reads until the connection ends when there is no length, and then does not keep it', () => {
    const p = new ResponseParser({ head: () => {}, body: () => {} });
    p.reset('GET');
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\nsome body'));
    expect(p.done).toBe(false);
    expect(p.untilClose).toBe(true);
    expect(p.keepAlive).toBe(false);
    p.eof();
    expect(p.done).toBe(true);
  });

  it('a connection that ends early is UPSTREAM_CLOSED', () => {
    const p = new ResponseParser({ head: () => {}, body: () => {} });
    p.reset('GET');
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    expect(() => p.eof()).toThrow(expect.objectContaining({ code: 'UPSTREAM_CLOSED' }));
  });

  it('reads Connection and Keep-Alive', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(
      true,
    );
    const p = new ResponseParser({ head: () => {}, body: () => {} });
    p.reset('GET');
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n'));
    expect(p.keepAliveHintMs).toBe(5000);
  });

  it('refuses invalid and ambiguous responses', () => {
    fails(
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      /both Transfer-Encoding/,
    );
    fails('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', /several Content-Length/);
    fails('HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', /invalid Content-Length/);
    fails('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/);
    fails('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /invalid chunk size/);
    fails('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n', /longer than its size/);
    fails('HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n', /header/);
    fails('HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n', /invalid header name/);
    fails('HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n', /invalid value/);
    fails('HTTP/2 200\r\n\r\n', /bad status line/);
    fails('HTTP/1.1 1e2 OK\r\n\r\n', /bad status code/);
    fails('garbage\r\n\r\n', /bad status line/);
    fails('HTTP/1.1 101 Switching Protocols\r\n\r\n', /101/);
    fails(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, /64 KiB/);
  });

  it('refuses a head that never ends past 64 KiB, fed in pieces', () => {
    const p = new ResponseParser({ head: () => {}, body: () => {} });
    p.reset('GET');
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\n'));
    const line = Buffer.from(`X: ${'a'.repeat(1000)}\r\n`);
    expect(() => {
      for (let i = 0; i < 100; i++) p.execute(line);
    }).toThrow(/64 KiB/);
  });
});
