/**
 * The `bulwark queue` CLI's arguments: flags, whole numbers, states, and the `--yes`/`--dry-run`
 * confirmation of commands that change data. Bad input is a `UsageError` (exit code 2).
 * @module
 */

import { parseArgv, str, UsageError } from '../core/cli-args.js';
import type { ItemState } from './store.js';

export { int, str, UsageError } from '../core/cli-args.js';

/** Parsed arguments. @internal */
export interface Args {
  command: string | undefined;
  sub: string | undefined;
  /** The word after the command (`queue schedules add`). */
  action?: string | undefined;
  flags: Map<string, string | true>;
}

const VALUED = new Set(['store', 'queue', 'state', 'limit', 'after', 'ids', 'rate', 'older-than', 'to']);
// schedules and limits
for (const v of ['name', 'cron', 'tz', 'every', 'catch-up', 'data', 'concurrency', 'burst']) VALUED.add(v);
const BOOLEAN = new Set(['json', 'payload', 'force', 'help', 'yes', 'dry-run', 'clear']);

/** Splits argv into positionals and known flags. @internal */
export function parseArgs(argv: readonly string[]): Args {
  const { positional, flags } = parseArgv(argv, VALUED, BOOLEAN);
  return { command: positional[0], sub: positional[1], action: positional[2], flags };
}

/** Redrive and purge change data: they run with --yes, or only report with --dry-run. @internal */
export function confirmMode(args: Args, command: string): 'run' | 'dry-run' {
  const yes = args.flags.has('yes');
  const dry = args.flags.has('dry-run');
  if (yes && dry) throw new UsageError('--yes and --dry-run cannot be used together');
  if (dry) return 'dry-run';
  if (!yes) {
    throw new UsageError(
      `${command} changes data: pass --yes to do it, or --dry-run to see what it would do`,
    );
  }
  return 'run';
}

const STATES: readonly ItemState[] = ['pending', 'active', 'completed', 'dead'];

/** The `--state` flag. @internal */
export function state(args: Args, required: boolean): ItemState | undefined {
  const v = str(args, 'state');
  if (v === undefined) {
    if (required)
      throw new UsageError('--state is required (completed or dead; pending/active need --force)');
    return undefined;
  }
  if (!(STATES as readonly string[]).includes(v))
    throw new UsageError(`--state must be one of ${STATES.join(', ')} (got ${v})`);
  return v as ItemState;
}
