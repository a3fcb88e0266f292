/**
 * Keyring sources: the environment (from `bulwark/durable`), a file, or a command (a secrets
 * manager's CLI). All read the same text, `id:base64key` entries separated by commas or new
 * lines, the FIRST being current. Errors name the source and the entry's position, never key
 * material.
 * @module
 */

import { execFile } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { type Keyring, keyringFromEnv } from '../durable/encryption.js';
import { BulwarkKeyringError } from './errors.js';

export { keyringFromEnv };

/** Parses `id:base64key` entries (commas or new lines; `#` comments) into a keyring; first is current. */
export function keyringFromText(text: string, source: string): Keyring {
  const entries = text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return keyringFromEnv(source, { [source]: entries.join(',') });
}

/**
 * Reads a keyring from a file of `id:base64key` lines (first = current). Keep it mode 0600.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { mkdtempSync, writeFileSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { keyringFromFile } from 'bulwark/keyring';
 * const file = join(mkdtempSync(join(tmpdir(), 'keys-')), 'keys');
 * writeFileSync(file, `k1:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
 * console.log(String(await keyringFromFile(file))); // Keyring(current=k1, keys=k1)
 * ```
 */
export async function keyringFromFile(path: string): Promise<Keyring> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new BulwarkKeyringError(
      'SOURCE_FAILED',
      `Cannot read the key file ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return keyringFromText(text, `key file ${path}`);
}

/**
 * Runs a command (no shell) and reads a keyring from its standard output, e.g. a secrets
 * manager's CLI. The command's stderr and stdout never appear in errors.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyringFromCommand } from 'bulwark/keyring';
 * const key = randomBytes(32).toString('base64');
 * const ring = await keyringFromCommand(process.execPath, ['-e', `console.log('k1:${key}')`]);
 * console.log(ring.currentKeyId); // k1
 * ```
 */
export function keyringFromCommand(
  command: string,
  args: readonly string[] = [],
  options: { timeoutMs?: number } = {},
): Promise<Keyring> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { timeout: options.timeoutMs ?? 10_000, maxBuffer: 1 << 20 },
      (error, stdout) => {
        if (error !== null) {
          const code = (error as { code?: unknown }).code;
          reject(
            new BulwarkKeyringError(
              'SOURCE_FAILED',
              `The key command ${command} failed (exit ${String(code)}); its output is not shown`,
            ),
          );
          return;
        }
        try {
          resolve(keyringFromText(String(stdout), `key command ${command}`));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

/**
 * Saves a new current key at the top of a key file (atomically: a temporary file renamed over
 * it, mode 0600), keeping the older keys below it. For `scheduleRotation({ save })`.
 *
 * @example
 * ```ts nocheck
 * import { keyFileSaver, scheduleRotation } from 'bulwark/keyring';
 * scheduleRotation({ keyring: ring, everyMs: 30 * 86_400_000, save: keyFileSaver('/etc/app/keys') });
 * ```
 */
export function keyFileSaver(path: string): (id: string, keyBase64: string) => Promise<void> {
  return async (id, keyBase64) => {
    const old = await readFile(path, 'utf8').catch(() => '');
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${id}:${keyBase64}\n${old}`, { mode: 0o600 });
    await rename(tmp, path);
  };
}
