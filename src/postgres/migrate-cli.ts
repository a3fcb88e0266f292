/**
 * The `bulwark migrate` command.
 *
 * ```text
 * bulwark migrate up     --db URL --dir DIR [--schema S] [--to VERSION] [--dry-run] [--json]
 * bulwark migrate down   --db URL --dir DIR [--schema S] [--steps N] [--dry-run] [--json]
 * bulwark migrate status --db URL --dir DIR [--schema S] [--json]
 * bulwark migrate create NAME --dir DIR
 * ```
 * `--db` is `postgres://…` or `sqlite:PATH` (default: $DATABASE_URL).
 * @module
 */

import { type Args, type CliIo as Io, int, required, runCommand, str, UsageError } from './cli-args.js';
import { createMigrationFile } from './migration-files.js';
import { createMigrator, type MigrationRun } from './migrator.js';

const USAGE = `Usage: bulwark migrate <up|down|status|create> [options]

Commands:
  up       apply pending migrations, each once (under a lock: safe to run from every instance)
  down     roll back the last applied migration (--steps N for more)
  status   every migration: applied, pending, changed (edited after applying) or missing
  create   write a new migration file: bulwark migrate create NAME --dir DIR

Options:
  --db URL        postgres://user@host/db or sqlite:PATH (default: $DATABASE_URL)
  --dir DIR       the migrations directory (default: ./migrations)
  --schema S      PostgreSQL schema to migrate (created if absent)
  --table T       history table (default bulwark_migrations)
  --to VERSION    up: stop after this version
  --steps N       down: how many to roll back (default 1)
  --lock-timeout MS  longest wait for another migrator (default 60000)
  --dry-run       print the SQL that would run; change nothing
  --json          machine-readable output
`;

const VALUED = new Set(['db', 'dir', 'schema', 'table', 'to', 'steps', 'lock-timeout']);
const SWITCHES = new Set(['dry-run', 'json']);

const COMMAND = { valued: VALUED, switches: SWITCHES, usage: USAGE, name: 'migrate' };

function printRun(io: Io, run: MigrationRun, json: boolean): void {
  if (json) {
    io.out(JSON.stringify(run));
    return;
  }
  if (run.steps.length === 0) {
    io.out(
      run.direction === 'up' ? 'Nothing to apply: the database is up to date.' : 'Nothing to roll back.',
    );
    return;
  }
  for (const st of run.steps) {
    if (run.dryRun) {
      io.out(
        `-- would ${run.direction === 'up' ? 'apply' : 'roll back'} ${st.id}${st.inTransaction ? '' : ' (outside a transaction)'}\n${st.sql}\n`,
      );
    } else {
      io.out(
        `${run.direction === 'up' ? 'applied' : 'rolled back'} ${st.id} in ${Math.round(st.durationMs)} ms`,
      );
    }
  }
}

async function run(args: Args, io: Io): Promise<number> {
  const command = args.positional[1];
  const json = args.flags.has('json');
  const dir = str(args, 'dir') ?? 'migrations';
  if (command === 'create') {
    const name = args.positional[2];
    if (name === undefined)
      throw new UsageError('create needs a NAME: bulwark migrate create add_users_email');
    const path = createMigrationFile(dir, name);
    io.out(json ? JSON.stringify({ path }) : `created ${path}`);
    return 0;
  }
  if (command !== 'up' && command !== 'down' && command !== 'status')
    throw new UsageError(command === undefined ? 'a command is required' : `unknown command "${command}"`);
  const migrator = createMigrator({
    db: required(args, 'db', 'DATABASE_URL'),
    dir,
    ...(str(args, 'schema') === undefined ? {} : { schema: str(args, 'schema')! }),
    ...(str(args, 'table') === undefined ? {} : { table: str(args, 'table')! }),
    lockTimeoutMs: int(args, 'lock-timeout', 60_000, 1),
  });
  const dryRun = args.flags.has('dry-run');
  if (command === 'status') {
    const status = await migrator.status();
    if (json) io.out(JSON.stringify(status));
    else {
      for (const m of status)
        io.out(
          `${m.state.padEnd(8)} ${m.version}_${m.name}${m.appliedAt === null ? '' : `  (applied ${m.appliedAt})`}`,
        );
      if (status.length === 0) io.out(`No migrations in ${dir}.`);
    }
    return status.some((m) => m.state === 'changed' || m.state === 'missing') ? 1 : 0;
  }
  const result =
    command === 'up'
      ? await migrator.up({ dryRun, ...(str(args, 'to') === undefined ? {} : { to: str(args, 'to')! }) })
      : await migrator.down({ dryRun, steps: int(args, 'steps', 1, 1) });
  printRun(io, result, json);
  return 0;
}

/**
 * Runs `bulwark migrate …` (`argv` starts with `migrate`). Resolves to the exit code: 0 ok, 1 a
 * migration failed or was refused, 2 usage.
 *
 * @example
 * ```ts nocheck
 * import { runMigrateCli } from 'bulwark/postgres';
 * process.exitCode = await runMigrateCli(['migrate', 'status', '--db', 'sqlite:app.db', '--dir', 'migrations'], console.log);
 * ```
 */
export function main(argv: readonly string[], io: Io): Promise<number> {
  return runCommand(COMMAND, argv, io, (args) => run(args, io));
}
