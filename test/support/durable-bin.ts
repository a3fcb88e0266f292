/**
 * Runs the `bulwark` bin as a user would (test/fixtures/durable/bin.ts runs src/cli/main.ts as
 * bin/bulwark.mjs does). Used by the durable CLI tests.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(root, 'test/fixtures/durable/bin.ts');

/** Runs the bin with `argv`; `onStderr` sees stderr as it comes (to send Ctrl-C mid-run). */
export function bin(
  argv: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...argv], { cwd: root });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      onStderr?.(err, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}
