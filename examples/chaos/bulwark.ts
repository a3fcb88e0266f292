/**
 * The `bulwark` command run from the sources (what `npx bulwark …` runs once the package is
 * built), so the shipped experiments can start `bulwark gateway` without a build step.
 *
 *   npx tsx examples/chaos/bulwark.ts gateway -c bulwark.yaml
 */

import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
