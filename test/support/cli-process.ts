/**
 * Runs the `bulwark` CLI (from source) as real child processes. The entry is bundled once to plain
 * ESM with esbuild (tsx's own dependency) so that each child starts in a fraction of a second;
 * falls back to `node --import tsx` when esbuild is unavailable.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let entry: Promise<string[]> | null = null;

/** Deletes bundles left by test processes that are gone (vitest workers may end without 'exit'). */
function removeStale(): void {
  let names: string[] = [];
  try {
    names = readdirSync(`${ROOT}.tmp`);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^bulwark-cli-(\d+)$/.exec(name);
    if (m === null || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      rmSync(`${ROOT}.tmp/${name}`, { recursive: true, force: true });
    }
  }
}

function build(): Promise<string[]> {
  entry ??= (async () => {
    try {
      removeStale();
      const esbuild = (await import('esbuild')) as { build(o: Record<string, unknown>): Promise<unknown> };
      const outdir = `${ROOT}.tmp/bulwark-cli-${process.pid}/`;
      mkdirSync(outdir, { recursive: true });
      await esbuild.build({
        entryPoints: [`${ROOT}test/fixtures/bulwark-cli.ts`],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: `${outdir}bulwark-cli.mjs`,
        packages: 'external',
        logLevel: 'silent',
      });
      process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
      return [`${outdir}bulwark-cli.mjs`];
    } catch {
      return ['--import', 'tsx', `${ROOT}test/fixtures/bulwark-cli.ts`];
    }
  })();
  return entry;
}

/** Runs `bulwark …argv` in a child process; resolves with its exit code and output. */
export async function runCli(
  argv: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const args = await build();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...args, ...argv], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}
