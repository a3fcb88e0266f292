/** Request audit over real sockets: node:http, Express and Fastify; no secret reaches the log. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { openAuditLog, requestAudit } from '../src/audit/index.js';

const SECRET = 'sk_live_SuperSecret123';
const headers = {
  authorization: `Bearer ${SECRET}`,
  cookie: `session=${SECRET}`,
  'x-user': 'alice',
  'x-internal-token': SECRET,
  'content-type': 'application/json',
};
const body = JSON.stringify({ card: { number: SECRET, exp: '12/30' }, note: 'hi' });

async function settle(log: ReturnType<typeof openAuditLog>, n: number) {
  for (let i = 0; i < 100 && (await log.list()).length < n; i++) await new Promise((r) => setTimeout(r, 10));
  const rows = await log.list({ payloads: true });
  expect(JSON.stringify(rows)).not.toContain(SECRET);
  return rows;
}

const options = (log: ReturnType<typeof openAuditLog>) => ({
  log,
  actor: (req: { headers: Record<string, unknown> }) => req.headers['x-user'] as string | undefined,
  redactHeaders: ['x-internal-token'],
  recordHeaders: ['authorization', 'x-internal-token', 'x-user'],
  redactJsonPaths: ['card.number'],
  recordBody: true,
});

describe('request audit', () => {
  it('node:http', async () => {
    const log = openAuditLog({ store: 'sqlite::memory:' });
    const audit = requestAudit(options(log));
    const server = createServer(audit.node((_req, res) => res.end(`echo ${SECRET.length}`))).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    await fetch(`http://127.0.0.1:${port}/pay?token=${SECRET}&x=1`, { method: 'POST', headers, body });
    const [e] = await settle(log, 1);
    expect(e).toMatchObject({ actor: 'alice', action: 'POST /pay', outcome: 'success' });
    expect(e!.payload).toMatchObject({
      status: 200,
      headers: { authorization: '[REDACTED]', 'x-internal-token': '[REDACTED]', 'x-user': 'alice' },
    });
    server.close();
    await log.close();
  });

  it('Express (route template, redacted body)', async () => {
    const log = openAuditLog({ store: 'sqlite::memory:' });
    const app = express();
    app.use(express.json());
    app.use(requestAudit(options(log)).express());
    app.post('/orders/:id', (_req, res) => {
      res.status(201).json({ ok: true });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    await fetch(`http://127.0.0.1:${port}/orders/42`, { method: 'POST', headers, body });
    const [e] = await settle(log, 1);
    expect(e).toMatchObject({ action: 'POST /orders/:id', resource: '/orders/42' });
    expect(e!.payload).toMatchObject({
      status: 201,
      body: { card: { number: '[REDACTED]', exp: '12/30' }, note: 'hi' },
    });
    server.close();
    await log.close();
  });

  it('Fastify', async () => {
    const log = openAuditLog({ store: 'sqlite::memory:' });
    const app = Fastify();
    await app.register(requestAudit(options(log)).fastify);
    app.post('/items/:id', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/items/7?password=${SECRET}`, {
      method: 'POST',
      headers,
      body,
    });
    expect(res.status).toBe(200);
    const [e] = await settle(log, 1);
    expect(e).toMatchObject({ actor: 'alice', action: 'POST /items/:id' });
    expect(e!.payload).toMatchObject({ status: 200, body: { card: { number: '[REDACTED]' } } });
    await app.close();
    await log.close();
  });
});
