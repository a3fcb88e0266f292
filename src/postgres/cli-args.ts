/**
 * A small argument parser for the `migrate` and `backup` commands: positional words, `--flag`
 * switches and `--name value` / `--name=value` options, with usage errors (exit code 2). @internal
 * @module
 */

import { type Flags, jsonError, type ParsedArgs, parseArgv, str, UsageError } from '../core/cli-args.js';
import { BulwarkError } from '../core/errors.js';

export { int, str, UsageError } from '../core/cli-args.js';

/** Parsed arguments. */
export type Args = ParsedArgs;

/** Parses `argv` knowing which options take a value and which are switches. */
export function parseArgs(
  argv: readonly string[],
  valued: ReadonlySet<string>,
  switches: ReadonlySet<string>,
): Args {
  return parseArgv(argv, valued, switches);
}

/** The required `--name`, or a usage error. */
export function required(args: Flags, name: string, env?: string): string {
  const v = str(args, name) ?? (env === undefined ? undefined : process.env[env]);
  if (v === undefined || v === '')
    throw new UsageError(`--${name} is required${env === undefined ? '' : ` (or set ${env})`}`);
  return v;
}

/** Hides the password of a connection string (for output and manifests). */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

/** Where a command writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** What `runCommand` needs to know of a command. */
export interface CommandSpec {
  /** The options that take a value, and the switches. */
  readonly valued: ReadonlySet<string>;
  readonly switches: ReadonlySet<string>;
  /** The usage text (printed for `--help` and after a usage error). */
  readonly usage: string;
  /** The command's name in `<name> failed: …`. */
  readonly name: string;
}

/**
 * Parses `argv` and runs the command, turning how it ends into the exit code: `--help` prints the
 * usage (0); a `UsageError` prints its message and the usage (2); a `BulwarkError` prints
 * `CODE: message`, any other error `<name> failed: message` (1). With `--json` an error is printed
 * as `{"error":{"code","message",…}}` on stdout instead (`jsonError`: code `USAGE` for a usage
 * error).
 *
 * @example
 * ```ts nocheck
 * const spec = { valued: new Set(['db']), switches: new Set(['json']), usage: USAGE, name: 'migrate' };
 * process.exitCode = await runCommand(spec, process.argv.slice(2), io, (args) => run(args, io));
 * ```
 */
export async function runCommand(
  spec: CommandSpec,
  argv: readonly string[],
  io: CliIo,
  run: (args: Args) => Promise<number>,
): Promise<number> {
  // --json: parsed, or (when parsing failed) given anywhere in argv.
  let json = argv.includes('--json');
  try {
    const args = parseArgs(argv, spec.valued, spec.switches);
    json = args.flags.has('json');
    if (args.flags.has('help')) {
      io.out(spec.usage);
      return 0;
    }
    return await run(args);
  } catch (error) {
    const usage = error instanceof UsageError;
    // --json: the error as JSON on stdout, as `bulwark queue --json` prints it; otherwise text on
    // stderr, with the usage after a usage error.
    if (json) {
      io.out(JSON.stringify(jsonError(error)));
      return usage ? 2 : 1;
    }
    if (usage) {
      io.err(`${error.message}\n\n${spec.usage}`);
      return 2;
    }
    io.err(
      error instanceof BulwarkError
        ? `${error.code}: ${error.message}`
        : `${spec.name} failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
}
