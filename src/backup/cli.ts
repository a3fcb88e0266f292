/**
 * The `bulwark backup` command.
 *
 * ```text
 * bulwark backup create  --source SPEC --target DIR [--label L] [--table-stats checksum|count|none] [--json]
 * bulwark backup list    --target DIR [--json]
 * bulwark backup verify  ID|latest --target DIR [--scratch URL] [--json]
 * bulwark backup restore ID|latest --target DIR --to URL|PATH|DIR [--create] [--force] [--jobs N] [--json]
 * bulwark backup prune   --target DIR [--keep-last N] [--daily N] [--weekly N] [--monthly N] (--yes | --dry-run) [--json]
 * bulwark backup pitr setup   --source URL --archive DIR
 * bulwark backup pitr base    --source URL --base-dir DIR
 * bulwark backup pitr restore --base-dir DIR --archive DIR --to-time TIME --data-dir NEWDIR [--port P] [--os-user U]
 * ```
 * SPEC: `postgres://…`, `sqlite:PATH`, `redis://host:port`, `files:PATH[,PATH…]`. With
 * `BULWARK_BACKUP_KEYS` (`id:base64key,…`, first = current) files are encrypted and read back.
 * @module
 */

import { keyringFromEnv } from '../durable/encryption.js';
import {
  type Args,
  type CliIo as Io,
  int,
  redact,
  required,
  runCommand,
  str,
  UsageError,
} from '../postgres/cli-args.js';
import type { BackupProgress } from './backup-types.js';
import { type Backups, createBackups } from './backups.js';
import { runPitrCli } from './pitr-cli.js';

const USAGE = `Usage: bulwark backup <command> [options]

Commands:
  create    back up a database or files:  --source SPEC
  list      every backup, newest first
  verify    ID|latest: check checksums, restore into a scratch database, compare every table
  restore   ID|latest --to TARGET: PostgreSQL URL (--create makes the database), SQLite path, or directory
  prune     remove what the retention keeps no longer: --keep-last N --daily N --weekly N --monthly N (--yes | --dry-run)
  pitr      point-in-time recovery for PostgreSQL: setup | base | restore (bulwark backup pitr --help)

Options:
  --source SPEC    postgres://user@host/db, sqlite:PATH, redis://host:port, files:PATH[,PATH…] ($BULWARK_BACKUP_SOURCE)
  --target DIR     where backups live ($BULWARK_BACKUP_DIR)
  --scratch URL    verify: a PostgreSQL server to restore into (default: the backed-up server)
  --to TARGET      restore: where to
  --create         restore: create the PostgreSQL database first
  --force          restore: on top of a non-empty database / over an existing file
  --jobs N         pg_restore parallel jobs (default 4)
  --table-stats M  create: checksum (default), count or none
  --label L        create: a note kept in the manifest
  --json           machine-readable output
Encryption: set BULWARK_BACKUP_KEYS="id:base64key[,…]" (first = current) to encrypt new backups and read encrypted ones.
`;

const VALUED = new Set([
  'source',
  'target',
  'scratch',
  'to',
  'jobs',
  'table-stats',
  'label',
  'keep-last',
  'daily',
  'weekly',
  'monthly',
  'archive',
  'base-dir',
  'to-time',
  'data-dir',
  'port',
  'os-user',
]);
const SWITCHES = new Set(['json', 'create', 'force', 'yes', 'dry-run']);

const COMMAND = { valued: VALUED, switches: SWITCHES, usage: USAGE, name: 'backup' };

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** A progress reporter on stderr: each phase, and bytes at most every 2 s. */
function progressTo(io: Io): (p: BackupProgress) => void {
  let last = 0;
  return (p) => {
    if (p.bytes === undefined) io.err(`… ${p.phase}`);
    else if (Date.now() - last >= 2_000) {
      last = Date.now();
      io.err(`… ${p.phase}: ${size(p.bytes)}`);
    }
  };
}

function manager(args: Args): Backups {
  const target = required(args, 'target', 'BULWARK_BACKUP_DIR');
  const keys = process.env.BULWARK_BACKUP_KEYS;
  return createBackups({
    target,
    ...(keys === undefined || keys === '' ? {} : { keyring: keyringFromEnv('BULWARK_BACKUP_KEYS') }),
  });
}

async function resolveId(b: Backups, id: string | undefined): Promise<string> {
  if (id === undefined) throw new UsageError('give a backup id (from `bulwark backup list`) or `latest`');
  if (id !== 'latest') return id;
  const newest = (await b.list())[0];
  if (newest === undefined) throw new UsageError(`there is no backup in ${b.target.description} yet`);
  return newest.id;
}

async function run(args: Args, io: Io): Promise<number> {
  const command = args.positional[1];
  const json = args.flags.has('json');
  if (command === 'pitr') return runPitrCli(args, io);
  if (command === 'create') {
    const b = manager(args);
    const stats = str(args, 'table-stats') ?? 'checksum';
    if (stats !== 'checksum' && stats !== 'count' && stats !== 'none')
      throw new UsageError(`--table-stats must be checksum, count or none (got ${stats})`);
    const label = str(args, 'label');
    const m = await b.create(required(args, 'source', 'BULWARK_BACKUP_SOURCE'), {
      tableStats: stats,
      onProgress: progressTo(io),
      ...(label === undefined ? {} : { label }),
    });
    const bytes = m.files.reduce((n, f) => n + f.bytes, 0);
    io.out(
      json
        ? JSON.stringify(m)
        : `backup ${m.id}: ${m.files.length} file(s), ${size(bytes)}, ${m.tables.length} table(s), ${(m.durationMs / 1000).toFixed(1)} s\nnext: bulwark backup verify ${m.id} --target ${b.target.description}`,
    );
    return 0;
  }
  if (command === 'list') {
    const all = await manager(args).list();
    if (json) io.out(JSON.stringify(all));
    else if (all.length === 0) io.out('No backups yet.');
    else
      for (const m of all)
        io.out(
          `${m.id}  ${m.finishedAt}  ${m.kind.padEnd(8)} ${size(m.files.reduce((n, f) => n + f.bytes, 0)).padStart(10)}  ${m.source}${m.label === undefined ? '' : `  (${m.label})`}`,
        );
    return 0;
  }
  if (command === 'verify') {
    const b = manager(args);
    const id = await resolveId(b, args.positional[2]);
    const scratch = str(args, 'scratch');
    const r = await b.verify(id, {
      onProgress: progressTo(io),
      ...(scratch === undefined ? {} : { scratchUrl: scratch }),
    });
    if (json) io.out(JSON.stringify(r));
    else {
      io.out(
        `${r.ok ? 'OK' : 'FAILED'}: backup ${id} — ${r.files.length} file(s), ${r.tables.length} table(s) compared, ${(r.durationMs / 1000).toFixed(1)} s`,
      );
      for (const p of r.problems) io.out(`  - ${p}`);
    }
    return r.ok ? 0 : 1;
  }
  if (command === 'restore') {
    const b = manager(args);
    const id = await resolveId(b, args.positional[2]);
    const r = await b.restore(id, {
      to: required(args, 'to'),
      create: args.flags.has('create'),
      force: args.flags.has('force'),
      jobs: int(args, 'jobs', 4, 1),
      onProgress: progressTo(io),
    });
    io.out(
      json ? JSON.stringify(r) : `restored ${id} to ${redact(r.to)} in ${(r.durationMs / 1000).toFixed(1)} s`,
    );
    return 0;
  }
  if (command === 'prune') {
    const yes = args.flags.has('yes');
    const dry = args.flags.has('dry-run');
    if (yes === dry)
      throw new UsageError(
        'prune deletes backups: pass --yes to do it, or --dry-run to see what it would do',
      );
    const policy = {
      keepLast: int(args, 'keep-last', 0),
      daily: int(args, 'daily', 0),
      weekly: int(args, 'weekly', 0),
      monthly: int(args, 'monthly', 0),
    };
    const r = await manager(args).prune(policy, { dryRun: dry });
    if (json) io.out(JSON.stringify(r));
    else {
      for (const k of r.keep) io.out(`keep    ${k.id}  (${k.why.join(', ')})`);
      for (const id of r.removed) io.out(`${dry ? 'would remove' : 'removed'} ${id}`);
    }
    return 0;
  }
  throw new UsageError(command === undefined ? 'a command is required' : `unknown command "${command}"`);
}

/**
 * Runs `bulwark backup …` (`argv` starts with `backup`). Resolves to the exit code: 0 ok, 1 a
 * failure (or a verify that found a problem), 2 usage.
 *
 * @example
 * ```ts nocheck
 * import { runBackupCli } from 'bulwark/backup';
 * process.exitCode = await runBackupCli(['backup', 'list', '--target', '/var/backups/app'], { out: console.log, err: console.error });
 * ```
 */
export function main(argv: readonly string[], io: Io): Promise<number> {
  return runCommand(COMMAND, argv, io, (args) => run(args, io));
}
