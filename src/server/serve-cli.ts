/**
 * `bulwark serve`: the control plane and its dashboard as a standalone process, over the durable
 * queues and audit logs of stores given on the command line — so an operator can look at queues,
 * browse and redrive dead letters, and verify audit logs from outside the service that owns them.
 * Every mutating call is recorded (in memory, or in an audit log of its own with `--record`).
 */

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { openAuditLog } from '../audit/log.js';
import { createRegistry } from '../core/registry.js';
import { keyringFromEnv } from '../durable/encryption.js';
import { openQueue, type Queue } from '../durable/queue.js';
import { storeFromSpec } from '../durable/store-spec.js';
import { tokensFromEnv } from './auth.js';
import { createControlPlane } from './control-plane.js';
import { listenControlPlane } from './mount.js';

const USAGE = `Usage: bulwark serve [--queue SPEC]… [--audit [NAME=]SPEC]… [options]

Serves the admin API and the dashboard over the queues and audit logs of the stores given.

Options:
  --queue SPEC        a queue store: sqlite:PATH or postgres://user@host/db (every queue in it; repeatable)
  --audit [NAME=]SPEC an audit log to browse and verify: sqlite:PATH or postgres://… (repeatable;
                      NAME is the log's name, default "audit")
  --record SPEC       record the admin calls in this audit log (default: in memory)
  --host HOST         default 127.0.0.1
  --port N            default 9901 (0: any free port)
  --tokens-env NAME   the environment variable holding the tokens (default BULWARK_ADMIN_TOKENS),
                      e.g. "alice@admin:<token>,viewer:sha256=<hex>"
  --tls-cert FILE --tls-key FILE   serve HTTPS (TLS 1.3 minimum)
  --title TEXT        the name shown on the dashboard (default "bulwark serve")

Payloads of encrypted queues are read with the keys in BULWARK_KEYS.
Prints the URL when listening; SIGINT or SIGTERM closes it gracefully (exit 0).`;

/** Where the command writes. */
export interface ServeIo {
  out(text: string): void;
  err(text: string): void;
}

class UsageError extends Error {}

/** A running `bulwark serve` (for tests and embedding): its URL and how to stop it. */
export interface ServeHandle {
  readonly url: string;
  readonly server: Server;
  /** What it serves, e.g. `3 queues, 1 audit log`. */
  readonly summary: string;
  close(): Promise<void>;
}

/**
 * Starts what `bulwark serve` starts; resolves once it listens.
 *
 * @example
 * ```ts nocheck
 * // (in the package: import { startServe } from './src/server/serve-cli.js')
 * const serve = await startServe(['--queue', 'sqlite::memory:', '--port', '0'], {
 *   BULWARK_ADMIN_TOKENS: 'viewer:a-viewer-token-of-some-length',
 * });
 * console.log(serve.url.startsWith('http://127.0.0.1:')); // true
 * await serve.close();
 * ```
 */
export async function startServe(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServeHandle> {
  let values: ReturnType<typeof parse>;
  try {
    values = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const tokensVar = values['tokens-env'] ?? 'BULWARK_ADMIN_TOKENS';
  const tokens = tokensFromEnv(env[tokensVar]);
  if (tokens.length === 0)
    throw new UsageError(
      `no token in $${tokensVar}: set it to e.g. "alice@admin:<a token of 16+ characters>"`,
    );
  const port = values.port === undefined ? 9901 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`--port ${values.port}: a port number 0-65535`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const registry = createRegistry();
  const queues: Queue<unknown>[] = [];
  const logs: { close(): Promise<void> }[] = [];
  const closeAll = async () => {
    await Promise.allSettled(queues.map((q) => q.close({ graceMs: 0 })));
    await Promise.allSettled(logs.map((l) => l.close()));
  };
  try {
    const keys = env.BULWARK_KEYS;
    const keyring = keys !== undefined && keys !== '' ? { keyring: keyringFromEnv('BULWARK_KEYS') } : {};
    for (const spec of values.queue ?? []) {
      const store = storeFromSpec(spec);
      await store.init();
      const names = (await store.listQueues?.()) ?? [];
      if (names.length === 0) await store.close();
      for (const name of names) {
        if (registry.get('durableQueue', name) !== undefined)
          throw new UsageError(`queue "${name}" is in two of the stores given: serve them separately`);
        queues.push(await openQueue<unknown>({ name, store, registry, ...keyring }));
      }
    }
    for (const raw of values.audit ?? []) {
      const eq = raw.indexOf('=');
      const named = eq > 0 && !raw.slice(0, eq).includes(':');
      const name = named ? raw.slice(0, eq) : 'audit';
      if (registry.get('auditLog', name) !== undefined)
        throw new UsageError(`two audit logs named "${name}": give each a name, --audit NAME=SPEC`);
      logs.push(await openAuditLog({ store: named ? raw.slice(eq + 1) : raw, name, registry }));
    }
    let record: Awaited<ReturnType<typeof openAuditLog>> | undefined;
    if (values.record !== undefined) {
      record = await openAuditLog({ store: values.record, name: 'admin' });
      logs.push(record);
    }
    const cp = createControlPlane({
      registry,
      tokens,
      title: values.title ?? 'bulwark serve',
      ...(record === undefined ? {} : { audit: record }),
    });
    const tls =
      values['tls-cert'] === undefined
        ? undefined
        : { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']!) };
    const host = values.host ?? '127.0.0.1';
    const server = await listenControlPlane(cp, { host, port, ...(tls === undefined ? {} : { tls }) });
    const { port: bound } = server.address() as { port: number };
    const shown = host.includes(':') ? `[${host}]` : host;
    let closing: Promise<void> | undefined;
    return {
      url: `${tls === undefined ? 'http' : 'https'}://${shown}:${bound}/`,
      server,
      summary: `${queues.length} queue${queues.length === 1 ? '' : 's'}, ${logs.length - (record ? 1 : 0)} audit log${logs.length - (record ? 1 : 0) === 1 ? '' : 's'}`,
      close: () => {
        closing ??= (async () => {
          cp.close();
          server.closeAllConnections?.();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          await closeAll();
        })();
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      queue: { type: 'string', multiple: true },
      audit: { type: 'string', multiple: true },
      record: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tokens-env': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      title: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

/**
 * The `bulwark serve` command: starts, prints the URL, and runs until SIGINT or SIGTERM (then
 * closes gracefully and resolves 0). Usage errors resolve 2, other failures 1.
 *
 * @example
 * ```ts nocheck
 * // bulwark serve --queue sqlite:./data/q.db --audit sqlite:./audit.db --port 9901
 * ```
 */
export async function main(argv: readonly string[], io: ServeIo): Promise<number> {
  const args = argv[0] === 'serve' ? argv.slice(1) : argv;
  if (args.includes('--help') || args.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  let serve: ServeHandle;
  try {
    serve = await startServe(args);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`bulwark serve: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`bulwark serve: ${(error as Error).message}`);
    return 1;
  }
  io.out(`bulwark serve: listening on ${serve.url} (${serve.summary})`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  io.out('bulwark serve: closing');
  await serve.close();
  return 0;
}
