/**
 * `bulwark queue schedules` and `bulwark queue limits`: list, add and remove a queue's schedules;
 * show, set or clear its fleet-wide limits. Changes need `--yes` (or `--dry-run` to only say what
 * would change); listing opens the store read-only.
 * @module
 */

import { type Args, confirmMode, int, str, UsageError } from './cli-args.js';
import { type CliIoLike, iso, json, table } from './cli-format.js';
import type { Queue } from './queue.js';
import type { ScheduleOptions } from './schedules.js';

/** What the commands get from the CLI. @internal */
export interface FeatureCtx {
  readonly args: Args;
  readonly io: CliIoLike;
  readonly json: boolean;
  /** Opens the `--queue` (read-only unless `write`). */
  open(write: boolean): Promise<Queue<unknown>>;
}

function number(args: Args, name: string): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} must be a number > 0 (got ${v})`);
  return n;
}

/** `queue schedules [list|add|remove]`. @internal */
export async function schedulesCommand(ctx: FeatureCtx): Promise<number> {
  const { args, io } = ctx;
  const action = args.action ?? 'list';
  if (action === 'list') {
    const q = await ctx.open(false);
    const all = await q.schedules.list();
    const time = (ms: number | null) => (ms === null || ms === Number.MAX_SAFE_INTEGER ? null : iso(ms));
    if (ctx.json) {
      io.out(
        json(
          all.map((x) => ({
            ...x,
            nextRunAt: time(x.nextRunAt),
            nextRunAtMs: x.nextRunAt,
            lastRunAt: time(x.lastRunAt),
            lastRunAtMs: x.lastRunAt,
            createdAt: iso(x.createdAt),
            updatedAt: iso(x.updatedAt),
          })),
        ),
      );
    } else if (all.length === 0) io.out(`No schedules in queue "${q.name}"`);
    else {
      const rows = all.map((x) => [
        x.name,
        x.cron === null ? `every ${x.everyMs} ms` : `${x.cron} (${x.tz})`,
        x.catchUp,
        time(x.nextRunAt) ?? 'never',
        time(x.lastRunAt) ?? '-',
      ]);
      io.out(table(['NAME', 'WHEN', 'CATCH-UP', 'NEXT RUN', 'LAST RUN'], rows));
    }
    return 0;
  }
  const name = str(args, 'name');
  if (name === undefined) throw new UsageError(`"queue schedules ${action}" needs --name NAME`);
  if (action === 'remove') {
    const dry = confirmMode(args, 'schedules remove') === 'dry-run';
    const q = await ctx.open(!dry);
    const exists = (await q.schedules.list()).some((x) => x.name === name);
    const removed = dry ? false : await q.schedules.remove(name);
    if (ctx.json)
      io.out(
        json(
          dry ? { queue: q.name, name, dryRun: true, wouldRemove: exists } : { queue: q.name, name, removed },
        ),
      );
    else if (dry)
      io.out(
        `Dry run: ${exists ? 'would remove' : 'no'} schedule "${name}" of queue "${q.name}" (nothing changed)`,
      );
    else
      io.out(
        removed
          ? `Removed schedule "${name}" of queue "${q.name}"`
          : `No schedule "${name}" in queue "${q.name}"`,
      );
    return removed || dry ? 0 : 1;
  }
  if (action !== 'add') throw new UsageError(`unknown schedules action "${action}" (list, add or remove)`);
  const cron = str(args, 'cron');
  const every = str(args, 'every') === undefined ? undefined : int(args, 'every', 1000, 1000);
  const data = str(args, 'data');
  let payload: unknown = null;
  if (data !== undefined) {
    try {
      payload = JSON.parse(data);
    } catch {
      throw new UsageError(`--data must be JSON (got ${data})`);
    }
  }
  const catchUp = str(args, 'catch-up');
  if (catchUp !== undefined && !['none', 'last', 'all'].includes(catchUp))
    throw new UsageError(`--catch-up must be none, last or all (got ${catchUp})`);
  const options = {
    name,
    payload,
    ...(cron === undefined ? {} : { cron }),
    ...(every === undefined ? {} : { everyMs: every }),
    ...(str(args, 'tz') === undefined ? {} : { tz: str(args, 'tz') }),
    ...(catchUp === undefined ? {} : { catchUp }),
  } as ScheduleOptions<unknown>;
  const dry = confirmMode(args, 'schedules add') === 'dry-run';
  const q = await ctx.open(!dry);
  if (dry) {
    if (ctx.json) io.out(json({ queue: q.name, dryRun: true, wouldAdd: options }));
    else io.out(`Dry run: would add or replace schedule "${name}" of queue "${q.name}" (nothing changed)`);
    return 0;
  }
  const v = await q.schedules.add(options);
  if (ctx.json)
    io.out(json({ queue: q.name, name: v.name, nextRunAt: iso(v.nextRunAt), nextRunAtMs: v.nextRunAt }));
  else io.out(`Schedule "${v.name}" of queue "${q.name}": next run ${iso(v.nextRunAt)}`);
  return 0;
}

/** `queue limits [--concurrency N] [--rate R] [--burst B] [--clear]`. @internal */
export async function limitsCommand(ctx: FeatureCtx): Promise<number> {
  const { args, io } = ctx;
  const concurrency = str(args, 'concurrency') === undefined ? undefined : int(args, 'concurrency', 1, 1);
  const ratePerSec = number(args, 'rate');
  const burst = number(args, 'burst');
  const clear = args.flags.has('clear');
  const change = clear || concurrency !== undefined || ratePerSec !== undefined || burst !== undefined;
  if (clear && (concurrency !== undefined || ratePerSec !== undefined))
    throw new UsageError('--clear cannot be combined with --concurrency or --rate');
  const dry = change && confirmMode(args, 'limits') === 'dry-run';
  const q = await ctx.open(change && !dry);
  const before = await q.limits.get();
  if (change && !dry) {
    if (clear) await q.limits.clear();
    else
      await q.limits.set({
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(ratePerSec === undefined ? {} : { ratePerSec }),
        ...(burst === undefined ? {} : { burst }),
      });
  }
  const after = change && !dry ? await q.limits.get() : before;
  if (ctx.json) io.out(json({ queue: q.name, limits: after, ...(dry ? { dryRun: true } : {}) }));
  else {
    const text = (l: typeof after) =>
      l === null
        ? 'none'
        : [
            l.concurrency === null ? '' : `concurrency ${l.concurrency}`,
            l.ratePerSec === null ? '' : `${l.ratePerSec}/s (burst ${l.burst ?? Math.max(1, l.ratePerSec)})`,
          ]
            .filter((x) => x !== '')
            .join(', ');
    io.out(
      `${dry ? 'Dry run: would change fleet-wide limits of' : 'Fleet-wide limits of'} queue "${q.name}": ${text(after)}`,
    );
  }
  return 0;
}
