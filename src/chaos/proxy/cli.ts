/**
 * `bulwark chaos proxy`: runs the toxiproxy-compatible fault proxy API until interrupted.
 *   bulwark chaos proxy [--host 127.0.0.1] [--port 8474] [--config proxies.json] [--json]
 * `--config` takes toxiproxy's populate file (an array of proxies, each optionally with toxics).
 */
import { readFileSync } from 'node:fs';
import { chaosProxyServer } from './api.js';

interface Io {
  out(text: string): void;
  err(text: string): void;
}

const USAGE = `Usage: bulwark chaos proxy [--host HOST] [--port PORT] [--config FILE] [--json]
       bulwark chaos run FILE [--ci] [--out DIR] [--json]   (bulwark chaos run --help)

Runs a fault proxy with toxiproxy's HTTP API (default 127.0.0.1:8474). Existing toxiproxy clients
work unchanged. --config populates proxies (and their toxics) from a JSON file at start.`;

function flag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

/**
 * Runs `bulwark chaos …` (argv includes `chaos`); resolves to the exit code once interrupted.
 *
 * @example
 * ```ts nocheck
 * import { main } from 'bulwark/chaos/cli';
 * process.exitCode = await main(['chaos', 'proxy', '--port', '8474'], { out: console.log, err: console.error });
 * ```
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const sub = argv[1];
  if (sub === undefined || sub === '--help' || (sub === 'proxy' && argv.includes('--help'))) {
    io.out(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'run' || sub === 'schema') return (await import('../experiment/cli.js')).runMain(argv, io);
  if (sub !== 'proxy') {
    io.err(`Unknown chaos command "${sub}" (known: proxy, run, schema)\n\n${USAGE}`);
    return 2;
  }
  const portText = flag(argv, 'port') ?? '8474';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    io.err(`--port must be a port number (got ${portText})`);
    return 2;
  }
  const host = flag(argv, 'host') ?? '127.0.0.1';
  let api: Awaited<ReturnType<typeof chaosProxyServer>>;
  try {
    api = await chaosProxyServer({ host, port });
  } catch (error) {
    io.err(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
    return 1;
  }
  const config = flag(argv, 'config');
  if (config !== undefined) {
    try {
      const body = readFileSync(config, 'utf8');
      const res = await fetch(`${api.url}/populate`, { method: 'POST', body });
      if (!res.ok) throw new Error(((await res.json()) as { error: string }).error);
    } catch (error) {
      io.err(`${config}: ${(error as Error).message}`);
      await api.close();
      return 1;
    }
  }
  const proxies = [...api.proxies.values()].map((p) => p.json());
  if (argv.includes('--json')) io.out(JSON.stringify({ url: api.url, proxies }));
  else {
    io.out(`bulwark chaos proxy: API on ${api.url} (toxiproxy-compatible)`);
    for (const p of proxies)
      io.out(
        `  ${p.name}: ${p.listen} → ${p.upstream}${p.toxics.length > 0 ? ` (${p.toxics.length} toxics)` : ''}`,
      );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await api.close();
  return 0;
}
