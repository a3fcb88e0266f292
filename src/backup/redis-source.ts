/**
 * Redis backups: an RDB snapshot fetched over the replication protocol, as `redis-cli --rdb`
 * does (`REPLCONF rdb-only 1`, then `SYNC`; the server forks, writes a snapshot and streams it as
 * one bulk reply). `verify` loads the file into a throwaway `redis-server` (unix socket only) and
 * compares its key count with the one recorded at backup time.
 * @module
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { BulwarkError } from '../core/errors.js';
import type { Keyring } from '../durable/encryption.js';
import type { ManifestFile, TableStats } from './manifest.js';
import { writeStored } from './stored-file.js';

/** Redis refused or broke the snapshot transfer. */
export class RedisBackupError extends BulwarkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_BACKUP_FAILED', message, options);
  }
}

/** A minimal RESP connection: commands with simple, integer, error and bulk replies, then the raw RDB transfer. */
class Resp {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended: Error | null = null;
  private sink: ((chunk: Buffer) => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      if (this.sink !== null) this.sink(d);
      else {
        this.buf = Buffer.concat([this.buf, d]);
        this.wake();
      }
    });
    const end = (e?: Error) => {
      this.ended = e ?? new Error('connection closed');
      this.wake();
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async more(): Promise<void> {
    if (this.ended !== null) throw this.ended;
    await new Promise<void>((r) => this.waiters.push(r));
  }

  async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('utf8');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      await this.more();
    }
  }

  async command(...args: string[]): Promise<string | number | null> {
    this.socket.write(
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
    );
    const l = await this.line();
    if (l.startsWith('-')) throw new RedisBackupError(`Redis answered ${args[0]} with ${l.slice(1)}`);
    if (l.startsWith('+')) return l.slice(1);
    if (l.startsWith(':')) return Number(l.slice(1));
    if (l.startsWith('$')) {
      const n = Number(l.slice(1));
      if (n < 0) return null;
      while (this.buf.length < n + 2) await this.more();
      const s = this.buf.subarray(0, n).toString('utf8');
      this.buf = this.buf.subarray(n + 2);
      return s;
    }
    throw new RedisBackupError(`Unexpected reply to ${args[0]}: ${l.slice(0, 40)}`);
  }

  /** Sends SYNC and streams the RDB payload into `out`. */
  async sync(out: PassThrough): Promise<number> {
    this.socket.write('SYNC\r\n');
    // The server sends "\n" keep-alives while it prepares the snapshot, then "$<len>\r\n".
    let header: string;
    for (;;) {
      while (this.buf.length > 0 && this.buf[0] === 0x0a) this.buf = this.buf.subarray(1);
      if (this.buf.length > 0 && this.buf.includes('\r\n')) {
        header = await this.line();
        break;
      }
      await this.more();
    }
    if (header.startsWith('-')) throw new RedisBackupError(`Redis refused SYNC: ${header.slice(1)}`);
    if (!header.startsWith('$') || header.startsWith('$EOF:'))
      throw new RedisBackupError(`Unexpected SYNC header ${header.slice(0, 60)}`);
    const total = Number(header.slice(1));
    let left = total;
    const take = (chunk: Buffer) => {
      const part = chunk.subarray(0, left);
      left -= part.length;
      out.write(part);
      if (left === 0) {
        this.sink = () => {};
        out.end();
        this.socket.destroy();
      }
    };
    return new Promise<number>((resolve, reject) => {
      out.once('finish', () => resolve(total));
      this.socket.once('close', () => {
        if (left > 0) {
          const e = new RedisBackupError(
            `The connection closed with ${left} of ${total} snapshot bytes missing`,
          );
          out.destroy(e);
          reject(e);
        }
      });
      this.sink = take;
      const pending = this.buf;
      this.buf = Buffer.alloc(0);
      if (pending.length > 0) take(pending);
      if (total === 0) out.end();
    });
  }
}

function connectTo(url: string): Promise<{ resp: Resp; password: string; user: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket =
      u.protocol === 'unix:'
        ? connect(u.pathname)
        : connect(Number(u.port || 6379), u.hostname || '127.0.0.1');
    socket.once('connect', () =>
      resolve({
        resp: new Resp(socket),
        password: decodeURIComponent(u.password),
        user: decodeURIComponent(u.username),
      }),
    );
    socket.once('error', (e) =>
      reject(new RedisBackupError(`Cannot connect to Redis at ${u.host}: ${e.message}`, { cause: e })),
    );
  });
}

/** Fetches an RDB snapshot from the Redis at `url` into `dir/dump.rdb`. @internal */
export async function backupRedis(o: {
  url: string;
  dir: string;
  id: string;
  ring: Keyring | undefined;
}): Promise<{ files: ManifestFile[]; tables: TableStats[]; versions: Record<string, string> }> {
  const { resp, password, user } = await connectTo(o.url);
  try {
    if (password !== '')
      await (user === '' ? resp.command('AUTH', password) : resp.command('AUTH', user, password));
    const info = String(await resp.command('INFO', 'server'));
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    const keys = Number(await resp.command('DBSIZE'));
    await resp.command('REPLCONF', 'rdb-only', '1').catch(() => null); // Redis < 7: a full transfer anyway
    const out = new PassThrough();
    const name = 'dump.rdb';
    const stored = writeStored(out, join(o.dir, name), o.ring, `${o.id}/${name}`);
    await resp.sync(out);
    const file = await stored;
    return {
      files: [{ name, ...file }],
      tables: [{ name: 'db0+ keys (DBSIZE of the selected db)', rows: keys, checksum: '' }],
      versions: { redis: version },
    };
  } finally {
    resp.socket.destroy();
  }
}

/** Where redis-server is, if installed. @internal */
export function redisServerPath(): string | undefined {
  for (const p of [
    process.env.BULWARK_REDIS_SERVER,
    '/usr/bin/redis-server',
    '/usr/local/bin/redis-server',
  ]) {
    if (p !== undefined && p !== '' && existsSync(p)) return p;
  }
  return undefined;
}

/** Loads an RDB file into a throwaway redis-server (unix socket) and returns its DBSIZE. @internal */
export async function loadRdb(file: string): Promise<number> {
  const server = redisServerPath();
  if (server === undefined)
    throw new RedisBackupError(
      'redis-server is not installed: cannot load the snapshot to verify it (apt-get install redis-server)',
    );
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-rdb-'));
  const sock = join(dir, 'redis.sock');
  const slash = file.lastIndexOf('/');
  const child = spawn(
    server,
    [
      '--port',
      '0',
      '--unixsocket',
      sock,
      '--dir',
      file.slice(0, slash),
      '--dbfilename',
      file.slice(slash + 1),
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 300 && !existsSync(sock); i++) {
      if (child.exitCode !== null)
        throw new RedisBackupError(
          `redis-server refused the snapshot (exit code ${child.exitCode}): the RDB file is damaged or from a newer Redis`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
    const { resp } = await connectTo(`unix://${sock}`).catch(() => connectTo(`unix:${sock}`));
    try {
      for (let i = 0; i < 500; i++) {
        try {
          return Number(await resp.command('DBSIZE'));
        } catch (error) {
          if (!/LOADING/.test((error as Error).message)) throw error;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      throw new RedisBackupError('redis-server kept loading the snapshot');
    } finally {
      resp.socket.destroy();
    }
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
