/**
 * The `bulwark export` command line.
 *
 * ```text
 * bulwark export --format csv|json|ndjson|sql|md (--sqlite PATH --query SQL | --postgres URL --query SQL |
 *                --queue NAME --store SPEC [--dead] | --audit SPEC [--tag T] [--subject S])
 *                [--out FILE] [--dialect postgres|sqlite] [--table NAME] [--total N]
 *                [--record-in AUDIT_SPEC --actor A] [--json]
 * bulwark export history --audit SPEC [--limit N] [--json]
 * ```
 * A progress line (rows, rows/s, ETA with --total) goes to stderr every second.
 * @module
 */

import type { Writable } from 'node:stream';
import * as cli from '../audit/cli-support.js';
import { openAuditLog } from '../audit/log.js';
import { EXTENSIONS, type ExportFormat } from './formats.js';
import { exportHistory, recordExport } from './history.js';
import type { ExportSource } from './rows.js';
import { exportTo, progressLine } from './run.js';
import { auditSource, postgresQuerySource, queueSource, sqliteQuerySource } from './sources.js';

const USAGE = `Usage: bulwark export --format FORMAT <source> [options]
       bulwark export history --audit SPEC [--limit N]

Formats: csv (RFC 4180, formula cells neutralised), json, ndjson, sql (--dialect postgres|sqlite), md

Sources (one):
  --sqlite PATH --query SQL        rows of a query on a SQLite file
  --postgres URL --query SQL       rows of a query on PostgreSQL (server-side cursor)
  --queue NAME --store SPEC        items of a durable queue (--dead: its dead letters)
  --audit SPEC                     audit log entries [--tag T] [--subject S]

Options:
  --out FILE          write here (default: standard output)
  --table NAME        SQL table name (default: the source name)
  --total N           expected rows, for the ETA
  --record-in SPEC    record the export in this audit log, with --actor A
  --json              print the result (rows, bytes, sha256) as JSON on stderr's behalf: stdout when --out is given
`;

const OPTIONS = cli.optionSpec(
  'format sqlite postgres query queue store audit tag subject out dialect table total limit record-in actor',
  'dead',
);

type Values = Record<string, string | boolean | undefined>;
type Opened = { source: ExportSource; close: () => Promise<void> };

async function openSource(v: Values): Promise<Opened> {
  const given = ['sqlite', 'postgres', 'queue', 'audit'].filter((k) => v[k] !== undefined);
  if (given.length !== 1)
    throw new cli.UsageError('give exactly one source: --sqlite, --postgres, --queue or --audit');
  if (typeof v.sqlite === 'string') {
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(v.sqlite, { readonly: true, fileMustExist: true });
    return {
      source: sqliteQuerySource({ name: (v.table as string) ?? 'export', db, sql: cli.need(v, 'query') }),
      close: async () => {
        db.close();
      },
    };
  }
  if (typeof v.postgres === 'string') {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: v.postgres, max: 1 });
    pool.on('error', () => {});
    return {
      source: postgresQuerySource({ name: (v.table as string) ?? 'export', pool, sql: cli.need(v, 'query') }),
      close: () => pool.end(),
    };
  }
  if (typeof v.queue === 'string') {
    const { openQueue, storeFromSpec } = await import('../durable/index.js');
    const q = await openQueue({ name: v.queue, store: storeFromSpec(cli.need(v, 'store')) });
    return { source: queueSource(q, v.dead === true ? { state: 'dead' } : {}), close: () => q.close() };
  }
  const encryption = cli.encryptionFromEnv(undefined);
  const log = openAuditLog({ store: v.audit as string, ...(encryption === undefined ? {} : { encryption }) });
  return {
    source: auditSource(log, {
      ...(typeof v.tag === 'string' ? { tag: v.tag } : {}),
      ...(typeof v.subject === 'string' ? { subject: v.subject } : {}),
    }),
    close: () => log.close(),
  };
}

/** Runs `bulwark export …` (argv includes the word `export`). */
export function main(
  argv: readonly string[],
  io: cli.CliIo,
  stdout: Writable = process.stdout,
): Promise<number> {
  return cli.runCli(io, USAGE, async () => {
    const { positionals, values: v } = cli.parse(argv.slice(1), OPTIONS);
    if (v.help === true) {
      io.out(USAGE);
      return 0;
    }
    if (positionals[0] === 'history') {
      const log = openAuditLog({ store: cli.need(v, 'audit') });
      try {
        const h = await exportHistory(log, { limit: cli.wholeNumber(v, 'limit') ?? 20 });
        if (v.json === true) io.out(JSON.stringify(h));
        else
          for (const r of h)
            io.out(
              `${new Date(r.time).toISOString()}  ${r.actor}  ${r.what}  ${r.format}  ${r.rows} rows  ${r.bytes} bytes  sha256 ${r.sha256.slice(0, 16)}…`,
            );
        return 0;
      } finally {
        await log.close();
      }
    }
    if (positionals.length > 0) throw new cli.UsageError(`unknown command "${positionals[0]}"`);
    const format = cli.need(v, 'format');
    if (!(format in EXTENSIONS))
      throw new cli.UsageError(
        `--format must be one of ${Object.keys(EXTENSIONS).join(', ')} (got ${format})`,
      );
    const dialect = v.dialect ?? 'postgres';
    if (dialect !== 'postgres' && dialect !== 'sqlite')
      throw new cli.UsageError('--dialect must be postgres or sqlite');
    if (v['record-in'] !== undefined) cli.need(v, 'actor');
    const total = cli.wholeNumber(v, 'total');
    const opened = await openSource(v);
    try {
      const progress = cli.throttled<Parameters<typeof progressLine>[0]>(1000, (p) =>
        io.err(`export: ${progressLine(p)}`),
      );
      const r = await exportTo({
        source: opened.source,
        format: format as ExportFormat,
        to: typeof v.out === 'string' ? v.out : stdout,
        dialect,
        ...(typeof v.table === 'string' ? { table: v.table } : {}),
        ...(total === undefined ? {} : { total }),
        onProgress: (p) => progress(p, p.done),
      });
      if (typeof v['record-in'] === 'string') {
        const log = openAuditLog({ store: v['record-in'] });
        await recordExport(log, {
          actor: v.actor as string,
          what: r.source,
          format: r.format,
          rows: r.rows,
          bytes: r.bytes,
          sha256: r.sha256,
        }).finally(() => log.close());
      }
      const summary = { source: r.source, format: r.format, rows: r.rows, bytes: r.bytes, sha256: r.sha256 };
      if (v.json === true) (typeof v.out === 'string' ? io.out : io.err)(JSON.stringify(summary));
      else io.err(`exported ${r.rows} rows (${r.bytes} bytes, sha256 ${r.sha256})`);
      return 0;
    } finally {
      await opened.close();
    }
  });
}
