/**
 * The backup manager (a Component, kind `backups`): creates backups of PostgreSQL, SQLite, Redis
 * and configuration files into a target, lists them, verifies them by restoring into a scratch
 * database and comparing every table with the figures recorded at backup time, restores them,
 * prunes by retention, and reports the age of the last good backup and of the last good verify.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { joinRegistry } from '../core/registry.js';
import { s } from '../core/schema.js';
import type { Keyring } from '../durable/encryption.js';
import { redact } from '../postgres/cli-args.js';
import type {
  BackupEvent,
  BackupProgress,
  BackupsOptions,
  CreateOptions,
  VerifyReport,
} from './backup-types.js';
import { backupFiles } from './files-source.js';
import { type BackupKind, type BackupManifest, hashFile, type TableStats } from './manifest.js';
import { databaseOf, withDatabase } from './pg-tools.js';
import {
  createDatabase,
  dropDatabase,
  dumpPostgres,
  isEmptyDatabase,
  restorePostgres,
  statsOf,
  type TableStatsMode,
} from './postgres-source.js';
import { backupRedis, loadRdb } from './redis-source.js';
import { type RetentionPolicy, selectRetention } from './retention.js';
import { backupSqlite, checkSqlite } from './sqlite-source.js';
import { BackupIntegrityError, readStored } from './stored-file.js';
import { type BackupTarget, localTarget } from './target.js';

const progressOption = s.optional(s.fn<(p: BackupProgress) => void>());
const noProgress = (): void => {};

const verifyOptions = s.object({
  scratchUrl: s.optional(s.string()),
  jobs: s.optional(s.int({ min: 1 }), 2),
  onProgress: progressOption,
});

const restoreOptions = s.object({
  to: s.string(),
  create: s.optional(s.boolean(), false),
  force: s.optional(s.boolean(), false),
  jobs: s.optional(s.int({ min: 1 }), 4),
  onProgress: progressOption,
});

const optionsSchema = s.object({
  target: s.custom('a directory path or a BackupTarget', (v, p) =>
    typeof v === 'string' && v !== ''
      ? v
      : typeof v === 'object' && v !== null && typeof (v as BackupTarget).store === 'function'
        ? v
        : s.fail(p, 'a directory path or a BackupTarget', v),
  ),
  keyring: s.optional(s.unknown()),
  pgBinDir: s.optional(s.string()),
  name: s.optional(s.string(), 'backups'),
  registry: s.optional(s.unknown()),
  clock: s.optional(s.unknown()),
});

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'backups',
  help: 'Backups with checksums, verified by restoring them',
  category: 'database',
  states: ['ok', 'stale', 'failing', 'unknown'],
  gauges: {
    lastBackupAgeMs: 'time since the last good backup finished, ms (-1: none known)',
    lastVerifyAgeMs: 'time since the last successful verify, ms (-1: none known)',
    lastBackupBytes: 'size of the last good backup',
    lastBackupDurationMs: 'how long the last good backup took, ms',
    lastVerifyDurationMs: 'how long the last verify took, ms',
    backups: 'backups in the target (as of the last list)',
  },
  counters: {
    created: 'backups created',
    failures: 'backups that failed',
    verifies: 'verifies run',
    verifyFailures: 'verifies that found a problem',
    restores: 'restores done',
    pruned: 'backups removed by prune',
  },
};

/** The kind of source a spec names: `postgres://…`, `sqlite:PATH`, `redis://…`, `files:PATH[,PATH…]`. */
export function sourceKind(source: string): BackupKind {
  if (/^postgres(ql)?:\/\//.test(source)) return 'postgres';
  if (source.startsWith('sqlite:')) return 'sqlite';
  if (/^rediss?:\/\//.test(source) || source.startsWith('unix:')) return 'redis';
  if (source.startsWith('files:')) return 'files';
  throw new ConfigError(
    'source',
    'postgres://…, sqlite:PATH, redis://host:port or files:PATH[,PATH…]',
    source,
  );
}

function newId(kind: BackupKind, at: number): string {
  const stamp = new Date(at)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${kind}-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** A backup manager. Make one with `createBackups()`. */
export class Backups {
  readonly kind = 'backups';
  readonly descriptor = DESCRIPTOR;
  readonly name: string;
  readonly target: BackupTarget;
  private readonly ring: Keyring | undefined;
  private readonly binDir: string | undefined;
  private readonly clock: Clock;
  private readonly emitter = new PolicyEmitter<BackupEvent>();
  private lastGood: { at: number; bytes: number; durationMs: number } | null = null;
  private lastVerify: { at: number; durationMs: number } | null = null;
  private lastFailed = false;
  private count = -1;
  private readonly counts = {
    created: 0,
    failures: 0,
    verifies: 0,
    verifyFailures: 0,
    restores: 0,
    pruned: 0,
  };

  // Deliberate repetition: zeroed counters, then the options parsed by this component's own schema
  // (the shape every component's constructor has).
  /** @internal use `createBackups()` */
  constructor(options: BackupsOptions) {
    const o = optionsSchema.parse(options, 'createBackups');
    this.name = o.name;
    this.target = typeof o.target === 'string' ? localTarget(o.target) : (o.target as BackupTarget);
    this.ring = o.keyring as Keyring | undefined;
    this.binDir = o.pgBinDir;
    this.clock = (o.clock as Clock | undefined) ?? systemClock;
  }

  private base(): EventBase & { kind: 'backups' } {
    return { kind: 'backups', name: this.name, priority: 'normal', operation: undefined, attempt: 0 };
  }

  private failed(operation: string, error: unknown): void {
    if (this.emitter.wants('failed'))
      this.emitter.emit({ ...this.base(), event: 'failed', operation, error });
  }

  /** Backs up `source` (`postgres://…`, `sqlite:PATH`, `redis://…`, `files:PATH[,PATH…]`); resolves with the manifest. */
  async create(source: string, options: CreateOptions = {}): Promise<BackupManifest> {
    const o = s
      .object({
        label: s.optional(s.string()),
        tableStats: s.optional(s.oneOf(['checksum', 'count', 'none'] as const), 'checksum'),
        onProgress: progressOption,
      })
      .parse(options, 'create');
    const kind = sourceKind(source);
    const started = this.clock.now();
    const startedAt = new Date(this.clock.date?.() ?? Date.now());
    const id = newId(kind, startedAt.getTime());
    const dir = await this.target.staging(id);
    const progress = o.onProgress ?? noProgress;
    try {
      progress({ phase: `backing up ${kind} ${redact(source)}` });
      const onBytes = (bytes: number) => progress({ phase: 'copying', bytes });
      const r =
        kind === 'postgres'
          ? await dumpPostgres({
              url: source,
              dir,
              id,
              ring: this.ring,
              stats: o.tableStats,
              binDir: this.binDir,
              onBytes,
            })
          : kind === 'sqlite'
            ? await backupSqlite({ path: source.slice('sqlite:'.length), dir, id, ring: this.ring })
            : kind === 'redis'
              ? await backupRedis({ url: source, dir, id, ring: this.ring })
              : await backupFiles({
                  paths: source.slice('files:'.length).split(','),
                  dir,
                  id,
                  ring: this.ring,
                });
      const durationMs = this.clock.now() - started;
      const manifest: BackupManifest = {
        format: 1,
        id,
        kind,
        source: redact(source),
        startedAt: startedAt.toISOString(),
        finishedAt: new Date(startedAt.getTime() + durationMs).toISOString(),
        durationMs: Math.round(durationMs),
        versions: { bulwark: '1', ...r.versions },
        files: r.files,
        tables: r.tables,
        ...(o.label === undefined ? {} : { label: o.label }),
      };
      writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await this.target.store(id, dir);
      const bytes = r.files.reduce((n, f) => n + f.bytes, 0);
      this.lastGood = { at: this.clock.now(), bytes, durationMs };
      this.lastFailed = false;
      this.counts.created++;
      if (this.count >= 0) this.count++;
      if (this.emitter.wants('created'))
        this.emitter.emit({ ...this.base(), event: 'created', id, bytes, durationMs });
      return manifest;
    } catch (error) {
      this.counts.failures++;
      this.lastFailed = true;
      this.failed('create', error);
      await this.target.discard(dir).catch(() => {});
      throw error;
    }
  }

  /** Every backup's manifest, newest first. */
  async list(): Promise<BackupManifest[]> {
    const ids = await this.target.list();
    const out: BackupManifest[] = [];
    for (const id of ids) out.push(await this.target.readManifest(id));
    out.sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1));
    this.count = out.length;
    return out;
  }

  /** Reads the target to learn the last good backup and verify (for the age gauges after a restart). */
  async refresh(): Promise<void> {
    const all = await this.list();
    const newest = all[0];
    if (newest !== undefined) {
      const ageMs = Date.now() - Date.parse(newest.finishedAt);
      this.lastGood = {
        at: this.clock.now() - ageMs,
        bytes: newest.files.reduce((n, f) => n + f.bytes, 0),
        durationMs: newest.durationMs,
      };
    }
    for (const m of all) {
      const note = await this.target.readNote(m.id, 'verify.json');
      if (note === undefined) continue;
      const v = JSON.parse(note) as VerifyReport;
      if (!v.ok) continue;
      const ageMs = Date.now() - Date.parse(v.checkedAt);
      const at = this.clock.now() - ageMs;
      if (this.lastVerify === null || at > this.lastVerify.at)
        this.lastVerify = { at, durationMs: v.durationMs };
    }
  }

  /** Decrypts (or copies) a stored file to `out`. */
  private async plain(
    id: string,
    dir: string,
    manifest: BackupManifest,
    name: string,
    out: string,
  ): Promise<string> {
    const f = manifest.files.find((x) => x.name === name)!;
    if (f.keyId === undefined) return join(dir, name);
    await readStored(join(dir, name), out, this.ring, f.keyId, `${id}/${name}`);
    return out;
  }

  /**
   * Runs `fn` on backup `id` fetched (its manifest and the directory of its files) with a scratch
   * directory named from `scratch`; both are cleaned up however `fn` ends.
   */
  private async withFetched<T>(
    id: string,
    scratch: string,
    fn: (manifest: BackupManifest, dir: string, tmp: string) => Promise<T>,
  ): Promise<T> {
    const manifest = await this.target.readManifest(id);
    const fetched = await this.target.fetch(id);
    const tmp = mkdtempSync(join(tmpdir(), scratch));
    try {
      return await fn(manifest, fetched.dir, tmp);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      await fetched.release();
    }
  }

  /**
   * Checks backup `id`: every file's SHA-256, then a real restore — PostgreSQL into a scratch
   * database (`scratchUrl`'s server; default the backed-up server) dropped afterwards, SQLite
   * into a temp file (`integrity_check`), Redis into a throwaway redis-server — comparing each
   * table's row count and checksum with those recorded at backup time.
   */
  async verify(
    id: string,
    options: { scratchUrl?: string; jobs?: number; onProgress?: (p: BackupProgress) => void } = {},
  ): Promise<VerifyReport> {
    const o = verifyOptions.parse(options, 'verify');
    const progress = o.onProgress ?? noProgress;
    const began = this.clock.now();
    const problems: string[] = [];
    const files: { name: string; ok: boolean }[] = [];
    let tables: VerifyReport['tables'] = [];
    await this.withFetched(id, 'bulwark-verify-', async (manifest, dir, tmp) => {
      progress({ phase: 'checking file checksums' });
      for (const f of manifest.files) {
        const path = join(dir, f.name);
        const actual = existsSync(path) ? await hashFile(path) : null;
        const ok = actual !== null && actual.sha256 === f.sha256 && actual.bytes === f.bytes;
        files.push({ name: f.name, ok });
        if (!ok)
          problems.push(
            actual === null
              ? `${f.name} is missing`
              : `${f.name}: SHA-256 ${actual.sha256.slice(0, 12)}… (${actual.bytes} bytes) differs from the manifest's ${f.sha256.slice(0, 12)}… (${f.bytes} bytes): the file was altered or damaged`,
          );
      }
      if (problems.length === 0 && manifest.kind !== 'files') {
        try {
          const actual = await this.restoreCheck(manifest, dir, tmp, o.scratchUrl, o.jobs, progress);
          tables = compareTables(manifest.tables, actual, problems);
        } catch (error) {
          problems.push(`restore failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });
    const durationMs = this.clock.now() - began;
    const report: VerifyReport = {
      id,
      ok: problems.length === 0,
      checkedAt: new Date().toISOString(),
      durationMs: Math.round(durationMs),
      files,
      tables,
      problems,
    };
    this.counts.verifies++;
    if (report.ok) this.lastVerify = { at: this.clock.now(), durationMs };
    else this.counts.verifyFailures++;
    await this.target.writeNote(id, 'verify.json', `${JSON.stringify(report, null, 2)}\n`).catch(() => {});
    if (this.emitter.wants('verified'))
      this.emitter.emit({ ...this.base(), event: 'verified', id, ok: report.ok, durationMs });
    return report;
  }

  /** Restores into scratch space and reads the figures to compare. */
  private async restoreCheck(
    m: BackupManifest,
    dir: string,
    tmp: string,
    scratchUrl: string | undefined,
    jobs: number,
    progress: (p: BackupProgress) => void,
  ): Promise<TableStats[]> {
    const name = m.files[0]!.name;
    const file = await this.plain(m.id, dir, m, name, join(tmp, name));
    if (m.kind === 'postgres') {
      const server = scratchUrl ?? m.source;
      const scratch = `bw_verify_${randomBytes(5).toString('hex')}`;
      progress({ phase: `restoring into scratch database ${scratch}` });
      await createDatabase(server, scratch);
      try {
        const url = withDatabase(server, scratch);
        await restorePostgres({ file, url, jobs, binDir: this.binDir });
        progress({ phase: 'comparing tables' });
        const mode: TableStatsMode = m.tables.some((t) => t.checksum !== '') ? 'checksum' : 'count';
        return await statsOf(url, mode);
      } finally {
        await dropDatabase(server, scratch).catch(() => {});
      }
    }
    if (m.kind === 'sqlite') {
      const copy = join(tmp, 'restored.sqlite');
      await copyFile(file, copy);
      const r = await checkSqlite(copy);
      if (r.integrity !== 'ok') throw new BackupIntegrityError(`SQLite integrity_check: ${r.integrity}`);
      return r.tables;
    }
    const rdb = file === join(dir, name) ? join(tmp, 'dump.rdb') : file;
    if (rdb !== file) await copyFile(file, rdb);
    const keys = await loadRdb(rdb);
    return [{ name: m.tables[0]?.name ?? 'keys', rows: keys, checksum: '' }];
  }

  /**
   * Restores backup `id`. PostgreSQL: into the database at `to` (created when `create`; it must be
   * empty: restore next to the damaged one, check it, then switch). SQLite: to the file `to`
   * (refused if it exists, unless `force`). Redis: writes `to/dump.rdb` (stop Redis, put it in
   * its dir, start Redis). Files: under the directory `to`, at their original paths.
   */
  async restore(
    id: string,
    options: {
      to: string;
      create?: boolean;
      force?: boolean;
      jobs?: number;
      onProgress?: (p: BackupProgress) => void;
    },
  ): Promise<{ id: string; to: string; durationMs: number }> {
    const o = restoreOptions.parse(options, 'restore');
    const progress = o.onProgress ?? noProgress;
    const began = this.clock.now();
    return this.withFetched(id, 'bulwark-restore-', async (m, dir, tmp) => {
      try {
        for (const f of m.files) {
          const h = await hashFile(join(dir, f.name));
          if (h.sha256 !== f.sha256)
            throw new BackupIntegrityError(
              `${id}/${f.name} does not match its SHA-256 in the manifest: the file was altered; restore another backup (bulwark backup list)`,
            );
        }
        if (m.kind === 'postgres') {
          if (o.create) {
            progress({ phase: `creating database ${databaseOf(o.to)}` });
            await createDatabase(o.to, databaseOf(o.to));
          } else if (!(await isEmptyDatabase(o.to)) && !o.force) {
            throw new ConfigError(
              'restore.to',
              'an empty database',
              redact(o.to),
              `Database ${databaseOf(o.to)} is not empty: restore into a new database (--create) and switch over, or pass --force to restore on top`,
            );
          }
          const file = await this.plain(id, dir, m, 'database.dump', join(tmp, 'database.dump'));
          progress({ phase: `pg_restore -j ${o.jobs} into ${databaseOf(o.to)}` });
          await restorePostgres({ file, url: o.to, jobs: o.jobs, binDir: this.binDir });
        } else if (m.kind === 'sqlite') {
          if (existsSync(o.to) && !o.force)
            throw new ConfigError(
              'restore.to',
              'a path that does not exist yet',
              o.to,
              `${o.to} exists: restore to a new path and swap the files while the application is stopped, or pass --force`,
            );
          mkdirSync(dirname(o.to), { recursive: true });
          const file = await this.plain(id, dir, m, 'database.sqlite', join(tmp, 'database.sqlite'));
          await copyFile(file, o.to);
        } else {
          for (const f of m.files) {
            const out =
              m.kind === 'redis'
                ? join(o.to, 'dump.rdb')
                : join(o.to, (f.source ?? f.name).replace(/^\/+/, ''));
            if (existsSync(out) && !o.force)
              throw new ConfigError(
                'restore.to',
                'a place without the file',
                out,
                `${out} exists; pass --force to overwrite it`,
              );
            mkdirSync(dirname(out), { recursive: true });
            if (f.keyId === undefined) await copyFile(join(dir, f.name), out);
            else await readStored(join(dir, f.name), out, this.ring, f.keyId, `${id}/${f.name}`);
          }
        }
        this.counts.restores++;
        return { id, to: redact(o.to), durationMs: Math.round(this.clock.now() - began) };
      } catch (error) {
        this.failed('restore', error);
        throw error;
      }
    });
  }

  /** Removes the backups `policy` does not keep (with `dryRun`, only says which). */
  async prune(
    policy: RetentionPolicy,
    options: { dryRun?: boolean } = {},
  ): Promise<{ keep: { id: string; why: readonly string[] }[]; removed: string[] }> {
    const all = await this.list();
    const decision = selectRetention(
      all.map((m) => ({ id: m.id, createdAt: Date.parse(m.finishedAt) })),
      policy,
    );
    if (options.dryRun !== true) {
      for (const id of decision.remove) await this.target.remove(id);
      this.counts.pruned += decision.remove.length;
      this.count = decision.keep.size;
      if (decision.remove.length > 0 && this.emitter.wants('pruned'))
        this.emitter.emit({ ...this.base(), event: 'pruned', ids: decision.remove });
    }
    return { keep: [...decision.keep].map(([id, why]) => ({ id, why })), removed: [...decision.remove] };
  }

  /** Ages and counts (no I/O). `lastBackupAgeMs`/`lastVerifyAgeMs` are -1 until known (call `refresh()` after a restart). */
  snapshot(): Snapshot {
    const now = this.clock.now();
    return {
      kind: this.kind,
      name: this.name,
      state: this.lastFailed ? 'failing' : this.lastGood === null ? 'unknown' : 'ok',
      gauges: {
        lastBackupAgeMs: this.lastGood === null ? -1 : now - this.lastGood.at,
        lastVerifyAgeMs: this.lastVerify === null ? -1 : now - this.lastVerify.at,
        lastBackupBytes: this.lastGood?.bytes ?? 0,
        lastBackupDurationMs: this.lastGood?.durationMs ?? 0,
        lastVerifyDurationMs: this.lastVerify?.durationMs ?? 0,
        backups: this.count,
      },
      counters: { ...this.counts },
      details: { target: this.target.description, encrypted: this.ring !== undefined },
    };
  }

  /** Subscribes to the manager's events. */
  onEvent(listener: Listener<BackupEvent>): Disposer {
    return this.emitter.on(listener);
  }
}

function compareTables(
  expected: readonly TableStats[],
  actual: readonly TableStats[],
  problems: string[],
): VerifyReport['tables'] {
  const byName = new Map(actual.map((t) => [t.name, t]));
  const out = expected.map((e) => {
    const a = byName.get(e.name);
    byName.delete(e.name);
    const ok = a !== undefined && a.rows === e.rows && (e.checksum === '' || a.checksum === e.checksum);
    if (a === undefined) problems.push(`table ${e.name} is missing after restore`);
    else if (a.rows !== e.rows)
      problems.push(`table ${e.name}: ${a.rows} rows after restore, ${e.rows} at backup time`);
    else if (!ok)
      problems.push(`table ${e.name}: same row count (${e.rows}) but the checksum of its rows differs`);
    return { name: e.name, expectedRows: e.rows, actualRows: a?.rows ?? null, ok };
  });
  for (const extra of byName.values())
    problems.push(`table ${extra.name} exists after restore but was not in the backup`);
  return out;
}

/**
 * Makes a backup manager.
 *
 * @example
 * ```ts
 * import { mkdtempSync, writeFileSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { createBackups } from 'bulwark/backup';
 * const dir = mkdtempSync(join(tmpdir(), 'bk-'));
 * writeFileSync(join(dir, 'app.yaml'), 'port: 8080\n');
 * const backups = createBackups({ target: join(dir, 'backups') });
 * const m = await backups.create(`files:${join(dir, 'app.yaml')}`);
 * console.log(m.files[0]?.sha256.length, (await backups.verify(m.id)).ok); // 64 true
 * ```
 */
export function createBackups(options: BackupsOptions): Backups {
  const b = new Backups(options);
  return joinRegistry(options.registry, b);
}
