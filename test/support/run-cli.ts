/** Runs the `bulwark` CLI from the sources (for tests that start it as a real process). */
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
