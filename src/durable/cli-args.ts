/**
 * The `bulwark queue` CLI's arguments: flags, whole numbers, states, and the `--yes`/`--dry-run`
 * confirmation of commands that change data. Bad input is a `UsageError` (exit code 2).
 * @module
 */

import type { ItemState } from './store.js';

/** Parsed arguments. @internal */
export interface Args {
  command: string | undefined;
  sub: string | undefined;
  /** The word after the command (`queue schedules add`). */
  action?: string | undefined;
  flags: Map<string, string | true>;
}

/** Bad command-line input: the CLI prints it with the usage text and exits 2. @internal */
export class UsageError extends Error {}

const VALUED = new Set(['store', 'queue', 'state', 'limit', 'after', 'ids', 'rate', 'older-than', 'to']);
// schedules and limits
for (const v of ['name', 'cron', 'tz', 'every', 'catch-up', 'data', 'concurrency', 'burst']) VALUED.add(v);
const BOOLEAN = new Set(['json', 'payload', 'force', 'help', 'yes', 'dry-run', 'clear']);

/** Splits argv into positionals and known flags. @internal */
export function parseArgs(argv: readonly string[]): Args {
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
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { command: positional[0], sub: positional[1], action: positional[2], flags };
}

/** A string flag. @internal */
export function str(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A whole-number flag >= `min`. @internal */
export function int(args: Args, name: string, fallback: number, min = 0): number {
  const v = str(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number >= ${min} (got ${v})`);
  return n;
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
