// One gateway for bench/gateway-features.bench.ts: `node --import tsx features-run.ts <src root> <config JSON>`.
// Prints `ready <port>` once listening.
const [root, json] = process.argv.slice(2);
const mod = (await import(`${root}/gateway/index.ts`)) as typeof import('../../src/gateway/index.js');
const gw = await mod.startGateway({ config: mod.parseGatewayConfig(JSON.parse(json!)) });
console.log(`ready ${gw.address.port}`);
process.on('SIGTERM', () => void gw.close(100).then(() => process.exit(0)));
