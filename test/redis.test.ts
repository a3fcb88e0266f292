/**
 * Every test that talks to the real Redis, in ONE file so that they run one after the other:
 * some count commands with the server-wide INFO commandstats, and the multi-process tests must
 * not compete with each other for the server. (Vitest runs files in parallel, and the suites of
 * one file in sequence.) Each suite fails under CI=true when Redis is unreachable.
 */

import './redis-ratelimit.suite.js';
import './redis-cache-store.suite.js';
import './redis-semaphore.suite.js';
import './redis-shared-breaker.suite.js';
import './redis-shared-breaker-controls.suite.js';
