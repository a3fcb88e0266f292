// Open-loop (constant-rate) HTTP/1.1 load from bench/gateway/openloop.c, a small epoll generator
// in C in the manner of wrk2: requests are due at exact 1/rate intervals and their latency counts
// from the time they were due, so a stalled server cannot hide its stall (no coordinated omission).
// The C file is compiled once with gcc into node_modules/.cache/bulwark-openloop/, under a name
// carrying the source's hash, so an edited source is rebuilt on the next call.
import { type ExecFileException, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./openloop.c', import.meta.url));
const CACHE = join(dirname(SOURCE), '..', '..', 'node_modules', '.cache', 'bulwark-openloop');

/**
 * One run's counts and latency percentiles, latencies in microseconds.
 * `p50`…`max` count from the time each request was due (what a user of a server at this rate
 * sees); `p50Service`/`p99Service` from the moment it was written to the socket. `p50Late`/`p99Late`:
 * how late the generator itself woke to send (the machine's scheduling delay; a p99Late close to
 * p99 means the run measured CPU contention, not the server). Only requests due after the warm-up
 * are counted. `timeouts`: counted requests neither answered nor failed 5 s after the last was due.
 *
 * @example
 * ```ts
 * const r: OpenLoopResult = await openLoop({ host: '127.0.0.1', port, connections: 20, rate: 5000, seconds: 5 });
 * console.log(r.achievedRate, r.p99);
 * ```
 */
export interface OpenLoopResult {
  requested: number;
  seconds: number;
  sent: number;
  completed: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  achievedRate: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  p50Service: number;
  p99Service: number;
  p50Late: number;
  p99Late: number;
}

/**
 * Options of {@link openLoop}: the target, the number of keep-alive connections (each carries
 * one request at a time), the rate in requests per second, the measured seconds and the warm-up
 * seconds before them (sent, not counted).
 *
 * @example
 * ```ts
 * const o: OpenLoopOptions = { host: '127.0.0.1', port: 8080, path: '/', connections: 32, rate: 20000, seconds: 10, warmupSeconds: 2 };
 * ```
 */
export interface OpenLoopOptions {
  host: string;
  port: number;
  path?: string;
  connections: number;
  rate: number;
  seconds: number;
  warmupSeconds?: number;
}

/**
 * Why {@link openLoop} failed: `OPENLOOP_NO_COMPILER` (gcc is not installed), `OPENLOOP_BUILD`
 * (gcc rejected the source), `OPENLOOP_RUN` (the generator exited with an error, e.g. it could
 * not connect) or `OPENLOOP_OUTPUT` (it printed something that is not its JSON line).
 *
 * @example
 * ```ts
 * try { await openLoop(o); } catch (err) { if (err instanceof OpenLoopError && err.code === 'OPENLOOP_NO_COMPILER') skip(); }
 * ```
 */
export class OpenLoopError extends Error {
  readonly code: 'OPENLOOP_NO_COMPILER' | 'OPENLOOP_BUILD' | 'OPENLOOP_RUN' | 'OPENLOOP_OUTPUT';
  constructor(code: OpenLoopError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'OpenLoopError';
  }
}

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; error: ExecFileException | null }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => resolve({ stdout, stderr, error }),
    );
  });
}

let built: Promise<string> | undefined;

/**
 * The path of the compiled generator, building it first when the cache has no binary for the
 * current source.
 *
 * @example
 * ```ts
 * const bin = await openLoopBinary(); // node_modules/.cache/bulwark-openloop/openloop-<hash>
 * ```
 */
export function openLoopBinary(): Promise<string> {
  built ??= build().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

async function build(): Promise<string> {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 16);
  const bin = join(CACHE, `openloop-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = await run('gcc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE], 120_000);
  if (r.error !== null) {
    if (r.error.code === 'ENOENT') {
      throw new OpenLoopError(
        'OPENLOOP_NO_COMPILER',
        'openLoop needs gcc to build bench/gateway/openloop.c; install it (apt-get install gcc)',
        { cause: r.error },
      );
    }
    throw new OpenLoopError('OPENLOOP_BUILD', `gcc failed on ${SOURCE}:\n${r.stderr}`, { cause: r.error });
  }
  renameSync(tmp, bin); // atomic: a concurrent build of the same source ends with the same file
  return bin;
}

/**
 * Sends `rate` requests per second for `warmupSeconds + seconds` over `connections` keep-alive
 * connections and resolves with the latency percentiles of the requests due after the warm-up.
 * A request due while every connection is busy waits, and its wait counts in its latency.
 *
 * @example
 * ```ts
 * const nginx = await openLoop({ host: '127.0.0.1', port: 8080, connections: 32, rate: 23000, seconds: 10, warmupSeconds: 2 });
 * const proxy = await openLoop({ host: '127.0.0.1', port: 8081, connections: 32, rate: 23000, seconds: 10, warmupSeconds: 2 });
 * console.log('added p99', proxy.p99 - nginx.p99, 'µs');
 * ```
 */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const bin = await openLoopBinary();
  const warmup = o.warmupSeconds ?? 0;
  const args = ['-c', String(o.connections), '-r', String(o.rate), '-d', String(o.seconds)];
  args.push('-w', String(warmup), '-p', o.path ?? '/', o.host, String(o.port));
  const r = await run(bin, args, (warmup + o.seconds + 30) * 1000);
  if (r.error !== null) {
    throw new OpenLoopError(
      'OPENLOOP_RUN',
      `openloop ${args.join(' ')}: ${r.stderr.trim() || r.error.message}`,
      {
        cause: r.error,
      },
    );
  }
  try {
    return JSON.parse(r.stdout) as OpenLoopResult;
  } catch (err) {
    throw new OpenLoopError('OPENLOOP_OUTPUT', `openloop printed ${JSON.stringify(r.stdout)}`, {
      cause: err,
    });
  }
}
