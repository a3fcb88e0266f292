/**
 * `bulwark/server`: the control plane — an admin API over the registry with roles, an audit
 * trail, a live event stream, an OpenAPI document and the dashboard.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createControlPlane } from 'bulwark/server';
 * const cp = createControlPlane({ registry: createRegistry(), tokens: [{ role: 'admin', token: 'change-me-to-a-long-secret' }] });
 * cp.close();
 * ```
 * @module
 */
export {
  type AuthLimitOptions,
  allows,
  digestToken,
  type Principal,
  type Role,
  TokenAuth,
  type TokenSpec,
  tokensFromEnv,
} from './auth.js';
export { type ControlPlane, type ControlPlaneOptions, createControlPlane } from './control-plane.js';
export {
  type AuditRecord,
  type AuditSink,
  MemoryAudit,
  type MemoryAuditEntry,
  memoryAudit,
} from './memory-audit.js';
export { expressControlPlane, fastifyControlPlane, type ListenOptions, listenControlPlane } from './mount.js';
export { openApiDocument } from './openapi.js';
export { HttpProblem, type ProblemBody } from './problem.js';
export { EventStream, type EventStreamOptions, eventJson } from './stream.js';
