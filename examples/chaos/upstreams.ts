/**
 * Three small HTTP upstreams on free ports, for examples/chaos/gateway-endpoint.yaml. Prints
 * `upstreams a=HOST:PORT b=HOST:PORT c=HOST:PORT` once they listen.
 *
 *   npx tsx examples/chaos/upstreams.ts
 */

import { createServer, type Server } from 'node:http';

const names = ['a', 'b', 'c'];
const servers: Server[] = names.map((name) =>
  createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ upstream: name, path: req.url }));
    });
  }),
);
const addresses = await Promise.all(
  servers.map(
    (s) =>
      new Promise<string>((resolve) =>
        s.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(s.address() as { port: number }).port}`)),
      ),
  ),
);
console.log(`upstreams ${addresses.map((a, i) => `${names[i]}=${a}`).join(' ')}`);
const stop = (): void => {
  for (const s of servers) s.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
