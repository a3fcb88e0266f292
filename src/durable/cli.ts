/**
 * The `bulwark queue` command line: inspect and operate durable queues.
 *
 * ```text
 * bulwark queue stats   --store SPEC [--queue NAME] [--json]
 * bulwark queue list    --store SPEC --queue NAME [--state S] [--limit N] [--after ID] [--payload] [--json]
 * bulwark queue dlq     --store SPEC --queue NAME [--limit N] [--after ID] [--payload] [--json]
 * bulwark queue redrive --store SPEC --queue NAME [--ids A,B] [--limit N] [--rate PER_SEC] (--yes | --dry-run) [--json]
 * bulwark queue purge   --store SPEC --queue NAME --state completed|dead [--older-than MS] [--force] (--yes | --dry-run) [--json]
 * ```
 * SPEC is `sqlite:PATH` or `postgres://user@host/db`. Encrypted payloads are shown (with
 * `--payload`) when `BULWARK_KEYS` holds the keyring (`id:base64key,…`).
 * @module
 */

import { keyringFromEnv } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import type { ItemView } from './job.js';
import { openQueue, type Queue } from './queue.js';
import type { ItemState, QueueStore } from './store.js';
import { storeFromSpec } from './store-spec.js';

const USAGE = `Usage: bulwark queue <command> --store SPEC [options]

Commands:
  stats     counts by state and the age of the oldest pending item (all queues without --queue)
  list      items in id order                 [--state pending|active|completed|dead] [--limit N] [--after ID]
  dlq       dead letters with reason and error [--limit N] [--after ID]
  redrive   send dead letters back to pending  [--ids A,B] [--limit N (default 100)] [--rate PER_SEC]
  purge     delete completed or dead items     --state completed|dead [--older-than MS] [--force for pending/active]
            (redrive and purge change data: they need --yes, or --dry-run to only say what they would do)

Options:
  --store SPEC   sqlite:PATH or postgres://user@host/db (required)
  --queue NAME   the queue
  --payload      show payloads (decrypted with BULWARK_KEYS when set)
  --json         machine-readable output
  --yes          confirm redrive or purge
  --dry-run      show what redrive or purge would do, change nothing
`;

/** Where the CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

interface Args {
  command: string | undefined;
  sub: string | undefined;
  flags: Map<string, string | true>;
}

const VALUED = new Set(['store', 'queue', 'state', 'limit', 'after', 'ids', 'rate', 'older-than']);
const BOOLEAN = new Set(['json', 'payload', 'force', 'help', 'yes', 'dry-run']);

function parseArgs(argv: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      flags.set('help', true);
      continue;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (BOOLEAN.has(name)) {
      flags.set(name, true);
    } else if (VALUED.has(name)) {
      const value = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined) throw usage(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      throw usage(`unknown option --${name}`);
    }
  }
  return { command: positional[0], sub: positional[1], flags };
}

class UsageError extends Error {}
function usage(message: string): UsageError {
  return new UsageError(message);
}

function str(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function int(args: Args, name: string, fallback: number): number {
  const v = str(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0)
    throw usage(`--${name} must be a whole number >= 0 (got ${v})`);
  return n;
}

/** Redrive and purge change data: they run with --yes, or only report with --dry-run. */
function confirmMode(args: Args, command: string): 'run' | 'dry-run' {
  const yes = args.flags.has('yes');
  const dry = args.flags.has('dry-run');
  if (yes && dry) throw usage('--yes and --dry-run cannot be used together');
  if (dry) return 'dry-run';
  if (!yes) {
    throw usage(`${command} changes data: pass --yes to do it, or --dry-run to see what it would do`);
  }
  return 'run';
}

const STATES: readonly ItemState[] = ['pending', 'active', 'completed', 'dead'];
function state(args: Args, required: boolean): ItemState | undefined {
  const v = str(args, 'state');
  if (v === undefined) {
    if (required) throw usage('--state is required (completed or dead; pending/active need --force)');
    return undefined;
  }
  if (!(STATES as readonly string[]).includes(v))
    throw usage(`--state must be one of ${STATES.join(', ')} (got ${v})`);
  return v as ItemState;
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function iso(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString();
}

function ageText(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function errorMessage(lastError: string | null): string {
  if (lastError === null) return '';
  try {
    const e = JSON.parse(lastError) as { message?: string; code?: string };
    return `${e.code === undefined ? '' : `[${e.code}] `}${e.message ?? ''}`;
  } catch {
    return lastError;
  }
}

function payloadText(v: ItemView<unknown>): string {
  if (v.payloadError !== undefined) return `<${v.payloadError.slice(0, 60)}>`;
  if (v.payload instanceof Uint8Array) return `<${v.payload.length} bytes>`;
  const s = JSON.stringify(v.payload) ?? '';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function jsonItem(v: ItemView<unknown>, withPayload: boolean): Record<string, unknown> {
  const { payload, payloadError, ...rest } = v;
  const out: Record<string, unknown> = { ...rest };
  if (withPayload) {
    out.payload =
      payload instanceof Uint8Array ? { base64: Buffer.from(payload).toString('base64') } : payload;
    if (payloadError !== undefined) out.payloadError = payloadError;
  }
  return out;
}

async function withQueue<R>(
  store: QueueStore,
  name: string,
  fn: (q: Queue<unknown>) => Promise<R>,
): Promise<R> {
  const keys = process.env.BULWARK_KEYS;
  const q = await openQueue<unknown>({
    name,
    store,
    ...(keys !== undefined && keys !== '' ? { keyring: keyringFromEnv('BULWARK_KEYS') } : {}),
  });
  return fn(q);
}

/**
 * Runs the CLI with `argv` (without `node` and the script); resolves to the exit code
 * (0 ok, 1 failure, 2 usage error).
 *
 * @example
 * ```ts
 * import { runQueueCli } from 'bulwark/durable';
 * const code = await runQueueCli(['queue', 'stats', '--store', 'sqlite::memory:', '--json'], {
 *   out: (s) => console.log(s),
 *   err: (s) => console.error(s),
 * });
 * console.log(code); // 0
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
  if (spec === undefined || args.sub === undefined) {
    io.err(`${spec === undefined ? '--store is required' : 'a queue command is required'}\n\n${USAGE}`);
    return 2;
  }
  const json = args.flags.has('json');
  const withPayload = args.flags.has('payload');
  let store: QueueStore | undefined;
  try {
    store = storeFromSpec(spec);
    await store.init();
    const queue = str(args, 'queue');
    const needQueue = (): string => {
      if (queue === undefined) throw usage(`"queue ${args.sub}" needs --queue NAME`);
      return queue;
    };
    switch (args.sub) {
      case 'stats': {
        let names: string[];
        if (queue !== undefined) names = [queue];
        else if (store.listQueues !== undefined) names = await store.listQueues();
        else throw usage('this store cannot list its queues: pass --queue NAME');
        const now = Date.now();
        const stats = [];
        for (const name of names) stats.push({ queue: name, ...(await store.stats(name, now)) });
        if (json) io.out(JSON.stringify(stats, null, 2));
        else if (stats.length === 0) io.out(`No queues in ${store.description}`);
        else {
          io.out(
            table(
              ['QUEUE', 'PENDING', 'DELAYED', 'ACTIVE', 'COMPLETED', 'DEAD', 'OLDEST PENDING'],
              stats.map((s) => [
                s.queue,
                String(s.pending),
                String(s.delayed),
                String(s.active),
                String(s.completed),
                String(s.dead),
                s.oldestPendingAgeMs === 0 ? '-' : ageText(s.oldestPendingAgeMs),
              ]),
            ),
          );
        }
        return 0;
      }
      case 'list':
      case 'dlq': {
        const name = needQueue();
        const dlq = args.sub === 'dlq';
        const st = dlq ? 'dead' : state(args, false);
        const after = str(args, 'after');
        const items = await withQueue(store, name, (q) =>
          q.list({
            limit: int(args, 'limit', 50),
            ...(st === undefined ? {} : { state: st }),
            ...(after === undefined ? {} : { after }),
          }),
        );
        if (json) {
          io.out(
            JSON.stringify(
              items.map((v) => jsonItem(v, withPayload)),
              null,
              2,
            ),
          );
          return 0;
        }
        if (items.length === 0) {
          io.out(dlq ? `No dead letters in queue "${name}"` : `No items in queue "${name}"`);
          return 0;
        }
        const headers = dlq
          ? ['ID', 'REASON', 'ATTEMPTS', 'DIED AT', 'REDRIVES', 'ERROR']
          : ['ID', 'STATE', 'ATTEMPTS', 'PRIORITY', 'RUN AT', 'KEY', 'KEY ID'];
        if (withPayload) headers.push('PAYLOAD');
        io.out(
          table(
            headers,
            items.map((v) => {
              const row = dlq
                ? [
                    v.id,
                    v.deadReason ?? '',
                    `${v.attempts}/${v.maxAttempts}`,
                    iso(v.updatedAt),
                    String(v.redrives),
                    errorMessage(v.lastError).slice(0, 80),
                  ]
                : [
                    v.id,
                    v.state,
                    `${v.attempts}/${v.maxAttempts}`,
                    String(v.priority),
                    iso(v.runAt),
                    v.key ?? '',
                    v.keyId ?? '',
                  ];
              if (withPayload) row.push(payloadText(v));
              return row;
            }),
          ),
        );
        return 0;
      }
      case 'redrive': {
        const name = needQueue();
        const ids = str(args, 'ids')
          ?.split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const rate = str(args, 'rate');
        const limit = int(args, 'limit', ids?.length ?? 100);
        if (limit < 1) throw usage('--limit must be >= 1');
        if (rate !== undefined && int(args, 'rate', 0) < 1) throw usage('--rate must be >= 1');
        if (confirmMode(args, 'redrive') === 'dry-run') {
          const wouldRedrive = await withQueue(store, name, async (q) => {
            if (ids !== undefined) {
              const dead: string[] = [];
              for (const id of ids) if ((await q.get(id))?.state === 'dead') dead.push(id);
              return dead.slice(0, limit);
            }
            return (await q.list({ state: 'dead', limit })).map((v) => v.id);
          });
          if (json) io.out(JSON.stringify({ queue: name, dryRun: true, wouldRedrive }, null, 2));
          else
            io.out(
              `Dry run: would redrive ${wouldRedrive.length} dead letter(s) of queue "${name}" (nothing changed; pass --yes to do it)`,
            );
          return 0;
        }
        const { redriven } = await withQueue(store, name, (q) =>
          q.deadLetters.redrive({
            limit,
            ...(ids === undefined ? {} : { ids }),
            ...(rate === undefined ? {} : { ratePerSec: int(args, 'rate', 0) }),
          }),
        );
        if (json) io.out(JSON.stringify({ queue: name, redriven }, null, 2));
        else io.out(`Redrove ${redriven.length} dead letter(s) of queue "${name}" back to pending`);
        return 0;
      }
      case 'purge': {
        const name = needQueue();
        const st = state(args, true)!;
        const older = str(args, 'older-than');
        const olderThanMs = older === undefined ? undefined : int(args, 'older-than', 0);
        if (confirmMode(args, 'purge') === 'dry-run') {
          const total = await withQueue(store, name, async (q) => (await q.stats())[st]);
          const age = olderThanMs === undefined ? '' : ` last changed more than ${olderThanMs} ms ago`;
          if (json) {
            io.out(
              JSON.stringify(
                {
                  queue: name,
                  state: st,
                  dryRun: true,
                  inState: total,
                  ...(olderThanMs === undefined ? {} : { olderThanMs }),
                },
                null,
                2,
              ),
            );
          } else {
            io.out(
              `Dry run: would delete the ${st} items of queue "${name}"${age} (${total} ${st} item(s) now; nothing changed; pass --yes to do it)`,
            );
          }
          return 0;
        }
        const n = await withQueue(store, name, (q) =>
          q.purge(st, {
            force: args.flags.has('force'),
            ...(olderThanMs === undefined ? {} : { olderThanMs }),
          }),
        );
        if (json) io.out(JSON.stringify({ queue: name, state: st, deleted: n }, null, 2));
        else io.out(`Deleted ${n} ${st} item(s) of queue "${name}"`);
        return 0;
      }
      default:
        throw usage(`unknown queue command "${args.sub}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    const code = error instanceof BulwarkDurableError ? ` [${error.code}]` : '';
    io.err(`bulwark queue ${args.sub}:${code} ${(error as Error).message ?? String(error)}`);
    return 1;
  } finally {
    await store?.close().catch(() => {});
  }
}
