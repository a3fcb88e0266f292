/**
 * What the `audit` and `export` commands share: argument parsing (node:util parseArgs, unknown
 * options are usage errors), a throttled progress line on stderr, and the keyring from the
 * environment. @internal
 * @module
 */

import { parseArgs } from 'node:util';
import { keyringFromEnv } from '../durable/encryption.js';
import { payloadEncryption } from '../keyring/encryption.js';
import { postgresSubjectKeyStore } from '../keyring/pg-subject-keys.js';
import type { PayloadProtector } from '../keyring/protector.js';
import { type SubjectKeyStore, sqliteSubjectKeyStore, subjectKeys } from '../keyring/subject-keys.js';

/** Where a CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A usage error (exit 2). */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * The option table of `parse`, from space-separated names: `strings` take a value, `flags` are
 * booleans.
 *
 * @example
 * ```ts nocheck
 * const OPTIONS = optionSpec('store limit tag', 'yes dry-run');
 * ```
 */
export function optionSpec(strings: string, flags = ''): OptionSpec {
  const spec: OptionSpec = {};
  for (const name of strings.split(' ').filter(Boolean)) spec[name] = { type: 'string' };
  for (const name of flags.split(' ').filter(Boolean)) spec[name] = { type: 'boolean' };
  return spec;
}

/** Parses `argv` (after the command word) with `options` plus --json and --help. */
export function parse(
  argv: readonly string[],
  options: OptionSpec,
): { positionals: string[]; values: Record<string, string | boolean | undefined> } {
  try {
    const r = parseArgs({
      args: [...argv],
      options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { positionals: r.positionals, values: r.values as Record<string, string | boolean | undefined> };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A required string option. */
export function need(values: Record<string, string | boolean | undefined>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** An optional whole-number option. */
export function wholeNumber(
  values: Record<string, string | boolean | undefined>,
  name: string,
): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a whole number >= 0 (got ${String(v)})`);
  return n;
}

/** Calls `write` at most once per `everyMs` (and always for the final call). */
export function throttled<T>(everyMs: number, write: (v: T) => void): (v: T, final?: boolean) => void {
  let last = 0;
  return (v, final = false) => {
    const now = Date.now();
    if (!final && now - last < everyMs) return;
    last = now;
    write(v);
  };
}

/** Subject keys opened by the CLI, to close when the command ends. */
const opened: { close(): Promise<void> }[] = [];

/** Closes the subject key stores the CLI opened (an open PostgreSQL pool would keep it running). */
export async function closeCliKeys(): Promise<void> {
  for (const k of opened.splice(0)) await k.close().catch(() => {});
}

/**
 * Payload encryption from BULWARK_KEYS, when set, with subject keys from `subjectKeysAt`: a SQLite
 * file, or `postgres://…?schema=NAME` (`&table=NAME`) for keys kept on PostgreSQL.
 */
export function encryptionFromEnv(
  subjectKeysAt: string | undefined,
  env = process.env,
): PayloadProtector | undefined {
  if (env.BULWARK_KEYS === undefined || env.BULWARK_KEYS.trim() === '') return undefined;
  const ring = keyringFromEnv('BULWARK_KEYS', env);
  if (subjectKeysAt === undefined) return payloadEncryption({ keyring: ring });
  const keys = subjectKeys({ keyring: ring, store: subjectKeyStoreAt(subjectKeysAt) });
  opened.push(keys);
  return payloadEncryption({ keyring: ring, subjectKeys: keys });
}

function subjectKeyStoreAt(at: string): SubjectKeyStore {
  if (!/^postgres(ql)?:\/\//.test(at)) return sqliteSubjectKeyStore({ path: at });
  const url = new URL(at);
  const schema = url.searchParams.get('schema') ?? undefined;
  const table = url.searchParams.get('table') ?? undefined;
  url.searchParams.delete('schema');
  url.searchParams.delete('table');
  let pool: import('pg').Pool | undefined;
  let store: SubjectKeyStore | undefined;
  const ready = async () => {
    if (store === undefined) {
      const pg = (await import('pg')).default;
      pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
      store = postgresSubjectKeyStore({
        pool,
        ...(schema === undefined ? {} : { schema }),
        ...(table === undefined ? {} : { table }),
      });
    }
    return store;
  };
  return {
    init: async () => (await ready()).init(),
    get: async (s) => (await ready()).get(s),
    put: async (r) => (await ready()).put(r),
    create: async (r) => (await ready()).create!(r),
    list: async (a, l) => (await ready()).list(a, l),
    close: async () => {
      await pool?.end();
    },
  };
}

/** Runs a command body: usage errors exit 2 with the usage text, other errors exit 1 with their message. */
export async function runCli(io: CliIo, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${usage}`);
      return 2;
    }
    const code = (error as { code?: string }).code;
    io.err(`error${code === undefined ? '' : ` [${code}]`}: ${(error as Error).message}`);
    return 1;
  }
}
