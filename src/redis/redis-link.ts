/**
 * Script calls to Redis bounded by a timeout, remembering whether Redis is failing: the first
 * failure (an error or no answer within `timeoutMs`) and the first answer after it are reported,
 * so a component can decide alone meanwhile and emit `fallback` / `recovered`.
 */
import type { Redis } from 'ioredis';

import { RedisTimeoutError } from './rate-limiter.js';
import { sha } from './shared-breaker-scripts.js';

/** The client calls a link makes. @internal */
export type ScriptClient = Pick<Redis, 'evalsha' | 'eval'>;

/** A bounded connection to Redis for scripts. @internal */
export class RedisLink {
  /** True from a failure until the next answer. */
  failing = false;
  /** Commands that failed or timed out. */
  errors = 0;

  constructor(
    private readonly client: ScriptClient,
    private readonly timeoutMs: number,
    /** Called when Redis starts failing (with the error) and when it answers again. */
    private readonly onChange: (failing: boolean, error: unknown) => void,
  ) {}

  /** EVALSHA (EVAL on NOSCRIPT), bounded by `timeoutMs` (or `ms`). */
  eval(
    script: string,
    keys: readonly string[],
    args: readonly string[],
    ms = this.timeoutMs,
  ): Promise<unknown> {
    const c = this.client;
    const sent = c.evalsha(sha(script), keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
        return c.eval(script, keys.length, ...keys, ...args);
      throw error;
    });
    return this.bounded(sent, ms);
  }

  /** `p`, bounded by `ms`: a failure or timeout switches to failing, an answer back. */
  bounded<T>(p: Promise<T>, ms = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const fail = (error: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.errors++;
        if (!this.failing) {
          this.failing = true;
          this.onChange(true, error);
        }
        reject(error);
      };
      const timer = setTimeout(() => fail(new RedisTimeoutError(ms)), ms);
      p.then((v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.failing) {
          this.failing = false;
          this.onChange(false, undefined);
        }
        resolve(v);
      }, fail);
    });
  }
}
