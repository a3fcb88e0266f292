import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../testing/index.js';
import { rateLimitHeaders } from './rate-limit-headers.js';
import { rateLimiter } from './rate-limiter.js';

describe('rateLimitHeaders', () => {
  it('renders RateLimit-Policy and RateLimit, and Retry-After when rejected', () => {
    const clock = createFakeClock({ now: 0 });
    const l = rateLimiter({ limits: [{ algorithm: 'fixed-window', limit: 2, windowMs: 60_000 }], clock });
    clock.tickSync(10_500);
    expect(rateLimitHeaders(l.consume('k'), 'api')).toEqual({
      'RateLimit-Policy': '"api";q=2;w=60',
      RateLimit: '"api";r=1;t=50',
    });
    l.consume('k');
    expect(rateLimitHeaders(l.consume('k'))).toEqual({
      'RateLimit-Policy': '"default";q=2;w=60',
      RateLimit: '"default";r=0;t=50',
      'Retry-After': '50',
    });
  });

  it('omits Retry-After for a cost that never fits, and escapes the name', () => {
    const l = rateLimiter({
      limits: [{ algorithm: 'gcra', rate: 1, periodMs: 1_000 }],
      clock: createFakeClock(),
    });
    const h = rateLimitHeaders(l.consume('k', 5), 'a"b');
    expect(h['Retry-After']).toBeUndefined();
    expect(h.RateLimit).toBe('"a\\"b";r=1;t=0');
  });
});
