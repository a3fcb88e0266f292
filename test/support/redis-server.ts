/**
 * A private redis-server process for fault tests: started on a free port, killed, restarted on the
 * same port, paused (SIGSTOP) and resumed (SIGCONT), without touching the shared Redis at 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.start();
    return r;
  }

  /** Starts (or restarts) the server on its port and waits until it answers PING. */
  async start(): Promise<void> {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    const spawnError = new Promise<never>((_, reject) =>
      proc.once('error', (e) =>
        reject(new Error('redis-server could not be started (is it installed?)', { cause: e })),
      ),
    );
    const c = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, retryStrategy: () => 20 });
    c.on('error', () => {});
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await Promise.race([c.connect().then(() => c.ping()), spawnError]);
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          if (e instanceof Error && e.message.startsWith('redis-server could not')) throw e;
          c.disconnect();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      c.disconnect();
    }
  }

  /** Kills the server (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await gone;
    this.proc = null;
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }
}
