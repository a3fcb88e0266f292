/** A gateway in its own process (its own process group), started from a YAML file, for kill tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../fixtures/gateway-run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** The listener's URL, read from the startup line. */
  readonly url: string;
  readonly adminUrl: string | null;
  stderr(): string;
  /** SIGKILL to the whole process group. */
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** Starts `bulwark gateway -c file` as `node --import tsx` and waits for it to listen. */
export function startGatewayProcess(file: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, file], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway did not start: ${err}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/[^,\s]+)(?:, admin on (http:\/\/\S+))?/.exec(err);
      if (m !== null) {
        clearTimeout(t);
        resolve({
          child,
          url: m[1]!,
          adminUrl: m[2] ?? null,
          stderr: () => err,
          kill: (signal = 'SIGKILL') => {
            try {
              process.kill(-child.pid!, signal);
            } catch {}
          },
          exited,
        });
      }
    });
    child.stdout!.resume();
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`gateway exited ${code}: ${err}`));
    });
  });
}
