#!/usr/bin/env node
/**
 * Completes package-lock.json with entries for other platforms' optional binaries.
 *
 * Why: the npm registry mirror on our machines serves only some platforms' builds of packages
 * like @biomejs/cli-* and @rollup/rollup-*. `npm install` then writes a lock file without the
 * other platforms' entries, and `npm ci` refuses that lock file ("Missing: … from lock file").
 * An entry with the version (and no tarball address) satisfies `npm ci`, which skips optional
 * packages it cannot or need not install. Run this after any `npm install` that rewrites the
 * lock file: `node scripts/complete-lockfile.mjs`.
 */

import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [key, meta] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const nested = `${key ? `${key}/` : ''}node_modules/${dep}`;
    if (packages[nested] || packages[`node_modules/${dep}`]) continue;
    packages[`node_modules/${dep}`] = { version, dev: meta.dev === true, optional: true };
    added++;
  }
}
if (added > 0) {
  const sorted = Object.fromEntries(
    Object.entries(packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  writeFileSync(path, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
}
console.log(`complete-lockfile: ${added} optional platform entr${added === 1 ? 'y' : 'ies'} added`);
