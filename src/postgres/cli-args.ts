/**
 * A small argument parser for the `migrate` and `backup` commands: positional words, `--flag`
 * switches and `--name value` / `--name=value` options, with usage errors (exit code 2). @internal
 * @module
 */

import { type Flags, type ParsedArgs, parseArgv, str, UsageError } from '../core/cli-args.js';

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
