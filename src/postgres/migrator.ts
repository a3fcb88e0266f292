/**
 * The migrator: applies versioned SQL files under a cross-process lock (racing instances: exactly
 * one applies each migration), refuses an applied migration whose file was edited or removed,
 * rolls back with the down parts, and plans without changing anything (`dryRun`). A Component
 * (kind `migrator`).
 * @module
 */

import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { MigrationError } from './errors.js';
import {
  type AppliedMigration,
  type MigrationDriver,
  type MigrationStep,
  openDriver,
} from './migration-drivers.js';
import { compareVersions, loadMigrations, type Migration } from './migration-files.js';

/** Events of a migrator (kind `migrator`). */
export type MigratorEvent =
  | (EventBase & {
      readonly kind: 'migrator';
      readonly event: 'applied' | 'rolledBack';
      readonly migration: string;
      readonly durationMs: number;
    })
  | (EventBase & {
      readonly kind: 'migrator';
      readonly event: 'failed';
      readonly migration: string;
      readonly error: unknown;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    migrator: MigratorEvent;
  }
}

/** Options of `createMigrator()`. */
export interface MigratorOptions {
  /** `postgres://…` or `sqlite:PATH`. */
  db: string;
  /** The directory of `<version>_<name>.sql` files. */
  dir: string;
  /** The history table. Default `bulwark_migrations`. */
  table?: string;
  /** PostgreSQL: the schema to migrate (created if absent, used as search_path). Default: the connection's. */
  schema?: string;
  /** Longest wait for another migrator's lock, ms. Default 60 000. */
  lockTimeoutMs?: number;
  /** Default `migrator`. */
  name?: string;
  registry?: Registry;
  /** A driver of your own (tests, other databases); `db` is then only a label. */
  driver?: () => Promise<MigrationDriver>;
}

/** The state of one migration. */
export interface MigrationStatus {
  readonly version: string;
  readonly name: string;
  /** `changed`: applied, but the file's up part differs; `missing`: applied, but no file. */
  readonly state: 'applied' | 'pending' | 'changed' | 'missing';
  readonly appliedAt: string | null;
}

/** What `up`/`down` did (or, with `dryRun`, would do). */
export interface MigrationRun {
  readonly direction: 'up' | 'down';
  readonly dryRun: boolean;
  readonly steps: readonly {
    readonly id: string;
    readonly sql: string;
    readonly inTransaction: boolean;
    readonly durationMs: number;
  }[];
}

const IDENT = { pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, patternRule: 'an SQL identifier (letters, digits, _)' };

const optionsSchema = s.object({
  db: s.string(),
  dir: s.string(),
  table: s.optional(s.string(IDENT), 'bulwark_migrations'),
  schema: s.optional(s.string(IDENT)),
  lockTimeoutMs: s.optional(s.duration({ positive: true }), 60_000),
  name: s.optional(s.string(), 'migrator'),
  registry: s.optional(s.unknown()),
  driver: s.optional(s.fn<() => Promise<MigrationDriver>>()),
});

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'migrator',
  help: 'Versioned SQL migrations applied under a lock',
  category: 'database',
  states: ['idle', 'running', 'failed'],
  gauges: { pending: 'migrations not applied (as of the last run or status)', applied: 'migrations applied' },
  counters: {
    applied: 'migrations applied by this migrator',
    rolledBack: 'migrations rolled back by this migrator',
    failures: 'migrations that failed',
    refusals: 'runs refused (an applied migration edited or missing)',
  },
};

/** A migrator. Make one with `createMigrator()`. */
export class Migrator {
  readonly kind = 'migrator';
  readonly descriptor = DESCRIPTOR;
  readonly name: string;
  private readonly emitter = new PolicyEmitter<MigratorEvent>();
  private readonly open: () => Promise<MigrationDriver>;
  private readonly dir: string;
  private state: 'idle' | 'running' | 'failed' = 'idle';
  private readonly gauges = { pending: 0, applied: 0 };
  private readonly counts = { applied: 0, rolledBack: 0, failures: 0, refusals: 0 };

  /** @internal use `createMigrator()` */
  constructor(options: MigratorOptions) {
    const o = optionsSchema.parse(options, 'createMigrator');
    this.name = o.name;
    this.dir = o.dir;
    const driverOptions = { table: o.table, schema: o.schema, lockTimeoutMs: o.lockTimeoutMs };
    this.open = o.driver ?? (() => openDriver(o.db, driverOptions));
  }

  /** The migration files, in version order. */
  migrations(): Migration[] {
    return loadMigrations(this.dir);
  }

  private async locked<T>(
    fn: (driver: MigrationDriver, files: Migration[], applied: AppliedMigration[]) => Promise<T>,
  ): Promise<T> {
    const files = this.migrations();
    const driver = await this.open();
    try {
      await driver.lock();
      try {
        const applied = await driver.applied();
        return await fn(driver, files, applied);
      } finally {
        await driver.unlock();
      }
    } finally {
      await driver.close();
    }
  }

  private statusOf(files: Migration[], applied: AppliedMigration[]): MigrationStatus[] {
    const byVersion = new Map(applied.map((a) => [a.version, a]));
    const out: MigrationStatus[] = files.map((f) => {
      const a = byVersion.get(f.version);
      byVersion.delete(f.version);
      return {
        version: f.version,
        name: f.name,
        state: a === undefined ? 'pending' : a.checksum === f.checksum ? 'applied' : 'changed',
        appliedAt: a?.appliedAt ?? null,
      };
    });
    for (const a of byVersion.values())
      out.push({ version: a.version, name: a.name, state: 'missing', appliedAt: a.appliedAt });
    out.sort((x, y) => compareVersions(x.version, y.version));
    this.gauges.pending = out.filter((m) => m.state === 'pending').length;
    this.gauges.applied = applied.length;
    return out;
  }

  /** Refuses to run when an applied migration was edited or its file removed. */
  private refuseDrift(status: MigrationStatus[]): void {
    const bad = status.find((m) => m.state === 'changed' || m.state === 'missing');
    if (bad === undefined) return;
    this.counts.refusals++;
    const id = `${bad.version}_${bad.name}`;
    throw bad.state === 'changed'
      ? new MigrationError(
          'MIGRATION_CHECKSUM_MISMATCH',
          id,
          `Migration ${id} was applied on ${bad.appliedAt}, but its file's up part has changed since. Applied migrations must not be edited: restore the file as it was (git checkout) and put the change in a new migration (bulwark migrate create).`,
        )
      : new MigrationError(
          'MIGRATION_MISSING',
          id,
          `Migration ${id} was applied on ${bad.appliedAt}, but its file is gone from ${this.dir}. Restore the file (applied migrations stay in the directory).`,
        );
  }

  /** Every migration with its state (takes the lock briefly, changes nothing). */
  status(): Promise<MigrationStatus[]> {
    return this.locked(async (_d, files, applied) => this.statusOf(files, applied));
  }

  /** Applies the pending migrations (up to `to`, a version, when given), each once. */
  up(options: { to?: string; dryRun?: boolean } = {}): Promise<MigrationRun> {
    const o = s
      .object({
        to: s.optional(s.string({ pattern: /^\d+$/, patternRule: 'a version (digits)' })),
        dryRun: s.optional(s.boolean(), false),
      })
      .parse(options, 'up');
    return this.locked(async (driver, files, applied) => {
      const status = this.statusOf(files, applied);
      this.refuseDrift(status);
      const done = new Set(applied.map((a) => a.version));
      const pending = files.filter(
        (f) => !done.has(f.version) && (o.to === undefined || compareVersions(f.version, o.to) <= 0),
      );
      return this.run(
        driver,
        pending.map((migration) => ({ migration, direction: 'up' as const })),
        o.dryRun,
      );
    });
  }

  /** Rolls back the last `steps` applied migrations (default 1), newest first, with their down parts. */
  down(options: { steps?: number; dryRun?: boolean } = {}): Promise<MigrationRun> {
    const o = s
      .object({ steps: s.optional(s.int({ min: 1 }), 1), dryRun: s.optional(s.boolean(), false) })
      .parse(options, 'down');
    return this.locked(async (driver, files, applied) => {
      const status = this.statusOf(files, applied);
      this.refuseDrift(status);
      const byVersion = new Map(files.map((f) => [f.version, f]));
      const last = [...applied].sort((a, b) => compareVersions(b.version, a.version)).slice(0, o.steps);
      const steps: MigrationStep[] = last.map((a) => {
        const migration = byVersion.get(a.version)!;
        if (migration.down === '') {
          throw new MigrationError(
            'MIGRATION_NO_DOWN',
            migration.id,
            `Migration ${migration.id} has no down part, so it cannot be rolled back: add "-- migrate:down" and the SQL that undoes it (editing the down part is allowed), or restore from a backup`,
          );
        }
        return { migration, direction: 'down' };
      });
      return this.run(driver, steps, o.dryRun);
    });
  }

  private async run(driver: MigrationDriver, steps: MigrationStep[], dryRun: boolean): Promise<MigrationRun> {
    const direction = steps[0]?.direction ?? 'up';
    const out: { id: string; sql: string; inTransaction: boolean; durationMs: number }[] = [];
    const plan = (st: MigrationStep) => ({
      id: st.migration.id,
      sql: st.direction === 'up' ? st.migration.up : st.migration.down,
      inTransaction:
        driver.dialect === 'sqlite' ||
        (st.direction === 'up' ? st.migration.upInTransaction : st.migration.downInTransaction),
    });
    if (dryRun) return { direction, dryRun, steps: steps.map((st) => ({ ...plan(st), durationMs: 0 })) };
    this.state = 'running';
    for (const st of steps) {
      const base = {
        kind: 'migrator',
        name: this.name,
        priority: 'normal',
        operation: undefined,
        attempt: 1,
      } as const;
      let durationMs: number;
      try {
        durationMs = await driver.apply(st);
      } catch (error) {
        this.state = 'failed';
        this.counts.failures++;
        if (this.emitter.wants('failed'))
          this.emitter.emit({ ...base, event: 'failed', migration: st.migration.id, error });
        throw error;
      }
      out.push({ ...plan(st), durationMs });
      if (st.direction === 'up') {
        this.counts.applied++;
        this.gauges.pending = Math.max(0, this.gauges.pending - 1);
        this.gauges.applied++;
      } else {
        this.counts.rolledBack++;
        this.gauges.pending++;
        this.gauges.applied = Math.max(0, this.gauges.applied - 1);
      }
      const event = st.direction === 'up' ? 'applied' : 'rolledBack';
      if (this.emitter.wants(event))
        this.emitter.emit({ ...base, event, migration: st.migration.id, durationMs });
    }
    this.state = 'idle';
    return { direction, dryRun, steps: out };
  }

  /** State and figures (no I/O). */
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: { ...this.gauges },
      counters: { ...this.counts },
      details: { dir: this.dir },
    };
  }

  /** Subscribes to the migrator's events. */
  onEvent(listener: Listener<MigratorEvent>): Disposer {
    return this.emitter.on(listener);
  }
}

/**
 * Makes a migrator for a PostgreSQL or SQLite database and a directory of migration files.
 *
 * @example
 * ```ts
 * import { mkdtempSync, writeFileSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { createMigrator } from 'bulwark/postgres';
 * const dir = mkdtempSync(join(tmpdir(), 'mig-'));
 * writeFileSync(join(dir, '0001_users.sql'), '-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n');
 * const migrator = createMigrator({ db: `sqlite:${join(dir, 'app.db')}`, dir });
 * console.log((await migrator.up()).steps.map((s) => s.id)); // ['0001_users']
 * console.log((await migrator.status())[0]?.state); // applied
 * await migrator.down();
 * ```
 */
export function createMigrator(options: MigratorOptions): Migrator {
  const m = new Migrator(options);
  return joinRegistry(options.registry, m);
}
