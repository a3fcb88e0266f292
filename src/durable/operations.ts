/**
 * What an operator can see and do on a queue through the control plane: browse items by state,
 * browse dead letters filtered by error, time and attempts (payloads previewed with secrets
 * redacted), redrive selected or all at a rate, purge terminal items (with a dry run), pause and
 * resume the queue fleet-wide; list, add and remove schedules; set or clear fleet-wide limits;
 * redrive into another queue.
 */
import type { ComponentOperation } from '../core/component.js';
import { s } from '../core/schema.js';
import type { ItemView } from './job.js';
import type { Queue } from './queue.js';

const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|authorization|cookie|card|cvv|cvc|ssn|iban|private/i;

/** A short JSON preview of a payload with secret-looking fields replaced. @internal */
export function previewPayload(value: unknown, max = 240): string {
  let text: string;
  try {
    text =
      JSON.stringify(value, (k, v: unknown) => (k !== '' && SECRET_KEY.test(k) ? '[REDACTED]' : v)) ??
      'undefined';
  } catch {
    text = '[unserialisable]';
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function row(item: ItemView, error?: Record<string, unknown> | null): Record<string, unknown> {
  return {
    id: item.id,
    state: item.state,
    attempts: item.attempts,
    priority: item.priority,
    createdAt: new Date(item.createdAt).toISOString(),
    updatedAt: new Date(item.updatedAt).toISOString(),
    ...(item.deadReason !== null ? { deadReason: item.deadReason } : {}),
    ...(item.progress !== null && item.progress !== undefined ? { progress: item.progress } : {}),
    ...(item.timeoutMs !== null && item.timeoutMs !== undefined ? { timeoutMs: item.timeoutMs } : {}),
    ...(error !== undefined && error !== null ? { error: String(error.message ?? error.code ?? '') } : {}),
    payload: item.payloadError !== undefined ? `[${item.payloadError}]` : previewPayload(item.payload),
  };
}

const op = <I>(o: ComponentOperation<I, unknown>): ComponentOperation => o as ComponentOperation;

/**
 * The operations of a queue (see the module doc).
 *
 * @example
 * ```ts
 * import { openQueue, sqliteStore } from 'bulwark/durable';
 * const q = await openQueue({ name: 'ops', store: sqliteStore({ path: ':memory:' }) });
 * console.log(q.operations().map((o) => o.name)); // [ 'items', 'deadLetters', 'redrive', 'purge', 'pause', 'resume', 'schedules', 'addSchedule', 'removeSchedule', 'limits' ]
 * await q.close();
 * ```
 */
export function queueOperations<T>(q: Queue<T>): readonly ComponentOperation[] {
  return [
    op<{ state: 'pending' | 'active' | 'completed' | 'dead'; limit: number; after?: string }>({
      name: 'items',
      type: 'view',
      summary: 'Items by state, oldest id first (payloads previewed, secrets redacted)',
      input: s.object({
        state: s.optional(s.oneOf(['pending', 'active', 'completed', 'dead'] as const), 'pending'),
        limit: s.optional(s.int({ min: 1, max: 500 }), 50),
        after: s.optional(s.string()),
      }),
      run: async (i) => (await q.list(i)).map((item) => row(item as ItemView)),
    }),
    // Deliberate repetition: an operation descriptor is data (name, type, summary, input, run), one
    // literal per operation so each reads on its own.
    op<{ limit: number; after?: string; error?: string; minAttempts?: number; sinceMs?: number }>({
      name: 'deadLetters',
      type: 'view',
      summary: 'Dead letters, filtered by error text, attempts and age',
      input: s.object({
        limit: s.optional(s.int({ min: 1, max: 500 }), 100),
        after: s.optional(s.string()),
        error: s.optional(s.string({ maxLength: 200 })),
        minAttempts: s.optional(s.int({ min: 0 })),
        sinceMs: s.optional(s.duration().describe('only items that died within this many ms')),
      }),
      run: async (i) => {
        const now = Date.now();
        const dead = await q.deadLetters.list({
          limit: i.limit,
          ...(i.after !== undefined ? { after: i.after } : {}),
        });
        return dead
          .filter((d) => i.error === undefined || JSON.stringify(d.error ?? '').includes(i.error))
          .filter((d) => i.minAttempts === undefined || d.attempts >= i.minAttempts)
          .filter((d) => i.sinceMs === undefined || now - d.updatedAt <= i.sinceMs)
          .map((d) => row(d as ItemView, d.error));
      },
    }),
    op<{ ids?: string[]; limit: number; ratePerSec?: number; to?: string }>({
      name: 'redrive',
      type: 'action',
      summary:
        'Send dead letters back to pending (or into queue `to`): the selected ids, or the oldest up to limit, at a rate',
      input: s.object({
        ids: s.optional(s.array(s.string(), { min: 1, max: 1000 })),
        limit: s.optional(s.int({ min: 1, max: 100_000 }), 100),
        ratePerSec: s.optional(s.int({ min: 1, max: 10_000 })),
        to: s.optional(s.string({ maxLength: 200 }).describe('another queue of the same store')),
      }),
      run: async (i) => {
        const r = await q.deadLetters.redrive({
          limit: i.ids?.length ?? i.limit,
          ...(i.ids !== undefined ? { ids: i.ids } : {}),
          ...(i.ratePerSec !== undefined ? { ratePerSec: i.ratePerSec } : {}),
          ...(i.to !== undefined ? { to: i.to } : {}),
        });
        return { redriven: r.redriven, skipped: r.skipped };
      },
    }),
    op<{ state: 'completed' | 'dead'; olderThanMs?: number }>({
      name: 'purge',
      type: 'action',
      role: 'admin',
      destructive: true,
      summary: 'Delete terminal items (completed or dead), optionally only older ones',
      input: s.object({
        state: s.oneOf(['completed', 'dead'] as const),
        olderThanMs: s.optional(s.duration()),
      }),
      run: async (i, ctx) => ({
        [ctx.dryRun ? 'wouldDelete' : 'deleted']: await q.purge(i.state, {
          ...(i.olderThanMs !== undefined ? { olderThanMs: i.olderThanMs } : {}),
          ...(ctx.dryRun ? { count: true } : {}),
        }),
      }),
    }),
    // Deliberate repetition: pause and resume are two operation descriptors (data),
    // one literal per operation so each reads on its own.
    op({
      name: 'pause',
      type: 'action',
      summary: 'Stop every worker of the fleet from claiming',
      input: s.object({}),
      run: () => q.pause(),
    }),
    op({
      name: 'resume',
      type: 'action',
      summary: 'Let workers claim again',
      input: s.object({}),
      run: () => q.resume(),
    }),
    ...scheduleOperations(q),
  ];
}

/** The schedules and limits operations of a queue. */
function scheduleOperations<T>(q: Queue<T>): ComponentOperation[] {
  return [
    op({
      name: 'schedules',
      type: 'view',
      summary: 'Schedules of the queue with their next and last tick, and the fleet-wide limits',
      input: s.object({}),
      run: async () => ({
        schedules: (await q.schedules.list()).map((x) => ({
          ...x,
          payload: previewPayload(x.payload),
          nextRunAt: x.nextRunAt === Number.MAX_SAFE_INTEGER ? null : new Date(x.nextRunAt).toISOString(),
          lastRunAt: x.lastRunAt === null ? null : new Date(x.lastRunAt).toISOString(),
          createdAt: new Date(x.createdAt).toISOString(),
          updatedAt: new Date(x.updatedAt).toISOString(),
        })),
        limits: await q.limits.get(),
      }),
    }),
    op<{
      name: string;
      cron?: string;
      tz?: string;
      everyMs?: number;
      catchUp?: 'none' | 'last' | 'all';
      payload?: unknown;
    }>({
      name: 'addSchedule',
      type: 'action',
      role: 'admin',
      summary: 'Create or replace a schedule (cron with optional seconds and time zone, or every N ms)',
      input: s.object({
        name: s.string({ maxLength: 200 }),
        cron: s.optional(s.string({ maxLength: 200 })),
        tz: s.optional(s.string({ maxLength: 100 })),
        everyMs: s.optional(s.int({ min: 1000 })),
        catchUp: s.optional(s.oneOf(['none', 'last', 'all'] as const)),
        payload: s.optional(s.unknown()),
      }),
      run: async (i) => {
        const v = await q.schedules.add(i as Parameters<typeof q.schedules.add>[0]);
        return { name: v.name, nextRunAt: new Date(v.nextRunAt).toISOString() };
      },
    }),
    op<{ name: string }>({
      name: 'removeSchedule',
      type: 'action',
      role: 'admin',
      destructive: true,
      summary: 'Delete a schedule (items it made stay)',
      input: s.object({ name: s.string({ maxLength: 200 }) }),
      run: async (i, ctx) => {
        if (ctx.dryRun) return { wouldRemove: (await q.schedules.list()).some((x) => x.name === i.name) };
        return { removed: await q.schedules.remove(i.name) };
      },
    }),
    op<{ concurrency?: number; ratePerSec?: number; burst?: number; clear: boolean }>({
      name: 'limits',
      type: 'action',
      role: 'admin',
      summary: 'Set the fleet-wide concurrency and/or rate limit of the queue, or clear them',
      input: s.object({
        concurrency: s.optional(s.int({ min: 1 })),
        ratePerSec: s.optional(s.number({ above: 0 })),
        burst: s.optional(s.number({ min: 1 })),
        clear: s.optional(s.boolean(), false),
      }),
      run: async (i) => {
        if (i.clear) await q.limits.clear();
        else {
          const { clear: _c, ...limits } = i;
          await q.limits.set(limits);
        }
        return { limits: await q.limits.get() };
      },
    }),
  ];
}
