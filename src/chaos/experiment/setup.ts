/**
 * The experiment's world: fault proxies served by an in-process toxiproxy-compatible API,
 * processes started and watched (their readiness read from their output), files written from
 * templates. `${proxies.NAME.listen}`, `${processes.NAME.url}`, `${files.NAME}`, `${api.url}`
 * and `${env.NAME}` are filled in every later string.
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ChaosProxyServer, chaosProxyServer } from '../proxy/api.js';
import type { SetupSpec } from './schema.js';

/** A process started by the experiment. */
export interface ManagedProcess {
  readonly name: string;
  child: ChildProcess;
  /** Its last lines of output (for errors). */
  readonly tail: string[];
}

function lookup(vars: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = vars;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * Fills `${a.b.c}` (and `${a.b:-default}`) from `vars`; an unknown name is an error naming it.
 *
 * @example
 * ```ts
 * import { fillTemplate } from 'bulwark/chaos';
 * console.log(fillTemplate('redis://${proxies.redis.listen}', { proxies: { redis: { listen: '127.0.0.1:4000' } } }));
 * // redis://127.0.0.1:4000
 * ```
 */
export function fillTemplate(text: string, vars: Readonly<Record<string, unknown>>): string {
  return text.replace(/\$\{([A-Za-z0-9_.-]+)(?::-([^}]*))?\}/g, (whole, path: string, fallback?: string) => {
    if (path === 'seq') return whole; // the load generator's sequence number
    const v = lookup(vars, path);
    if (v === undefined || v === null || v === '') {
      if (fallback !== undefined) return fallback;
      throw new Error(`unknown template value \${${path}}`);
    }
    return String(v);
  });
}

/**
 * `fillTemplate` applied to every string inside a JSON-like value (module arguments).
 *
 * @example
 * ```ts
 * import { fillDeep } from 'bulwark/chaos';
 * console.log(fillDeep({ url: '${a}/stats', n: 1 }, { a: 'http://x' })); // { url: 'http://x/stats', n: 1 }
 * ```
 */
export function fillDeep<T>(value: T, vars: Readonly<Record<string, unknown>>): T {
  if (typeof value === 'string') return fillTemplate(value, vars) as T;
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, vars)) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fillDeep(v, vars);
    return out as T;
  }
  return value;
}

/** The running world of one experiment. `close()` stops every process and proxy, always. */
export class World {
  readonly vars: Record<string, unknown>;
  readonly processes = new Map<string, ManagedProcess>();
  private readonly specs = new Map<string, Extract<SetupSpec, { type: 'process' }>>();
  private api: ChaosProxyServer | null = null;
  private dir: string | null = null;

  constructor(
    private readonly baseDir: string,
    private readonly log: (line: string) => void,
  ) {
    this.vars = { proxies: {}, processes: {}, files: {}, env: { ...process.env }, api: {} };
  }

  fill = (text: string): string => fillTemplate(text, this.vars);

  /** The in-process proxy API (started on first use). */
  async proxyApi(): Promise<ChaosProxyServer> {
    if (this.api === null) {
      this.api = await chaosProxyServer({ host: '127.0.0.1', port: 0 });
      (this.vars.api as Record<string, unknown>).url = this.api.url;
    }
    return this.api;
  }

  /** The URL of the in-process proxy API, if any proxy was set up. */
  get apiUrl(): string | undefined {
    return this.api?.url;
  }

  async run(step: SetupSpec): Promise<void> {
    if (step.type === 'proxy') {
      const api = await this.proxyApi();
      const res = await fetch(`${api.url}/proxies`, {
        method: 'POST',
        body: JSON.stringify({
          name: step.name,
          listen: this.fill(step.listen),
          upstream: this.fill(step.upstream),
          type: step.kind,
        }),
      });
      const json = (await res.json()) as { listen?: string; error?: string };
      if (!res.ok) throw new Error(`proxy ${step.name}: ${json.error ?? res.status}`);
      const listen = json.listen ?? '';
      (this.vars.proxies as Record<string, unknown>)[step.name] = {
        listen,
        port: Number(listen.split(':').pop()),
        url: `http://${listen}`,
      };
      this.log(`proxy ${step.name}: ${listen} → ${this.fill(step.upstream)}`);
      return;
    }
    if (step.type === 'file') {
      this.dir ??= mkdtempSync(join(tmpdir(), 'bulwark-chaos-'));
      const path = join(this.dir, `${step.name}${step.extension}`);
      writeFileSync(path, this.fill(step.content));
      (this.vars.files as Record<string, unknown>)[step.name] = path;
      return;
    }
    this.specs.set(step.name, step);
    await this.start(step.name);
  }

  /** Starts (or restarts) a process of the setup and waits for its ready pattern. */
  async start(name: string): Promise<void> {
    const step = this.specs.get(name);
    if (step === undefined) throw new Error(`no process named "${name}" in the setup`);
    const [cmd, ...args] = step.command.map(this.fill);
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const [k, v] of Object.entries(step.env)) env[k] = this.fill(v);
    const child = spawn(cmd!, args, {
      cwd: resolve(this.baseDir, this.fill(step.cwd ?? '.')),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const managed: ManagedProcess = { name, child, tail: [] };
    this.processes.set(name, managed);
    const vars: Record<string, unknown> = { pid: child.pid };
    (this.vars.processes as Record<string, unknown>)[name] = vars;
    const pattern = step.ready === undefined ? null : new RegExp(step.ready.pattern);
    let matched = pattern === null;
    let onReady: (() => void) | undefined;
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        managed.tail.push(line);
        if (managed.tail.length > 20) managed.tail.shift();
        if (matched || pattern === null) continue;
        const m = pattern.exec(line);
        if (m === null) continue;
        matched = true;
        if (m[1] !== undefined) vars.url = m[1];
        for (const [k, v] of Object.entries(m.groups ?? {})) vars[k] = v;
        onReady?.();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    if (pattern === null) return;
    const timeoutMs = step.ready?.timeoutMs ?? 15_000;
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(
        () =>
          fail(
            new Error(
              `process ${name} printed nothing matching /${pattern.source}/ within ${timeoutMs} ms; last output:\n${managed.tail.join('\n')}`,
            ),
          ),
        timeoutMs,
      );
      const exit = (code: number | null): void => {
        clearTimeout(timer);
        fail(
          new Error(
            `process ${name} exited (${code}) before it was ready; last output:\n${managed.tail.join('\n')}`,
          ),
        );
      };
      child.once('exit', exit);
      child.once('error', (e) => {
        clearTimeout(timer);
        fail(e);
      });
      onReady = () => {
        clearTimeout(timer);
        child.off('exit', exit);
        ok();
      };
    });
    this.log(`process ${name}: pid ${child.pid}${vars.url !== undefined ? `, ${String(vars.url)}` : ''}`);
  }

  /** Sends a signal to a setup process (by name) or a pid. */
  signal(target: string | number, signal: NodeJS.Signals): void {
    const pid = typeof target === 'number' ? target : this.processes.get(target)?.child.pid;
    if (pid === undefined) throw new Error(`no running process named "${String(target)}"`);
    process.kill(pid, signal);
  }

  /** Stops every process (SIGCONT, SIGTERM to its group, SIGKILL after its stop timeout), every proxy, and removes the files. */
  async close(): Promise<void> {
    const stops = [...this.processes.values()].reverse().map(async (p) => {
      const { child } = p;
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      const group = -child.pid;
      const kill = (sig: NodeJS.Signals): void => {
        try {
          process.kill(group, sig);
        } catch {
          // already gone
        }
      };
      kill('SIGCONT');
      kill('SIGTERM');
      const grace = this.specs.get(p.name)?.stopTimeoutMs ?? 3_000;
      const timer = setTimeout(() => kill('SIGKILL'), grace);
      await gone;
      clearTimeout(timer);
    });
    await Promise.all(stops);
    await this.api?.close();
    this.api = null;
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
