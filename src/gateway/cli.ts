/**
 * The CLI commands `bulwark gateway [-c bulwark.yaml]`, `bulwark gateway check -c …`,
 * `bulwark validate -c …` and `bulwark gateway schema`.
 * @module
 */

/** Where the command writes (the `bulwark` CLI passes its own). */
interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

import { gracefulShutdown, type ServerLike } from '../health/shutdown.js';
import { gatewayJsonSchema } from './config.js';
import { startGatewayFromFile } from './gateway.js';
import type { AccessEntry } from './handler.js';
import { lintGatewayConfig } from './lint.js';
import { GatewayConfigError, loadGatewayConfig } from './load.js';

interface Flags {
  config: string;
  json: boolean;
  help: boolean;
  quiet: boolean;
  rest: string[];
}

function flags(argv: readonly string[]): Flags | string {
  const f: Flags = { config: 'bulwark.yaml', json: false, help: false, quiet: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') {
      const v = argv[++i];
      if (v === undefined) return `${a} needs a file`;
      f.config = v;
    } else if (a.startsWith('--config=')) f.config = a.slice(9);
    else if (a === '--json') f.json = true;
    else if (a === '--quiet' || a === '-q') f.quiet = true;
    else if (a === '--help' || a === '-h') f.help = true;
    else if (a.startsWith('-')) return `unknown option ${a}`;
    else f.rest.push(a);
  }
  return f;
}

const USAGE = `Usage:
  bulwark gateway [-c bulwark.yaml] [--quiet]   run the gateway (SIGHUP or a file change reloads; SIGTERM drains)
  bulwark gateway check [-c bulwark.yaml] [--json]   validate, then warn about unsafe settings
  bulwark gateway schema                        print the JSON Schema of the file
  bulwark validate [-c bulwark.yaml] [--json]   validate the file (errors say file:line:col path: what)`;

async function validate(f: Flags, io: CliIo, lint: boolean): Promise<number> {
  try {
    const config = await loadGatewayConfig(f.config);
    const findings = lint ? lintGatewayConfig(config) : [];
    if (f.json) io.out(JSON.stringify({ ok: true, file: f.config, findings }));
    else {
      for (const x of findings) io.err(`${f.config}: ${x.severity} ${x.option}: ${x.message}`);
      io.out(
        `${f.config}: valid (${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams)${lint ? `, ${findings.length} warning${findings.length === 1 ? '' : 's'}` : ''}`,
      );
    }
    return findings.some((x) => x.severity === 'error') ? 1 : 0;
  } catch (error) {
    if (!(error instanceof GatewayConfigError)) throw error;
    if (f.json)
      io.out(
        JSON.stringify({
          ok: false,
          file: error.file,
          line: error.line,
          column: error.column,
          option: error.option,
          error: error.message,
        }),
      );
    else io.err(error.message);
    return 1;
  }
}

/**
 * `bulwark validate`.
 *
 * @example
 * ```ts nocheck
 * process.exitCode = await validateMain(['validate', '-c', 'bulwark.yaml'], io);
 * ```
 */
/** The command's flags, or its exit code once usage was printed (2 for a bad flag, 0 for --help). */
function flagsOrExit(argv: readonly string[], io: CliIo): Exclude<ReturnType<typeof flags>, string> | number {
  const f = flags(argv.slice(1));
  if (typeof f === 'string') {
    io.err(`${f}\n\n${USAGE}`);
    return 2;
  }
  if (f.help) {
    io.out(USAGE);
    return 0;
  }
  return f;
}

export async function validateMain(argv: readonly string[], io: CliIo): Promise<number> {
  const f = flagsOrExit(argv, io);
  if (typeof f === 'number') return f;
  return validate(f, io, false);
}

async function pinoLog(): Promise<(entry: AccessEntry) => void> {
  try {
    const { pino } = await import('pino');
    const log = pino({ base: null, messageKey: 'msg' }, pino.destination({ sync: false }));
    return (e) => log.info(e, 'request');
  } catch {
    return (e) => process.stdout.write(`${JSON.stringify(e)}\n`);
  }
}

/**
 * `bulwark gateway`.
 *
 * @example
 * ```ts nocheck
 * process.exitCode = await main(['gateway', '-c', 'bulwark.yaml'], io);
 * ```
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const f = flagsOrExit(argv, io);
  if (typeof f === 'number') return f;
  const sub = f.rest[0];
  if (sub === 'check') return validate(f, io, true);
  if (sub === 'schema') {
    io.out(JSON.stringify(gatewayJsonSchema(), null, 2));
    return 0;
  }
  if (sub !== undefined) {
    io.err(`unknown gateway subcommand "${sub}"\n\n${USAGE}`);
    return 2;
  }
  let gw: Awaited<ReturnType<typeof startGatewayFromFile>>;
  try {
    gw = await startGatewayFromFile(f.config, f.quiet ? {} : { accessLog: await pinoLog() });
  } catch (error) {
    io.err(error instanceof Error ? error.message : String(error));
    return 1;
  }
  gw.onEvent((e) => {
    if (
      e.event === 'reloaded' ||
      e.event === 'reloadRefused' ||
      e.event === 'ejected' ||
      e.event === 'returned'
    ) {
      io.err(`bulwark gateway: ${e.event} ${e.name} ${JSON.stringify(e)}`);
    }
  });
  io.err(
    `bulwark gateway: listening on ${gw.url}${gw.admin !== null ? `, admin on ${gw.admin.url}` : ''} (config ${f.config})`,
  );
  return new Promise<number>((resolve) => {
    const shutdown = gracefulShutdown({
      servers: [gw.server as unknown as ServerLike],
      drainDelayMs: Number(process.env.BULWARK_DRAIN_DELAY_MS ?? 0),
      // /readyz answers 503 from the signal on, while the drain delay lets load balancers notice.
      monitor: {
        setShuttingDown: (v) => {
          gw.ready = !v;
        },
      },
      exit: (code) => resolve(code),
      logger: false,
      hooks: [{ name: 'gateway', run: () => gw.close(2_000) }],
    });
    void shutdown;
  });
}
