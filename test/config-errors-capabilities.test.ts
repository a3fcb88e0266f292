/**
 * One way to configure, for the capabilities built on the spine: the control plane, the audit
 * log, exports, the keyring's rotation, PostgreSQL pools, migrator and transactions, backups,
 * sync, the fault proxy and the gateway. Each constructor gets a wrong type, a value out of range
 * (where it has a number) and a misspelled key; each throws (or rejects with) the one
 * `ConfigError` naming the dotted option path, with "did you mean" for the misspelling. Nothing
 * here needs a server: options are checked before any connection is made.
 */

import { randomBytes } from 'node:crypto';
import { ConfigError, createRegistry } from 'bulwark';
import { openAuditLog, requestAudit, sqliteAuditStore } from 'bulwark/audit';
import { createBackups } from 'bulwark/backup';
import { faultProxy } from 'bulwark/chaos';
import { exportTo } from 'bulwark/export';
import { keyring, scheduleRotation } from 'bulwark/keyring';
import { createMigrator, createPool } from 'bulwark/postgres';
import { createControlPlane } from 'bulwark/server';
import { hybridClock, memorySyncStore, syncServer } from 'bulwark/sync';
import { describe, expect, it } from 'vitest';

type Options = Record<string, unknown>;

interface Row {
  readonly name: string;
  /** Calls the constructor with `bad` merged into valid options. */
  readonly make: (bad: Options) => unknown;
  readonly wrongType: readonly [key: string, value: unknown, path: string];
  readonly outOfRange?: readonly [key: string, value: unknown, path: string];
  /** [misspelled key, the key "did you mean" names]. */
  readonly misspelled: readonly [string, string];
}

const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
const save = async () => {};

const rows: readonly Row[] = [
  {
    name: 'createControlPlane',
    make: (o) => createControlPlane({ registry: createRegistry(), tokens: [], ...o } as never),
    wrongType: ['basePath', 42, 'createControlPlane.basePath'],
    misspelled: ['registy', 'registry'],
  },
  {
    name: 'openAuditLog',
    make: (o) => openAuditLog({ store: 'sqlite::memory:', ...o } as never),
    wrongType: ['name', 42, 'openAuditLog.name'],
    outOfRange: ['maxBatch', 0, 'openAuditLog.maxBatch'],
    misspelled: ['retension', 'retention'],
  },
  {
    name: 'sqliteAuditStore',
    make: (o) => sqliteAuditStore({ path: ':memory:', ...o } as never),
    wrongType: ['path', 42, 'sqliteAuditStore.path'],
    misspelled: ['pth', 'path'],
  },
  {
    name: 'requestAudit',
    make: (o) => requestAudit({ log: openAuditLog({ store: 'sqlite::memory:' }), ...o } as never),
    wrongType: ['redactHeaders', 'authorization', 'requestAudit.redactHeaders'],
    misspelled: ['redactHeader', 'redactHeaders'],
  },
  {
    name: 'scheduleRotation',
    make: (o) => scheduleRotation({ keyring: ring, everyMs: 86_400_000, save, ...o } as never),
    wrongType: ['name', 42, 'scheduleRotation.name'],
    outOfRange: ['everyMs', -1, 'scheduleRotation.everyMs'],
    misspelled: ['evryMs', 'everyMs'],
  },
  {
    name: 'createPool',
    make: (o) => createPool({ connectionString: 'postgres://127.0.0.1:1/none', ...o } as never),
    wrongType: ['max', 'ten', 'createPool.max'],
    outOfRange: ['max', 0, 'createPool.max'],
    misspelled: ['connectionStrng', 'connectionString'],
  },
  {
    name: 'createMigrator',
    make: (o) => createMigrator({ db: 'postgres://127.0.0.1:1/none', dir: '.', ...o } as never),
    wrongType: ['dir', 42, 'createMigrator.dir'],
    outOfRange: ['lockTimeoutMs', -5, 'createMigrator.lockTimeoutMs'],
    misspelled: ['tabel', 'table'],
  },
  {
    name: 'createBackups',
    make: (o) => createBackups({ target: '/tmp/bulwark-config-errors', ...o } as never),
    wrongType: ['name', 42, 'createBackups.name'],
    misspelled: ['targett', 'target'],
  },
  {
    name: 'hybridClock',
    make: (o) => hybridClock({ node: 'n1', ...o } as never),
    wrongType: ['node', 42, 'hybridClock.node'],
    outOfRange: ['maxDriftMs', -1, 'hybridClock.maxDriftMs'],
    misspelled: ['maxDrift', 'maxDriftMs'],
  },
  {
    name: 'syncServer',
    make: (o) => syncServer({ store: memorySyncStore(), ...o } as never),
    wrongType: ['strategy', 42, 'syncServer.strategy'],
    outOfRange: ['maxBatch', 0, 'syncServer.maxBatch'],
    misspelled: ['maxBach', 'maxBatch'],
  },
  {
    name: 'faultProxy',
    make: (o) => faultProxy({ name: 'p', listen: '127.0.0.1:0', upstream: '127.0.0.1:9', ...o } as never),
    wrongType: ['enabled', 'yes', 'faultProxy.enabled'],
    misspelled: ['upstrem', 'upstream'],
  },
  {
    name: 'exportTo',
    make: (o) =>
      exportTo({
        format: 'csv',
        source: { name: 'x', rows: async function* () {} },
        to: '/dev/null',
        ...o,
      } as never),
    wrongType: ['format', 42, 'exportTo.format'],
    misspelled: ['formt', 'format'],
  },
];

/** Calls `make`, returning what it threw or rejected with (or undefined). */
async function failure(make: () => unknown): Promise<unknown> {
  try {
    const r = make();
    if (r instanceof Promise) await r;
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('every capability constructor refuses bad options with the one ConfigError', () => {
  for (const row of rows) {
    it(`${row.name}: wrong type`, async () => {
      const [key, value, path] = row.wrongType;
      const e = await failure(() => row.make({ [key]: value }));
      expect(e, `${row.name} { ${key}: ${JSON.stringify(value)} }`).toBeInstanceOf(ConfigError);
      expect(e).toMatchObject({ code: 'INVALID_OPTION', option: path });
    });
    if (row.outOfRange !== undefined) {
      const [key, value, path] = row.outOfRange;
      it(`${row.name}: out of range`, async () => {
        const e = await failure(() => row.make({ [key]: value }));
        expect(e, `${row.name} { ${key}: ${JSON.stringify(value)} }`).toBeInstanceOf(ConfigError);
        expect(e).toMatchObject({ code: 'INVALID_OPTION', option: path });
      });
    }
    it(`${row.name}: misspelled key`, async () => {
      const [bad, good] = row.misspelled;
      const e = await failure(() => row.make({ [bad]: 1 }));
      expect(e, `${row.name} { ${bad} }`).toBeInstanceOf(ConfigError);
      expect(e).toMatchObject({ code: 'UNKNOWN_OPTION' });
      expect((e as ConfigError).message).toContain(good);
    });
  }
});
