/**
 * `bulwark/chaos`: a toxiproxy-compatible fault proxy (TCP toxics, HTTP-aware toxics) and its API.
 *
 * @example
 * ```ts
 * import { chaosProxyServer } from 'bulwark/chaos';
 * const api = await chaosProxyServer({ port: 0 });
 * console.log(api.url.startsWith('http://127.0.0.1:')); // true
 * await api.close();
 * ```
 * @module
 */

export * from '../experiment/index.js';
export {
  type ChaosProxyServer,
  type ChaosProxyServerOptions,
  chaosProxyServer,
  TOXIPROXY_API_VERSION,
} from './api.js';
export { FaultProxy, type FaultProxyOptions, faultProxy, ProxyError, type ProxyJson } from './proxy.js';
export {
  HTTP_TOXICS,
  parseToxic,
  type Stream,
  TCP_TOXICS,
  type Toxic,
  type ToxicJson,
  type ToxicType,
} from './toxic.js';
