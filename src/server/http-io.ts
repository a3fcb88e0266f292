/** Reading JSON bodies with a size limit, and writing JSON responses. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpProblem } from './problem.js';

/**
 * Reads a JSON body of at most `maxBytes` (413 past it, 415 for another content type, 400 for
 * invalid JSON). An empty body is `undefined`.
 */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > maxBytes)
    throw new HttpProblem(413, 'Body too large', `The body is larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes)
      throw new HttpProblem(413, 'Body too large', `The body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new HttpProblem(415, 'Unsupported media type', 'Send the body as application/json', {
      field: 'content-type',
    });
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (error) {
    throw new HttpProblem(400, 'Invalid request', `The body is not valid JSON: ${(error as Error).message}`, {
      field: 'body',
      rule: 'valid JSON',
    });
  }
}

/** Writes `value` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
