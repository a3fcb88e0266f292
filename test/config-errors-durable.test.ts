/**
 * Every public constructor of bulwark/durable, given bad options (wrong type, out of range,
 * unknown key, misspelled key), throws the one ConfigError with the dotted path of the option.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/core/errors.js';
import { openQueue, postgresStore, sqliteStore } from '../src/durable/index.js';

type Case = readonly [
  label: string,
  run: () => unknown,
  option: string,
  code?: 'UNKNOWN_OPTION',
  suggestion?: string,
];

const store = () => sqliteStore({ path: ':memory:' });

async function withQueue<R>(fn: (q: Awaited<ReturnType<typeof openQueue>>) => R): Promise<Awaited<R>> {
  const q = await openQueue({ name: 'cfg', store: store(), statsIntervalMs: 0 });
  try {
    return await fn(q);
  } finally {
    await q.close();
  }
}

const cases: Case[] = [
  // openQueue
  ['openQueue: wrong type', () => openQueue({ name: 42 as never, store: store() }), 'openQueue.name'],
  ['openQueue: empty name', () => openQueue({ name: '', store: store() }), 'openQueue.name'],
  ['openQueue: not a store', () => openQueue({ name: 'q', store: {} as never }), 'openQueue.store'],
  [
    'openQueue: out of range',
    () => openQueue({ name: 'q', store: store(), maxAttempts: 0 }),
    'openQueue.maxAttempts',
  ],
  [
    'openQueue: negative timeout',
    () => openQueue({ name: 'q', store: store(), timeoutMs: -1 }),
    'openQueue.timeoutMs',
  ],
  [
    'openQueue: nested out of range',
    () => openQueue({ name: 'q', store: store(), retention: { completedMs: 0 } }),
    'openQueue.retention.completedMs',
  ],
  [
    'openQueue: cross-field rule',
    () => openQueue({ name: 'q', store: store(), retention: { completedMs: 10, deadMs: 5 } }),
    'openQueue.retention.deadMs',
  ],
  [
    'openQueue: unknown key',
    () => openQueue({ name: 'q', store: store(), bogus: 1 } as never),
    'openQueue.bogus',
    'UNKNOWN_OPTION',
  ],
  [
    'openQueue: misspelled key',
    () => openQueue({ name: 'q', store: store(), maxAttemps: 3 } as never),
    'openQueue.maxAttemps',
    'UNKNOWN_OPTION',
    'maxAttempts',
  ],
  [
    'openQueue: misspelled nested key',
    () => openQueue({ name: 'q', store: store(), retention: { completedMS: 1 } } as never),
    'openQueue.retention.completedMS',
    'UNKNOWN_OPTION',
    'completedMs',
  ],
  // queue.work
  [
    'work: wrong type',
    () => withQueue((q) => q.work(async () => {}, { concurrency: '8' as never })),
    'work.concurrency',
  ],
  ['work: out of range', () => withQueue((q) => q.work(async () => {}, { leaseMs: 0 })), 'work.leaseMs'],
  [
    'work: heartbeat above half the lease',
    () => withQueue((q) => q.work(async () => {}, { leaseMs: 100, heartbeatMs: 80 })),
    'work.heartbeatMs',
  ],
  [
    'work: nested',
    () => withQueue((q) => q.work(async () => {}, { rateLimit: { perSec: 0 } })),
    'work.rateLimit.perSec',
  ],
  [
    'work: misspelled key',
    () => withQueue((q) => q.work(async () => {}, { concurency: 2 } as never)),
    'work.concurency',
    'UNKNOWN_OPTION',
    'concurrency',
  ],
  ['work: not a handler', () => withQueue((q) => q.work(42 as never)), 'work(handler)'],
  // queue.enqueue / enqueueMany
  [
    'enqueue: wrong type',
    () => withQueue((q) => q.enqueue(1, { priority: 'high' as never })),
    'enqueue.priority',
  ],
  ['enqueue: out of range', () => withQueue((q) => q.enqueue(1, { delayMs: -5 })), 'enqueue.delayMs'],
  [
    'enqueue: misspelled key',
    () => withQueue((q) => q.enqueue(1, { dealyMs: 5 } as never)),
    'enqueue.dealyMs',
    'UNKNOWN_OPTION',
    'delayMs',
  ],
  [
    'enqueueMany: the entry is named',
    () => withQueue((q) => q.enqueueMany([{ payload: 1 }, { payload: 2, options: { maxAttempts: 0 } }])),
    'enqueueMany[1].options.maxAttempts',
  ],
  // deadLetters.redrive
  ['redrive: out of range', () => withQueue((q) => q.deadLetters.redrive({ limit: 0 })), 'redrive.limit'],
  [
    'redrive: misspelled key',
    () => withQueue((q) => q.deadLetters.redrive({ ratePerSecond: 5 } as never)),
    'redrive.ratePerSecond',
    'UNKNOWN_OPTION',
    'ratePerSec',
  ],
  // sqliteStore
  ['sqliteStore: wrong type', () => sqliteStore({ path: 5 as never }), 'sqliteStore.path'],
  [
    'sqliteStore: bad enum',
    () => sqliteStore({ path: 'x.db', synchronous: 'OFF' as never }),
    'sqliteStore.synchronous',
  ],
  [
    'sqliteStore: out of range',
    () => sqliteStore({ path: 'x.db', busyTimeoutMs: -1 }),
    'sqliteStore.busyTimeoutMs',
  ],
  ['sqliteStore: bad table', () => sqliteStore({ path: 'x.db', table: 'a b' }), 'sqliteStore.table'],
  [
    'sqliteStore: misspelled key',
    () => sqliteStore({ path: 'x.db', busyTimeout: 5 } as never),
    'sqliteStore.busyTimeout',
    'UNKNOWN_OPTION',
    'busyTimeoutMs',
  ],
  // postgresStore
  [
    'postgresStore: not a URL',
    () => postgresStore({ connectionString: 'not a url at all' }),
    'postgresStore.connectionString',
  ],
  [
    'postgresStore: wrong protocol',
    () => postgresStore({ connectionString: 'mysql://x/y' }),
    'postgresStore.connectionString',
  ],
  ['postgresStore: wrong type', () => postgresStore({ poolSize: '10' as never }), 'postgresStore.poolSize'],
  ['postgresStore: out of range', () => postgresStore({ poolSize: 0 }), 'postgresStore.poolSize'],
  ['postgresStore: bad schema', () => postgresStore({ schema: 'Bad-Name' }), 'postgresStore.schema'],
  [
    'postgresStore: misspelled key',
    () => postgresStore({ shema: 'x' } as never),
    'postgresStore.shema',
    'UNKNOWN_OPTION',
    'schema',
  ], // per-item timeout, schedules, limits, redrive into another queue
  [
    'enqueue: timeoutMs out of range',
    () => withQueue((q) => q.enqueue(1, { timeoutMs: 0 })),
    'enqueue.timeoutMs',
  ],
  [
    'schedules.add: bad cron',
    () => withQueue((q) => q.schedules.add({ name: 's', cron: '* * 32 * *' })),
    'schedules.add.cron',
  ],
  [
    'schedules.add: bad zone',
    () => withQueue((q) => q.schedules.add({ name: 's', cron: '* * * * *', tz: 'Nowhere/City' })),
    'schedules.add.tz',
  ],
  [
    'schedules.add: everyMs under 1 s',
    () => withQueue((q) => q.schedules.add({ name: 's', everyMs: 10 })),
    'schedules.add.everyMs',
  ],
  [
    'schedules.add: misspelled key',
    () => withQueue((q) => q.schedules.add({ name: 's', everyMs: 1000, catchup: 'all' } as never)),
    'schedules.add.catchup',
    'UNKNOWN_OPTION',
    'catchUp',
  ],
  [
    'limits.set: out of range',
    () => withQueue((q) => q.limits.set({ concurrency: 0 })),
    'limits.set.concurrency',
  ],
  [
    'limits.set: burst without rate',
    () => withQueue((q) => q.limits.set({ concurrency: 1, burst: 5 })),
    'limits.set.burst',
  ],
  ['redrive: empty target queue', () => withQueue((q) => q.deadLetters.redrive({ to: '' })), 'redrive.to'],
];

describe('bulwark/durable: every bad option is one ConfigError with its dotted path', () => {
  it.each(cases.map((c) => [c[0], c] as const))('%s', async (_label, c) => {
    const [, run, option, code, suggestion] = c;
    let caught: unknown;
    try {
      await run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const e = caught as ConfigError;
    expect(e.option).toBe(option);
    expect(e.code).toBe(code ?? 'INVALID_OPTION');
    expect(e.rule.length).toBeGreaterThan(0);
    if (suggestion !== undefined) {
      expect(e.suggestion).toBe(suggestion);
      expect(e.message).toContain(`did you mean`);
    }
  });

  it('a connection string with a password is never echoed in the error', () => {
    let caught: unknown;
    try {
      postgresStore({ connectionString: 'mysql://app:s3cret@db/x' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message).not.toContain('s3cret');
    expect(JSON.stringify((caught as ConfigError).value)).not.toContain('s3cret');
  });
});
