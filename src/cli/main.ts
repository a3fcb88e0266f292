/**
 * The `bulwark` command: one entry point that dispatches to each capability's CLI. Each
 * command's module is imported only when that command runs, so `bulwark queue …` never loads
 * the gateway, and optional peers (pg, ioredis, better-sqlite3) load only where needed.
 */
import { readFileSync } from 'node:fs';

/** Where a CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A command's entry point: argv after the command name is included (`['queue', 'stats', …]`). */
export type CommandMain = (argv: readonly string[], io: CliIo) => Promise<number>;

interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<CommandMain>;
}

// Deliberate repetition: a table of commands, one row each (summary, lazy loader of its module): rows
// of data, not logic.
/** The commands, by first word. Each capability adds one line here. */
const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  queue: {
    summary: 'inspect and operate durable queues: stats, list, dlq, redrive, purge, schedules, limits',
    load: async () => (await import('../durable/cli.js')).main,
  },
  chaos: {
    summary:
      'chaos engineering: `chaos proxy` (toxiproxy-compatible fault proxy), `chaos run experiment.yaml`',
    load: async () => (await import('../chaos/proxy/cli.js')).main,
  },
  gateway: {
    summary: 'run the resilient reverse proxy (bulwark gateway -c bulwark.yaml; check; schema)',
    load: async () => (await import('../gateway/cli.js')).main,
  },
  validate: {
    summary: 'validate a gateway configuration file (file:line:col errors)',
    load: async () => (await import('../gateway/cli.js')).validateMain,
  },
  demo: {
    summary: 'run the demo: flaky upstreams, the gateway in front, live load and narration',
    load: async () => (await import('../demo/cli.js')).main,
  },
  audit: {
    summary: 'tamper-evident audit log: verify, tail, proof, checkpoint, purge',
    load: async () => (await import('../audit/cli.js')).main,
  },
  export: {
    summary: 'stream data out as CSV, JSON, NDJSON, SQL or Markdown; export history',
    load: async () => (await import('../export/cli.js')).main,
  },
  migrate: {
    summary: 'apply, roll back and inspect SQL migrations (PostgreSQL, SQLite): up, down, status, create',
    load: async () => (await import('../postgres/migrate-cli.js')).main,
  },
  serve: {
    summary:
      'the admin API and dashboard over queue stores and audit logs (bulwark serve --queue sqlite:q.db)',
    load: async () => (await import('../server/serve-cli.js')).main,
  },
  backup: {
    summary: 'back up, verify, restore and prune PostgreSQL, SQLite, Redis and config files; PostgreSQL PITR',
    load: async () => (await import('../backup/cli.js')).main,
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: bulwark <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nbulwark <command> --help shows a command's options; bulwark --version prints the version.`;
}

/**
 * Runs the `bulwark` CLI with `argv` (without `node` and the script); resolves to the exit code
 * (0 ok, 1 failure, 2 usage error).
 *
 * @example
 * ```ts nocheck
 * import { main } from 'bulwark/cli';
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(
  argv: readonly string[],
  io: CliIo = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) },
): Promise<number> {
  const first = argv[0];
  if (first === '--version' || first === '-v' || first === 'version') {
    io.out(version());
    return 0;
  }
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.out(usage());
    return first === undefined ? 2 : 0;
  }
  const entry = COMMANDS[first];
  if (entry === undefined) {
    io.err(`Unknown command "${first}"\n\n${usage()}`);
    return 2;
  }
  const run = await entry.load();
  return run(argv, io);
}
