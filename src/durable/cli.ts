/**
 * The `bulwark queue` command line: inspect and operate durable queues.
 *
 * ```text
 * bulwark queue stats   --store SPEC [--queue NAME] [--json]
 * bulwark queue list    --store SPEC --queue NAME [--state S] [--limit N] [--after ID] [--payload] [--json]
 * bulwark queue dlq     --store SPEC --queue NAME [--limit N] [--after ID] [--payload] [--json]
 * bulwark queue redrive --store SPEC --queue NAME [--ids A,B] [--limit N] [--rate PER_SEC] (--yes | --dry-run) [--json]
 * bulwark queue purge   --store SPEC --queue NAME --state completed|dead [--older-than MS] [--force] (--yes | --dry-run) [--json]
 * bulwark queue schedules [list|add|remove] --store SPEC --queue NAME [--name N (--cron EXPR [--tz TZ] | --every MS) [--catch-up none|last|all] [--data JSON]] (--yes | --dry-run)
 * bulwark queue limits  --store SPEC --queue NAME [--concurrency N] [--rate PER_SEC] [--burst N] [--clear] (--yes | --dry-run)
 * ```
 * SPEC is `sqlite:PATH` or `postgres://user@host/db`. Read-only commands (stats, list, dlq, and
 * every --dry-run) open the store read-only: they never create a file, schema or table. Encrypted
 * payloads are shown (with `--payload`) when `BULWARK_KEYS` holds the keyring (`id:base64key,…`).
 * @module
 */

import { jsonError } from '../core/cli-args.js';
import { type Args, confirmMode, int, parseArgs, state, str, UsageError } from './cli-args.js';
import { ageText, errorText, iso, json, jsonItem, payloadText, table } from './cli-format.js';
import { limitsCommand, schedulesCommand } from './cli-schedules.js';
import type { RedriveSkip } from './dead-letters.js';
import { keyringFromEnv } from './encryption.js';
import { openQueue, type Queue } from './queue.js';
import type { QueueStore } from './store.js';
import { storeFromSpec } from './store-spec.js';

const USAGE = `Usage: bulwark queue <command> --store SPEC [options]

Commands:
  stats     counts by state and the age of the oldest pending item (all queues without --queue)
  list      items in id order                 [--state pending|active|completed|dead] [--limit N] [--after ID]
  dlq       dead letters with reason and error [--limit N] [--after ID]
  redrive   send dead letters back to pending  [--ids A,B] [--limit N (default 100)] [--rate PER_SEC] [--to QUEUE]
  purge     delete completed or dead items     --state completed|dead [--older-than MS] [--force for pending/active]
  schedules list (default), add or remove      --name N (--cron EXPR [--tz TZ] | --every MS)
            [--catch-up none|last|all (default last)] [--data JSON payload]
  limits    show, or set fleet-wide limits     [--concurrency N] [--rate PER_SEC] [--burst N] [--clear]
            (redrive, purge, schedules add/remove and setting limits change data: they need --yes,
             or --dry-run to only say what they would do)

Options:
  --store SPEC   sqlite:PATH or postgres://user@host/db (required; read-only commands never create it)
  --queue NAME   the queue
  --payload      show payloads (decrypted with BULWARK_KEYS when set)
  --json         machine-readable output (errors too: {"error": {"code", "message", …}})
  --yes          confirm redrive or purge
  --dry-run      show what redrive or purge would do (the same selection), change nothing

Exit codes: 0 ok, 1 failure (or ids that were not redriven), 2 usage, 130 interrupted (Ctrl-C).
`;

/** Where the CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

interface Ctx {
  readonly args: Args;
  readonly io: CliIo;
  readonly json: boolean;
  readonly store: QueueStore;
}

/** Opens the queue (read-only unless `write`), with the keyring from BULWARK_KEYS when set. */
function open(ctx: Ctx, write: boolean): Promise<Queue<unknown>> {
  const name = str(ctx.args, 'queue');
  if (name === undefined) throw new UsageError(`"queue ${ctx.args.sub}" needs --queue NAME`);
  const keys = process.env.BULWARK_KEYS;
  return openQueue<unknown>({
    name,
    store: ctx.store,
    readOnly: !write,
    statsIntervalMs: 0,
    ...(keys !== undefined && keys !== '' ? { keyring: keyringFromEnv('BULWARK_KEYS') } : {}),
  });
}

async function stats(ctx: Ctx): Promise<number> {
  const { store, io, args } = ctx;
  await store.init({ readOnly: true });
  const queue = str(args, 'queue');
  let names: string[];
  if (queue !== undefined) names = [queue];
  else if (store.listQueues !== undefined) names = await store.listQueues();
  else throw new UsageError('this store cannot list its queues: pass --queue NAME');
  const now = Date.now();
  const all = [];
  for (const name of names) all.push({ queue: name, ...(await store.stats(name, now)) });
  if (ctx.json) io.out(json(all.map((s) => ({ ...s, at: iso(now) }))));
  else if (all.length === 0) io.out(`No queues in ${store.description}`);
  else {
    const header = ['QUEUE', 'PENDING', 'DELAYED', 'ACTIVE', 'COMPLETED', 'DEAD', 'OLDEST PENDING'];
    const rows = all.map((s) => [
      s.queue,
      ...[s.pending, s.delayed, s.active, s.completed, s.dead].map(String),
      s.oldestPendingAgeMs === 0 ? '-' : ageText(s.oldestPendingAgeMs),
    ]);
    io.out(table(header, rows));
  }
  return 0;
}

async function list(ctx: Ctx): Promise<number> {
  const { args, io } = ctx;
  const dlq = args.sub === 'dlq';
  const st = dlq ? 'dead' : state(args, false);
  const after = str(args, 'after');
  const limit = int(args, 'limit', 50, 1);
  const withPayload = args.flags.has('payload');
  const q = await open(ctx, false);
  const items = await q.list({
    limit,
    ...(st === undefined ? {} : { state: st }),
    ...(after === undefined ? {} : { after }),
  });
  if (ctx.json) {
    io.out(json(items.map((v) => jsonItem(v, withPayload))));
    return 0;
  }
  if (items.length === 0) {
    io.out(dlq ? `No dead letters in queue "${q.name}"` : `No items in queue "${q.name}"`);
    return 0;
  }
  const headers = dlq
    ? ['ID', 'REASON', 'ATTEMPTS', 'DIED AT', 'REDRIVES', 'ERROR']
    : ['ID', 'STATE', 'ATTEMPTS', 'PRIORITY', 'RUN AT', 'KEY', 'KEY ID', 'PROGRESS'];
  if (withPayload) headers.push('PAYLOAD');
  const rows = items.map((v) => {
    const attempts = `${v.attempts}/${v.maxAttempts}`;
    const row = dlq
      ? [
          v.id,
          v.deadReason ?? '',
          attempts,
          iso(v.updatedAt),
          String(v.redrives),
          errorText(v.lastError).slice(0, 80),
        ]
      : [
          v.id,
          v.state,
          attempts,
          String(v.priority),
          iso(v.runAt),
          v.key ?? '',
          v.keyId ?? '',
          v.progress === null || v.progress === undefined
            ? ''
            : (JSON.stringify(v.progress) ?? '').slice(0, 40),
        ];
    if (withPayload) row.push(payloadText(v));
    return row;
  });
  io.out(table(headers, rows));
  return 0;
}

function skippedText(skipped: readonly RedriveSkip[]): string {
  const why = (s: RedriveSkip) =>
    s.reason === 'not-found'
      ? 'no such item'
      : s.reason === 'limit'
        ? 'over --limit'
        : s.reason === 'key-conflict'
          ? 'its idempotency key is taken in the target queue (left dead)'
          : s.reason === 'undecryptable'
            ? 'its payload could not be re-encrypted for the target queue (left dead)'
            : `not dead (${String(s.state)})`;
  return skipped.map((s) => `  ${s.id}: ${why(s)}`).join('\n');
}

/** Ctrl-C aborts the returned signal (instead of killing the process) until `stop()`. */
function interruptible(): { signal: AbortSignal; stop: () => void } {
  const ac = new AbortController();
  const onInt = () => ac.abort();
  process.on('SIGINT', onInt);
  return { signal: ac.signal, stop: () => process.off('SIGINT', onInt) };
}

async function redrive(ctx: Ctx): Promise<number> {
  const { args, io } = ctx;
  const ids = str(args, 'ids')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const limit = int(args, 'limit', ids?.length ?? 100, 1);
  const rate = str(args, 'rate') === undefined ? undefined : int(args, 'rate', 1, 1);
  const dry = confirmMode(args, 'redrive') === 'dry-run';
  const q = await open(ctx, !dry);
  const to = str(args, 'to');
  const selection = { limit, ...(ids === undefined ? {} : { ids }) };
  if (dry) {
    const { wouldRedrive, skipped } = await q.deadLetters.preview(selection);
    if (ctx.json)
      io.out(
        json({ queue: q.name, ...(to === undefined ? {} : { to }), dryRun: true, wouldRedrive, skipped }),
      );
    else {
      // Into another queue, a key taken there is found only when moving (reported as key-conflict).
      const into = to === undefined ? '' : ` into queue "${to}"`;
      io.out(
        `Dry run: would redrive ${wouldRedrive.length} dead letter(s) of queue "${q.name}"${into} (nothing changed; pass --yes to do it)`,
      );
      if (skipped.length > 0) io.out(`Would not redrive ${skipped.length}:\n${skippedText(skipped)}`);
    }
    return skipped.length > 0 ? 1 : 0;
  }
  const total = ids?.length ?? limit;
  const bound = ids === undefined ? 'at most ' : '';
  let shown = Date.now();
  const sig = interruptible();
  let result: Awaited<ReturnType<typeof q.deadLetters.redrive>>;
  try {
    result = await q.deadLetters.redrive({
      ...selection,
      ...(rate === undefined ? {} : { ratePerSec: rate }),
      ...(to === undefined ? {} : { to }),
      signal: sig.signal,
      onProgress: (done) => {
        if (Date.now() - shown < 1000) return;
        shown = Date.now();
        io.err(`redrive: ${done.length} of ${bound}${total} redriven so far (Ctrl-C stops and reports)`);
      },
    });
  } finally {
    sig.stop();
  }
  const { redriven, skipped, aborted } = result;
  if (ctx.json) io.out(json({ queue: q.name, redriven, skipped, ...(aborted ? { interrupted: true } : {}) }));
  else {
    const what = `${redriven.length} dead letter(s) of queue "${q.name}" ${to === undefined ? 'back to pending' : `into queue "${to}"`}`;
    io.out(aborted ? `Interrupted: redrove ${what} of ${bound}${total} before stopping` : `Redrove ${what}`);
    if (skipped.length > 0) io.out(`Not redriven (${skipped.length}):\n${skippedText(skipped)}`);
  }
  return aborted ? 130 : skipped.length > 0 ? 1 : 0;
}

async function purge(ctx: Ctx): Promise<number> {
  const { args, io } = ctx;
  const st = state(args, true)!;
  const olderThanMs = str(args, 'older-than') === undefined ? undefined : int(args, 'older-than', 0);
  const dry = confirmMode(args, 'purge') === 'dry-run';
  const q = await open(ctx, !dry);
  const options = {
    force: args.flags.has('force'),
    ...(olderThanMs === undefined ? {} : { olderThanMs }),
  };
  // The dry run counts with the very predicate the purge deletes with.
  const n = await q.purge(st, dry ? { ...options, count: true } : options);
  const age = olderThanMs === undefined ? '' : ` last changed more than ${olderThanMs} ms ago`;
  if (ctx.json) {
    const base = { queue: q.name, state: st, ...(olderThanMs === undefined ? {} : { olderThanMs }) };
    io.out(json(dry ? { ...base, dryRun: true, wouldDelete: n } : { ...base, deleted: n }));
  } else if (dry) {
    io.out(
      `Dry run: would delete ${n} ${st} item(s) of queue "${q.name}"${age} (nothing changed; pass --yes to do it)`,
    );
  } else io.out(`Deleted ${n} ${st} item(s) of queue "${q.name}"${age}`);
  return 0;
}

const COMMANDS: Readonly<Record<string, (ctx: Ctx) => Promise<number>>> = {
  stats,
  list,
  dlq: list,
  redrive,
  purge,
  schedules: (ctx) => schedulesCommand({ ...ctx, open: (write) => open(ctx, write) }),
  limits: (ctx) => limitsCommand({ ...ctx, open: (write) => open(ctx, write) }),
};

/**
 * Runs the CLI with `argv` (including the command word `queue`); resolves to the exit code
 * (0 ok, 1 failure, 2 usage error, 130 interrupted).
 *
 * @example
 * ```ts
 * import { runQueueCli } from 'bulwark/durable';
 * const code = await runQueueCli(['queue', 'stats', '--store', 'sqlite:./no-such.db', '--json'], {
 *   out: (s) => console.log(s), // {"error": {"code": "STORE_NOT_FOUND", …}} — and no file is created
 *   err: (s) => console.error(s),
 * });
 * console.log(code); // 1
 * ```
 */
export async function main(
  argv: readonly string[],
  io: CliIo = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) },
): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.flags.has('help') || args.command === undefined) {
    io.out(USAGE);
    return args.command === undefined && !args.flags.has('help') ? 2 : 0;
  }
  if (args.command !== 'queue') {
    io.err(`Unknown command "${args.command}"\n\n${USAGE}`);
    return 2;
  }
  const spec = str(args, 'store');
  const run = args.sub === undefined ? undefined : COMMANDS[args.sub];
  if (spec === undefined || run === undefined) {
    const why =
      spec === undefined
        ? '--store is required'
        : args.sub === undefined
          ? 'a queue command is required'
          : `unknown queue command "${args.sub}"`;
    io.err(`${why}\n\n${USAGE}`);
    return 2;
  }
  const json_ = args.flags.has('json');
  let store: QueueStore | undefined;
  try {
    store = storeFromSpec(spec);
    return await run({ args, io, json: json_, store });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (json_) io.out(json(jsonError(error)));
    else {
      const e = jsonError(error).error;
      io.err(`bulwark queue ${args.sub}: [${String(e.code)}] ${String(e.message)}`);
    }
    return 1;
  } finally {
    await store?.close().catch(() => {});
  }
}
