/**
 * The argument parser of Bulwark's command-line tools (`bulwark queue`, `migrate`, `backup`, …):
 * positional words, `--switch` flags and `--name value` / `--name=value` options; anything else is
 * a `UsageError` (the CLI prints it with its usage text and exits 2). @internal
 * @module
 */

import { BulwarkError } from './errors.js';

/** Bad command-line input: the CLI prints it with the usage text and exits 2. @internal */
export class UsageError extends Error {}

/**
 * An error as the JSON a CLI prints with `--json`: `code` (the error's, `USAGE` for a usage error,
 * else `ERROR`), `message`, and the error's `store`, `option`, `rule`, `suggestion`, `retryable`
 * when set. @internal
 */
export function jsonError(error: unknown): { error: Record<string, unknown> } {
  const e = error instanceof Error ? error : new Error(String(error));
  const out: Record<string, unknown> = {
    code: e instanceof BulwarkError ? e.code : e instanceof UsageError ? 'USAGE' : 'ERROR',
    message: e.message,
  };
  for (const k of ['store', 'option', 'rule', 'suggestion', 'retryable'] as const) {
    const v = (e as unknown as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return { error: out };
}

/** Parsed arguments. @internal */
export interface ParsedArgs {
  readonly positional: readonly string[];
  readonly flags: Map<string, string | true>;
}

/** What the readers below need of parsed arguments. @internal */
export interface Flags {
  readonly flags: ReadonlyMap<string, string | true>;
}

/**
 * Splits `argv` into positionals and flags, knowing which options take a value (`valued`) and
 * which are switches (`switches`; `--help` and `-h` always are). @internal
 */
export function parseArgv(
  argv: readonly string[],
  valued: ReadonlySet<string>,
  switches: ReadonlySet<string>,
): ParsedArgs {
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
    if (switches.has(name) || name === 'help') flags.set(name, true);
    else if (valued.has(name)) {
      const value = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else throw new UsageError(`unknown option --${name}`);
  }
  return { positional, flags };
}

/** The value of `--name`, if given. @internal */
export function str(args: Flags, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A whole number >= `min` from `--name`, or `fallback`. @internal */
export function int(args: Flags, name: string, fallback: number, min = 0): number {
  const v = str(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number >= ${min} (got ${v})`);
  return n;
}
