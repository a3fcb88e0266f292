#!/usr/bin/env node
// The `bulwark` command: `bulwark queue stats|list|dlq|redrive|purge --store SPEC …` (see docs/durable.md).
import { main } from '../dist/durable/cli.js';

process.exitCode = await main(process.argv.slice(2));
