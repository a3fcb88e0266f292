// `npm run start:dev`: the demo from source (tsx), same as `bulwark demo`.
import { main } from '../src/cli/main.js';

process.exitCode = await main(['demo', ...process.argv.slice(2)]);
