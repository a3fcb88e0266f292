/**
 * Finding and running PostgreSQL's client programs (pg_dump, pg_restore, pg_basebackup, pg_ctl,
 * initdb): where they are, their versions, and a child-process runner that keeps the tail of
 * stderr for error messages and never puts a password on a command line (PGPASSWORD instead).
 * @module
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BulwarkError } from '../core/errors.js';

/** A PostgreSQL program failed or could not be found. */
export class PgToolError extends BulwarkError {
  readonly tool: string;
  readonly exitCode: number | null;
  constructor(tool: string, message: string, exitCode: number | null = null, options?: { cause?: unknown }) {
    super('PG_TOOL_FAILED', message, options);
    this.tool = tool;
    this.exitCode = exitCode;
  }
}

/** Every directory that may hold PostgreSQL binaries, best first: $BULWARK_PG_BIN, /usr/lib/postgresql/<newest>/bin, …, then PATH. @internal */
export function pgBinDirs(preferredMajor?: number): string[] {
  const dirs: string[] = [];
  const env = process.env.BULWARK_PG_BIN;
  if (env !== undefined && env !== '') dirs.push(env);
  for (const base of ['/usr/lib/postgresql', '/usr/local/pgsql', '/opt/homebrew/opt']) {
    if (!existsSync(base)) continue;
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin')))
      .sort((a, b) => {
        const na = Number.parseInt(a.replace(/\D+/g, ''), 10) || 0;
        const nb = Number.parseInt(b.replace(/\D+/g, ''), 10) || 0;
        if (preferredMajor !== undefined && (na === preferredMajor) !== (nb === preferredMajor))
          return na === preferredMajor ? -1 : 1;
        return nb - na;
      });
    for (const v of versions) dirs.push(join(base, v, 'bin'));
  }
  if (existsSync('/usr/local/pgsql/bin')) dirs.push('/usr/local/pgsql/bin');
  for (const p of (process.env.PATH ?? '').split(':')) if (p !== '') dirs.push(p);
  return dirs;
}

/** The path of PostgreSQL program `tool` (from `binDir` when given), or a `PgToolError` saying how to install it. */
export function pgTool(tool: string, binDir?: string, preferredMajor?: number): string {
  const dirs = binDir === undefined ? pgBinDirs(preferredMajor) : [binDir];
  for (const dir of dirs) {
    const path = join(dir, tool);
    if (existsSync(path)) return path;
  }
  throw new PgToolError(
    tool,
    `${tool} was not found (looked in ${dirs.slice(0, 4).join(', ')}${dirs.length > 4 ? ', …' : ''}). Install the PostgreSQL client programs (apt-get install postgresql-client), or set BULWARK_PG_BIN to their directory`,
  );
}

/** `tool --version`'s number, e.g. `15.20`. @internal */
export function toolVersion(path: string): string {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8' });
  return /(\d+(?:\.\d+)*)/.exec(r.stdout ?? '')?.[1] ?? 'unknown';
}

/** A connection URL without its password, and the password for PGPASSWORD. @internal */
export function splitPassword(url: string): { url: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), env: password === '' ? {} : { PGPASSWORD: password } };
}

/** `url` with another database name. @internal */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** The database name of a connection URL. @internal */
export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
}

/** A running PostgreSQL program. @internal */
export interface Running {
  readonly stdout: Readable;
  /** Resolves when it exited 0; rejects with a `PgToolError` holding the end of stderr otherwise. */
  readonly done: Promise<void>;
  kill(): void;
}

/** Runs `path args` with `env` added; stdout is a stream. @internal */
export function runTool(path: string, args: readonly string[], env: Record<string, string> = {}): Running {
  const child = spawn(path, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8_000);
  });
  const tool = path.split('/').pop() ?? path;
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) =>
      reject(new PgToolError(tool, `${tool} could not start: ${error.message}`, null, { cause: error })),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new PgToolError(
            tool,
            `${tool} failed (${signal === null ? `exit code ${code}` : `signal ${signal}`}): ${stderr.trim().split('\n').slice(-6).join(' | ') || 'no message'}`,
            code,
          ),
        );
    });
  });
  return { stdout: child.stdout, done, kill: () => child.kill('SIGTERM') };
}

/** Runs a program to completion, discarding stdout. @internal */
export async function runToCompletion(
  path: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<void> {
  const r = runTool(path, args, env);
  r.stdout.resume();
  await r.done;
}
