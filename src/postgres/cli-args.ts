/**
 * A small argument parser for the `migrate` and `backup` commands: positional words, `--flag`
 * switches and `--name value` / `--name=value` options, with usage errors (exit code 2). @internal
 * @module
 */

/** A usage error: the CLI prints it with the usage text and exits 2. */
export class UsageError extends Error {}

/** Parsed arguments. */
export interface Args {
  readonly positional: readonly string[];
  readonly flags: ReadonlyMap<string, string | true>;
}

/** Parses `argv` knowing which options take a value and which are switches. */
export function parseArgs(
  argv: readonly string[],
  valued: ReadonlySet<string>,
  switches: ReadonlySet<string>,
): Args {
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

/** The value of `--name`, if given. */
export function str(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A whole number >= min from `--name`, or `fallback`. */
export function int(args: Args, name: string, fallback: number, min = 0): number {
  const v = str(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be a whole number >= ${min} (got ${v})`);
  return n;
}

/** The required `--name`, or a usage error. */
export function required(args: Args, name: string, env?: string): string {
  const v = str(args, name) ?? (env === undefined ? undefined : process.env[env]);
  if (v === undefined || v === '')
    throw new UsageError(`--${name} is required${env === undefined ? '' : ` (or set ${env})`}`);
  return v;
}

/** Hides the password of a connection string (for output and manifests). */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}
