import { createServer } from 'node:http';
import { H1Pool } from '../../src/gateway/h1-pool.js';
const pool = new H1Pool({ host: '127.0.0.1', port: 18701, connections: 64, keepAliveTimeoutMs: 60000, connectTimeoutMs: 2000 });
createServer((req, res) => {
  pool.request(req.method!, req.url!, ['host', '127.0.0.1:18701'], null, 5000, 5000, true, {
    onResponseStart: (_c, status, headers) => { delete headers.connection; res.writeHead(status, headers); },
    onResponseData: (_c, chunk, last) => { if (last) res.end(chunk); else res.write(chunk); },
    onResponseEnd: () => { if (!res.writableEnded) res.end(); },
    onResponseError: () => { res.destroy(); },
  });
}).listen(18707, '127.0.0.1', () => console.log('listening'));
