/**
 * Point-in-time recovery for PostgreSQL: WAL archiving into a directory (`archive_command`), base
 * backups with `pg_basebackup` (plain format, checked with `pg_verifybackup`), and restore into a
 * NEW data directory replaying the archive up to `recovery_target_time`, then promoting
 * (`recovery_target_action = 'promote'`, set explicitly: PostgreSQL's default pauses). Reports the
 * achieved RPO (how far before the target the last replayed transaction is) and RTO (how long
 * the restore took).
 * @module
 */

import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { PgToolError, pgTool, runToCompletion, splitPassword, toolVersion } from './pg-tools.js';
import { pgClient, serverVersion } from './postgres-source.js';

/** What `setupPitr` did. */
export interface PitrSetup {
  readonly archiveDir: string;
  readonly archiveCommand: string;
  /** True when the server must be restarted for archiving to start (archive_mode or wal_level changed). */
  readonly restartRequired: boolean;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;

function checkDir(option: string, dir: string): string {
  if (!isAbsolute(dir) || !SAFE_PATH.test(dir)) {
    throw new ConfigError(option, 'an absolute path of letters, digits, . _ - /', dir);
  }
  return dir.replace(/\/+$/, '');
}

/**
 * Turns WAL archiving on (`ALTER SYSTEM`: wal_level replica, archive_mode on, an archive_command
 * copying each finished segment into `archiveDir` without overwriting, archive_timeout so a quiet
 * server still archives at least every `archiveTimeoutMs`). The directory must be writable by
 * the server's OS user. Restart the server when `restartRequired`.
 *
 * @example
 * ```ts nocheck
 * import { setupPitr } from 'bulwark/backup';
 * const r = await setupPitr({ url: 'postgres://postgres@127.0.0.1/postgres', archiveDir: '/var/lib/postgresql/wal-archive' });
 * if (r.restartRequired) console.log('restart PostgreSQL now (systemctl restart postgresql)');
 * ```
 */
export async function setupPitr(o: {
  url: string;
  archiveDir: string;
  archiveTimeoutMs?: number;
}): Promise<PitrSetup> {
  const dir = checkDir('setupPitr.archiveDir', o.archiveDir);
  const timeoutS = Math.max(1, Math.round((o.archiveTimeoutMs ?? 60_000) / 1000));
  const command = `test ! -f ${dir}/%f && cp %p ${dir}/%f`;
  const client = await pgClient(o.url);
  try {
    await client.query(`ALTER SYSTEM SET wal_level = 'replica'`);
    await client.query(`ALTER SYSTEM SET archive_mode = 'on'`);
    await client.query(`ALTER SYSTEM SET archive_command = '${command}'`);
    await client.query(`ALTER SYSTEM SET archive_timeout = '${timeoutS}s'`);
    await client.query('SELECT pg_reload_conf()');
    const { rows } = await client.query(
      `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'archive_mode')`,
    );
    const current = new Map(rows.map((r) => [r.name as string, r.setting as string]));
    const restartRequired =
      current.get('archive_mode') !== 'on' ||
      !['replica', 'logical'].includes(current.get('wal_level') ?? '');
    return { archiveDir: dir, archiveCommand: command, restartRequired };
  } finally {
    await client.end().catch(() => {});
  }
}

/** A base backup taken by `baseBackup`. */
export interface BaseBackup {
  readonly dir: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly versions: Readonly<Record<string, string>>;
}

/**
 * Takes a base backup with `pg_basebackup -Fp -X stream --checkpoint=fast` into `dir/<timestamp>`
 * and checks it with `pg_verifybackup`.
 *
 * @example
 * ```ts nocheck
 * import { baseBackup } from 'bulwark/backup';
 * const base = await baseBackup({ url: 'postgres://postgres@127.0.0.1/postgres', dir: '/var/backups/pg-base' });
 * console.log(base.dir, base.durationMs);
 * ```
 */
export async function baseBackup(o: { url: string; dir: string; binDir?: string }): Promise<BaseBackup> {
  const client = await pgClient(o.url);
  let major: number;
  let full: string;
  try {
    ({ major, full } = await serverVersion(client));
  } finally {
    await client.end().catch(() => {});
  }
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const out = join(o.dir, `base-${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`);
  mkdirSync(o.dir, { recursive: true });
  const tool = pgTool('pg_basebackup', o.binDir, major);
  const { url, env } = splitPassword(o.url);
  await runToCompletion(
    tool,
    ['-D', out, '-Fp', '-X', 'stream', '--checkpoint=fast', '--no-password', `--dbname=${url}`],
    env,
  );
  const verify = pgTool('pg_verifybackup', o.binDir, major);
  await runToCompletion(verify, ['-n', out]); // -n: WAL is checked by replay, not here
  const finished = Date.now();
  const result: BaseBackup = {
    dir: out,
    startedAt,
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    versions: { server: full, pg_basebackup: toolVersion(tool) },
  };
  writeFileSync(join(out, 'bulwark-base.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** The newest base backup under `dir` (its `base-*` subdirectories). */
export function latestBase(dir: string): string {
  const bases = existsSync(dir)
    ? readdirSync(dir)
        .filter((d) => d.startsWith('base-'))
        .sort()
    : [];
  const last = bases[bases.length - 1];
  if (last === undefined)
    throw new ConfigError('baseDir', 'a directory holding a base backup (bulwark backup pitr base)', dir);
  return join(dir, last);
}

/** Options of `restorePitr()`. */
export interface PitrRestoreOptions {
  /** A base backup directory (or a directory of them: the newest is used). */
  base: string;
  archiveDir: string;
  /** Recover up to this time (exclusive: transactions committed at or after it are not replayed). Default: all archived WAL. */
  toTime?: Date | string;
  /** A NEW (absent or empty) data directory for the restored server. */
  dataDir: string;
  /** Port of the restored server. */
  port: number;
  /** The OS user the server runs as (needed when running as root). Default `postgres` when root, else the current user. */
  osUser?: string;
  binDir?: string;
  /** Longest wait for recovery and promotion, ms. Default 600 000. */
  timeoutMs?: number;
}

/** What `restorePitr` achieved. */
export interface PitrRestoreResult {
  readonly dataDir: string;
  readonly url: string;
  readonly targetTime: string | null;
  /** Commit time of the last transaction replayed. */
  readonly lastReplayedAt: string | null;
  /** Target time minus the last replayed commit (how much before the target the restored state ends), ms. */
  readonly rpoMs: number | null;
  /** Time from starting the copy to the promoted server accepting writes, ms. */
  readonly rtoMs: number;
}

function asUser(user: string | undefined, tool: string, args: string[]): [string, string[]] {
  return user === undefined ? [tool, args] : ['runuser', ['-u', user, '--', tool, ...args]];
}

/**
 * Restores a base backup into a new data directory, replays archived WAL up to `toTime`,
 * promotes, and leaves the server running on `port` (stop it with `stopPitrServer`). Point your
 * application at it (or copy data out) once you have checked it.
 *
 * @example
 * ```ts nocheck
 * import { restorePitr } from 'bulwark/backup';
 * const r = await restorePitr({ base: '/var/backups/pg-base', archiveDir: '/var/lib/postgresql/wal-archive',
 *   toTime: '2026-12-05T03:12:00Z', dataDir: '/var/lib/postgresql/restored', port: 5433 });
 * console.log(`RPO ${r.rpoMs} ms, RTO ${r.rtoMs} ms`, r.url);
 * ```
 */
export async function restorePitr(o: PitrRestoreOptions): Promise<PitrRestoreResult> {
  const began = Date.now();
  const archive = checkDir('restorePitr.archiveDir', o.archiveDir);
  const dataDir = checkDir('restorePitr.dataDir', o.dataDir);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new ConfigError(
      'restorePitr.dataDir',
      'a new or empty directory',
      dataDir,
      `${dataDir} is not empty: restore into a new directory (never over a live data directory)`,
    );
  }
  const target = o.toTime === undefined ? null : new Date(o.toTime);
  if (target !== null && Number.isNaN(target.getTime()))
    throw new ConfigError('restorePitr.toTime', 'a date or an ISO time', o.toTime);
  const base = existsSync(join(o.base, 'PG_VERSION')) ? o.base : latestBase(o.base);
  const osUser = o.osUser ?? (userInfo().uid === 0 ? 'postgres' : undefined);
  const runAs = osUser === undefined || userInfo().username === osUser ? undefined : osUser;

  mkdirSync(dataDir, { recursive: true });
  cpSync(base, dataDir, { recursive: true });
  rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  appendFileSync(
    join(dataDir, 'postgresql.auto.conf'),
    [
      '',
      '# bulwark backup pitr restore',
      `restore_command = 'cp ${archive}/%f %p'`,
      ...(target === null
        ? []
        : [
            `recovery_target_time = '${target.toISOString().replace('T', ' ').replace('Z', '+00')}'`,
            `recovery_target_inclusive = off`,
          ]),
      `recovery_target_action = 'promote'`,
      `archive_mode = 'off'`,
      `port = ${o.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dataDir}'`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dataDir, 'recovery.signal'), '');
  spawnSync('chmod', ['-R', 'go-rwx', dataDir]);
  if (runAs !== undefined) {
    const r = spawnSync('chown', ['-R', `${runAs}:`, dataDir]);
    if (r.status !== 0) throw new ConfigError('restorePitr.osUser', 'an existing OS user', runAs);
  }
  const pgCtl = pgTool('pg_ctl', o.binDir);
  const [cmd, args] = asUser(runAs, pgCtl, [
    '-D',
    dataDir,
    '-l',
    join(dataDir, 'restore.log'),
    '-w',
    '-t',
    String(Math.ceil((o.timeoutMs ?? 600_000) / 1000)),
    'start',
  ]);
  try {
    await runToCompletion(cmd, args);
  } catch (error) {
    const log = join(dataDir, 'restore.log');
    const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-8).join(' | ') : '';
    throw new PgToolError(
      'pg_ctl',
      `The restored server did not start: ${tail || (error as Error).message} (log: ${log})`,
      null,
      { cause: error },
    );
  }
  const url = `postgres://${osUser ?? userInfo().username}@127.0.0.1:${o.port}/postgres`;
  const client = await pgClient(url);
  try {
    const deadline = Date.now() + (o.timeoutMs ?? 600_000);
    for (;;) {
      const { rows } = await client.query('SELECT pg_is_in_recovery() AS r');
      if (rows[0].r === false) break;
      if (Date.now() > deadline)
        throw new ConfigError(
          'restorePitr.timeoutMs',
          'long enough for recovery',
          o.timeoutMs,
          'Recovery did not finish in time; see restore.log in the data directory',
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    const { rows } = await client.query('SELECT pg_last_xact_replay_timestamp() AS t');
    const last = rows[0].t as Date | null;
    return {
      dataDir,
      url,
      targetTime: target?.toISOString() ?? null,
      lastReplayedAt: last?.toISOString() ?? null,
      rpoMs: target === null || last === null ? null : target.getTime() - last.getTime(),
      rtoMs: Date.now() - began,
    };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Stops a server started by `restorePitr` (fast shutdown). */
export async function stopPitrServer(
  dataDir: string,
  options: { osUser?: string; binDir?: string } = {},
): Promise<void> {
  const osUser = options.osUser ?? (userInfo().uid === 0 ? 'postgres' : undefined);
  const runAs = osUser === undefined || userInfo().username === osUser ? undefined : osUser;
  const [cmd, args] = asUser(runAs, pgTool('pg_ctl', options.binDir), [
    '-D',
    dataDir,
    '-w',
    '-m',
    'fast',
    'stop',
  ]);
  await runToCompletion(cmd, args);
}
