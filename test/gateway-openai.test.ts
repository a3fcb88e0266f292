/**
 * A client nobody here wrote: the official `openai` package, pointed at the gateway (`baseURL`),
 * streams a chat completion from a fake provider through a failover from a failing provider
 * (503 with Retry-After) to a healthy one.
 */

import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { parseGatewayConfig, startGateway } from '../src/gateway/index.js';
import { upstream } from './support/gateway.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('gateway: the openai client', () => {
  it('streams a chat completion through a failover from a failing provider to a healthy one', async () => {
    let failing = 0;
    const bad = await upstream((req, res) => {
      failing++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error' } }));
    });
    const words = ['Hello', ' from', ' the', ' healthy', ' provider'];
    const good = await upstream((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { model, stream } = JSON.parse(body) as { model: string; stream: boolean };
        expect(req.url).toBe('/v1/chat/completions');
        expect(stream).toBe(true);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const t = setInterval(() => {
          if (i < words.length) {
            const chunk = {
              id: 'c1',
              object: 'chat.completion.chunk',
              created: 1,
              model,
              choices: [{ index: 0, delta: { content: words[i] }, finish_reason: null }],
            };
            res.write(`data: ${JSON.stringify(chunk)}\n\n`);
            i++;
            return;
          }
          clearInterval(t);
          res.end('data: [DONE]\n\n');
        }, 10);
      });
    });
    cleanups.push(
      () => bad.close(),
      () => good.close(),
    );
    const gw = await startGateway({
      config: parseGatewayConfig({
        listen: '127.0.0.1:0',
        accessLog: false,
        upstreams: {
          llm: {
            strategy: 'priority',
            endpoints: [
              { url: bad.url, priority: 0 },
              { url: good.url, priority: 1 },
            ],
          },
        },
        routes: [
          {
            match: { path: '/v1' },
            upstream: 'llm',
            retry: { maxAttempts: 3, methods: ['POST'] },
            idleTimeoutMs: 30_000,
          },
        ],
      }),
    });
    cleanups.push(() => gw.close(100));
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test-key', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'fake-1',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const got: string[] = [];
    for await (const chunk of stream) got.push(chunk.choices[0]?.delta.content ?? '');
    expect(got.join('')).toBe('Hello from the healthy provider');
    expect(failing).toBe(1);
  });
});
