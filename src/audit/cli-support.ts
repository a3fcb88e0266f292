/**
 * What the `audit` and `export` commands share: argument parsing (node:util parseArgs, unknown
 * options are usage errors), a throttled progress line on stderr, and the keyring from the
 * environment. @internal
 * @module
 */

import { parseArgs } from 'node:util';
import { keyringFromEnv } from '../durable/encryption.js';
import { payloadEncryption } from '../keyring/encryption.js';
import type { PayloadProtector } from '../keyring/protector.js';
import { sqliteSubjectKeyStore, subjectKeys } from '../keyring/subject-keys.js';

/** Where a CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A usage error (exit 2). */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

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

/** Payload encryption from BULWARK_KEYS (and subject keys from a SQLite file), when set. */
export function encryptionFromEnv(
  subjectKeysPath: string | undefined,
  env = process.env,
): PayloadProtector | undefined {
  if (env.BULWARK_KEYS === undefined || env.BULWARK_KEYS.trim() === '') return undefined;
  const ring = keyringFromEnv('BULWARK_KEYS', env);
  return payloadEncryption({
    keyring: ring,
    ...(subjectKeysPath === undefined
      ? {}
      : {
          subjectKeys: subjectKeys({
            keyring: ring,
            store: sqliteSubjectKeyStore({ path: subjectKeysPath }),
          }),
        }),
  });
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
