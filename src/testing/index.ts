/**
 * Test helpers for code that uses Bulwark: a fake clock that drives backoff delays,
 * timeouts and breaker windows without real waiting, and deterministic random sources.
 * @module
 */

export { type Deferred, deferred } from './deferred.js';
export { createFakeClock, type FakeClock, type FakeClockOptions, flushMicrotasks } from './fake-clock.js';
export { fixedRandom, seededRandom } from './random.js';
