#!/usr/bin/env node
// The `bulwark` command: `bulwark <command> …` (bulwark --help lists the commands).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
