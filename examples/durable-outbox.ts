/**
 * A durable outbox on SQLite: webhooks are delivered at once when the receiver is up and kept on
 * disk when it is down; a worker delivers what was kept once it recovers. Idempotency keys make a
 * repeated send a no-op, and a permanently rejected webhook lands in the dead letters.
 *
 *   npx tsx examples/durable-outbox.ts
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoff, nonRetryable, retry } from 'bulwark';
import { openQueue, sqliteStore, storeAndForward } from 'bulwark/durable';

interface Webhook {
  readonly orderId: number;
  readonly event: string;
}

const dir = mkdtempSync(join(tmpdir(), 'bulwark-outbox-'));
try {
  const outbox = await openQueue<Webhook>({
    name: 'webhooks',
    store: sqliteStore({ path: join(dir, 'outbox.db') }),
    maxAttempts: 5,
    backoff: backoff.exponential({ initialMs: 20, maxMs: 200 }),
  });

  // The receiver: down at first; once up, it rejects order 13 for good.
  let receiverUp = false;
  const received: number[] = [];
  async function deliver(hook: Webhook): Promise<string> {
    if (!receiverUp) throw new Error('ECONNREFUSED');
    if (hook.orderId === 13) throw nonRetryable(new Error('receiver says 422: unknown order 13'));
    if (!received.includes(hook.orderId)) received.push(hook.orderId); // idempotent on orderId
    return `202 for order ${hook.orderId}`;
  }

  const send = storeAndForward(outbox, retry({ maxAttempts: 2, backoff: backoff.constant(5) }), deliver);

  for (const orderId of [1, 2, 13]) {
    const out = await send({ orderId, event: 'paid' }, { key: `order-${orderId}-paid` });
    console.log(
      'queued' in out
        ? `order ${orderId}: kept in the outbox (${String(out.error)})`
        : `order ${orderId}: delivered`,
    );
  }
  const again = await send({ orderId: 1, event: 'paid' }, { key: 'order-1-paid' });
  console.log(
    `order 1 again: ${'queued' in again && again.duplicate ? 'already in the outbox (duplicate key)' : 'sent'}`,
  );
  console.log('outbox:', await outbox.stats());

  receiverUp = true;
  const worker = outbox.work((job) => deliver(job.payload), { concurrency: 4 });
  for (let i = 0; i < 200 && worker.stats.completed + worker.stats.dead < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await worker.stop({ graceMs: 1_000 });

  console.log('delivered after recovery:', received);
  for (const dead of await outbox.deadLetters.list({ limit: 10 })) {
    console.log(`dead letter ${dead.id}: ${dead.deadReason} — ${String(dead.error?.message)}`);
  }
  const s = await outbox.stats();
  console.log(`completed ${s.completed}, dead ${s.dead}, pending ${s.pending}`);
  await outbox.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
