/**
 * The method's actions. Each one that leaves a fault behind returns its undo, which the runner
 * calls at the fault's end, at the end of the run, on abort and on Ctrl-C.
 * @module
 */

import type { FaultProxy } from '../proxy/proxy.js';
import { importExport } from './probes.js';
import type { ActivitySpec } from './schema.js';
import { fillDeep, type World } from './setup.js';

/** Removes a fault; must be idempotent and quick. */
export type Undo = () => Promise<void>;

/** A custom action (a module export): may return an undo, called when the fault ends. */
export type CustomAction = (
  args: Record<string, unknown>,
  ctx: { readonly vars: Readonly<Record<string, unknown>>; readonly signal: AbortSignal },
) => unknown;

/** Where actions reach proxies, processes and modules. */
export interface ActionEnv {
  readonly world: World;
  readonly baseDir: string;
  /** Proxies given programmatically, by name (used before any API). */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  readonly signal: AbortSignal;
  /** Sleeps on the experiment's clock, ending early on abort. */
  readonly sleep: (ms: number) => Promise<void>;
}

interface ProxyHandle {
  addToxic(toxic: Record<string, unknown>): Promise<string>;
  removeToxic(name: string): Promise<void>;
  setEnabled(enabled: boolean): Promise<void>;
}

async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (!res.ok && res.status !== 404) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return text === '' ? null : (JSON.parse(text) as unknown);
}

function proxyHandle(spec: { proxy: string; api?: string }, env: ActionEnv): ProxyHandle {
  const name = env.world.fill(spec.proxy);
  const local = spec.api === undefined ? env.proxies.get(name) : undefined;
  if (local !== undefined) {
    return {
      addToxic: async (t) => local.addToxic(t).name,
      removeToxic: async (n) => {
        if (local.toxics.some((t) => t.name === n)) local.removeToxic(n);
      },
      setEnabled: (on) => local.setEnabled(on),
    };
  }
  const api = spec.api === undefined ? env.world.apiUrl : env.world.fill(spec.api);
  if (api === undefined)
    throw new Error(`no API for proxy "${name}": give \`api\` or set the proxy up in \`setup\``);
  const base = `${api.replace(/\/$/, '')}/proxies/${encodeURIComponent(name)}`;
  return {
    addToxic: async (t) => ((await call(`${base}/toxics`, 'POST', t)) as { name: string }).name,
    removeToxic: async (n) => {
      await call(`${base}/toxics/${encodeURIComponent(n)}`, 'DELETE');
    },
    setEnabled: async (enabled) => {
      await call(base, 'POST', { enabled });
    },
  };
}

let toxicSeq = 0;

async function controlPlane(
  a: Extract<ActivitySpec, { type: 'controlPlane' }>,
  env: ActionEnv,
): Promise<Undo> {
  const base = `${env.world.fill(a.url).replace(/\/$/, '')}/api/components/${encodeURIComponent(a.kind)}/${encodeURIComponent(env.world.fill(a.component))}`;
  const headers: Record<string, string> =
    a.token === undefined ? {} : { authorization: `Bearer ${env.world.fill(a.token)}` };
  const act = async (operation: string, input: Record<string, unknown>) =>
    (await call(`${base}/actions/${operation}`, 'POST', { reason: a.reason, input }, headers)) as {
      before?: { state?: string; gauges?: { rate?: number } };
    };
  if (a.operation === 'setRate') {
    if (a.rate === undefined) throw new Error('controlPlane setRate needs `rate`');
    const out = await act('setRate', { rate: a.rate });
    const before = out.before?.gauges?.rate;
    return async () => {
      if (typeof before === 'number' && Number.isFinite(before)) await act('setRate', { rate: before });
    };
  }
  const out = await act(a.operation, {});
  const wasOn = out.before?.state === 'on';
  return async () => {
    await act(wasOn ? 'enable' : 'disable', {});
  };
}

/**
 * Runs one activity; resolves to the undo of the fault it left (null when it left none).
 *
 * @example
 * ```ts nocheck
 * const undo = await runActivity({ type: 'toxic', proxy: 'redis', toxic: { type: 'latency', attributes: { latency: 300 } } }, env);
 * await undo?.();
 * ```
 */
export async function runActivity(a: ActivitySpec, env: ActionEnv): Promise<Undo | null> {
  switch (a.type) {
    case 'sleep':
      await env.sleep(a.durationMs);
      return null;
    case 'toxic': {
      const proxy = proxyHandle(a, env);
      const toxic = { ...a.toxic, name: a.toxic.name ?? `chaos_${a.toxic.type}_${++toxicSeq}` };
      const name = await proxy.addToxic(toxic);
      return () => proxy.removeToxic(name);
    }
    case 'pauseProxy': {
      // A paused dependency: connections stay open and nothing flows either way (SIGSTOP-like).
      const proxy = proxyHandle(a, env);
      const n = ++toxicSeq;
      const names = [
        await proxy.addToxic({
          name: `chaos_pause_up_${n}`,
          type: 'timeout',
          stream: 'upstream',
          attributes: { timeout: 0 },
        }),
        await proxy.addToxic({
          name: `chaos_pause_down_${n}`,
          type: 'timeout',
          stream: 'downstream',
          attributes: { timeout: 0 },
        }),
      ];
      return async () => {
        await Promise.all(names.map((x) => proxy.removeToxic(x)));
      };
    }
    case 'proxyDown': {
      const proxy = proxyHandle(a, env);
      await proxy.setEnabled(false);
      return () => proxy.setEnabled(true);
    }
    case 'controlPlane':
      return controlPlane(a, env);
    case 'signal': {
      const target = typeof a.process === 'string' ? env.world.fill(a.process) : a.process;
      env.world.signal(target, a.signal);
      return a.signal === 'SIGSTOP' ? async () => env.world.signal(target, 'SIGCONT') : null;
    }
    case 'startProcess':
      await env.world.start(env.world.fill(a.process));
      return null;
    case 'module': {
      const fn = await importExport(env.world.fill(a.module), a.export, env.baseDir);
      if (typeof fn !== 'function') throw new Error(`${a.module}#${a.export} is not a function`);
      const out = await (fn as CustomAction)(fillDeep(a.arguments, env.world.vars), {
        vars: env.world.vars,
        signal: env.signal,
      });
      return typeof out === 'function' ? async () => void (await (out as () => unknown)()) : null;
    }
  }
}

/** A short label of an activity for the report and the progress line. */
export function describeActivity(a: ActivitySpec): string {
  if (a.name !== undefined) return a.name;
  switch (a.type) {
    case 'toxic':
      return `${a.toxic.type} on ${a.proxy}`;
    case 'pauseProxy':
      return `${a.proxy} paused`;
    case 'proxyDown':
      return `${a.proxy} down`;
    case 'controlPlane':
      return `${a.operation} ${a.component}${a.rate !== undefined ? ` ${a.rate}` : ''}`;
    case 'signal':
      return `${a.signal} ${String(a.process)}`;
    case 'startProcess':
      return `start ${a.process}`;
    case 'module':
      return `${a.module}#${a.export}`;
    case 'sleep':
      return `sleep ${a.durationMs} ms`;
  }
}
