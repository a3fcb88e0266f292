/**
 * Serves the dashboard: the files Vite built into dist/dashboard at install time. Nothing is
 * loaded from elsewhere; a strict Content-Security-Policy keeps it so.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Where the built dashboard is: dist/dashboard beside dist/server, or the build output when run from src/. */
export function dashboardDir(): string | undefined {
  const candidates = [
    new URL('../dashboard/', import.meta.url),
    new URL('../../dist/dashboard/', import.meta.url),
  ];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/** Serves `path` from the dashboard; resolves false when it is not a dashboard file. */
export async function serveDashboard(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  title: string,
): Promise<boolean> {
  const dir = dashboardDir();
  if (dir === undefined) {
    if (path !== '/' && path !== '/index.html') return false;
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`The ${title} dashboard is not built: run \`npm run build:dashboard\` (npm install does it)`);
    return true;
  }
  const rel = path === '/' || path === '' ? 'index.html' : normalize(path).replace(/^([/\\])+/, '');
  if (rel.startsWith('..')) return false;
  const file = join(dir, rel);
  if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) return false;
  const immutable = rel.startsWith('assets/');
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': statSync(file).size,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((resolve) => {
    createReadStream(file)
      .on('error', () => {
        res.destroy();
        resolve();
      })
      .pipe(res)
      .on('finish', resolve)
      .on('close', resolve);
  });
  return true;
}
