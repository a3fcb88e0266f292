/**
 * `bulwark backup pitr setup|base|restore`. @internal
 * @module
 */

import { type Args, int, required, str, UsageError } from '../postgres/cli-args.js';
import { baseBackup, restorePitr, setupPitr } from './pitr.js';

interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Runs a `pitr` subcommand. @internal */
export async function runPitrCli(args: Args, io: Io): Promise<number> {
  const sub = args.positional[2];
  const json = args.flags.has('json');
  if (sub === 'setup') {
    const r = await setupPitr({
      url: required(args, 'source', 'BULWARK_BACKUP_SOURCE'),
      archiveDir: required(args, 'archive'),
    });
    io.out(
      json
        ? JSON.stringify(r)
        : `archive_command = '${r.archiveCommand}'\n${r.restartRequired ? 'RESTART PostgreSQL now for archiving to start (e.g. systemctl restart postgresql), then take a base backup: bulwark backup pitr base' : 'archiving is on; take a base backup now: bulwark backup pitr base'}`,
    );
    return 0;
  }
  if (sub === 'base') {
    io.err('… pg_basebackup (a checkpoint first, then the copy)');
    const r = await baseBackup({
      url: required(args, 'source', 'BULWARK_BACKUP_SOURCE'),
      dir: required(args, 'base-dir'),
    });
    io.out(
      json
        ? JSON.stringify(r)
        : `base backup ${r.dir} in ${(r.durationMs / 1000).toFixed(1)} s (verified with pg_verifybackup)`,
    );
    return 0;
  }
  if (sub === 'restore') {
    const toTime = str(args, 'to-time');
    const osUser = str(args, 'os-user');
    io.err('… copying the base backup, then replaying archived WAL (this takes a while for a busy server)');
    const r = await restorePitr({
      base: required(args, 'base-dir'),
      archiveDir: required(args, 'archive'),
      dataDir: required(args, 'data-dir'),
      port: int(args, 'port', 5433, 1),
      ...(toTime === undefined ? {} : { toTime }),
      ...(osUser === undefined ? {} : { osUser }),
    });
    io.out(
      json
        ? JSON.stringify(r)
        : [
            `restored and promoted: ${r.url} (data directory ${r.dataDir})`,
            `target time        ${r.targetTime ?? '(end of the archive)'}`,
            `last transaction   ${r.lastReplayedAt ?? '(none replayed)'}`,
            `achieved RPO       ${r.rpoMs === null ? 'n/a' : `${(r.rpoMs / 1000).toFixed(1)} s before the target`}`,
            `achieved RTO       ${(r.rtoMs / 1000).toFixed(1)} s`,
            'next: check the data, then point the application at it (or pg_dump what you need from it)',
          ].join('\n'),
    );
    return 0;
  }
  throw new UsageError(`pitr needs setup, base or restore (got ${sub ?? 'nothing'})`);
}
