/**
 * The Lua scripts of the shared circuit breaker. Keys of one breaker share a hash tag (`{name}`),
 * so they live in one Redis Cluster slot:
 *
 * - `prefix{name}`: the break, `"<end in server ms>:<openCount>"`, expiring after the break;
 * - `:probes`: the half-open probe leases (sorted set: token → lease end in server ms);
 * - `:ok`: successful probes of the current half-open period;
 * - `:counts`: fleet-wide counts (aggregate mode), a ring of buckets in a hash;
 * - `:mode`: `forced-open` or `disabled`, set by an operator until `reset()`;
 * - `:iso`: the isolation tokens held (a set; isolated while not empty).
 *
 * Messages on `:events` are `what:a:b:instanceId`: `open:<break ms>:<openCount>`, `closed`,
 * `mode:<mode>`, `isolate:<holders>`, `release`, `reset`.
 */
import { createHash } from 'node:crypto';

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Sets the break and publishes it (ARGV[1] break ms, ARGV[6] openCount). @internal */
const SET_OPEN = `local b = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d:%s', now + b, ARGV[6]), 'PX', b + tonumber(ARGV[4]))
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[3], 'open:' .. ARGV[1] .. ':' .. ARGV[6] .. ':' .. ARGV[5])`;

/**
 * KEYS: state, probes, ok. ARGV: breakMs, force ('1'/'0'), channel, extra ttl, id, openCount.
 * Unless forced, an open break already there is kept. Returns {published 1/0, break ms left, openCount}.
 * @internal
 */
export const OPEN_SCRIPT = `${NOW}
if ARGV[2] == '0' then
  local v = redis.call('GET', KEYS[1])
  if v then
    local u, c = string.match(v, '^(%d+):(%d+)')
    if u and tonumber(u) > now then return { 0, tonumber(u) - now, tonumber(c) } end
  end
end
${SET_OPEN}
return { 1, tonumber(ARGV[1]), tonumber(ARGV[6]) }
`;

/**
 * KEYS: counts, state, probes, ok. ARGV: successes, failures, bucketMs, buckets, minSamples,
 * failureRatio, breakMs, channel, extra ttl, id. Adds the counts to the current bucket; if no
 * break is set and the window trips, opens the breaker (as OPEN_SCRIPT) and clears the counts.
 * Returns {1 opened now | 2 already open | 0, break ms left, openCount, calls, failures}.
 * @internal
 */
export const COUNT_SCRIPT = `${NOW}
local bucketMs, nb = tonumber(ARGV[3]), tonumber(ARGV[4])
local start = math.floor(now / bucketMs) * bucketMs
local slot = tostring((start / bucketMs) % nb)
local cur = redis.call('HGET', KEYS[1], slot)
local s, f = 0, 0
if cur then
  local cs, ss, ff = string.match(cur, '^(%d+):(%d+):(%d+)$')
  if tonumber(cs) == start then s, f = tonumber(ss), tonumber(ff) end
end
s = s + tonumber(ARGV[1])
f = f + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], slot, start .. ':' .. s .. ':' .. f)
redis.call('PEXPIRE', KEYS[1], bucketMs * nb * 2)
local calls, fails = 0, 0
local all = redis.call('HVALS', KEYS[1])
for i = 1, #all do
  local cs, ss, ff = string.match(all[i], '^(%d+):(%d+):(%d+)$')
  if cs and tonumber(cs) > start - bucketMs * nb then
    calls = calls + tonumber(ss) + tonumber(ff)
    fails = fails + tonumber(ff)
  end
end
local v = redis.call('GET', KEYS[2])
if v then
  -- Already open (this instance may have missed the message): tell it.
  local u, c = string.match(v, '^(%d+):(%d+)')
  if u then return { 2, tonumber(u) - now, tonumber(c), calls, fails } end
  return { 0, 0, 0, calls, fails }
end
if calls < tonumber(ARGV[5]) or fails < calls * tonumber(ARGV[6]) then return { 0, 0, 0, calls, fails } end
local b = tonumber(ARGV[7])
redis.call('SET', KEYS[2], string.format('%d:%s', now + b, '1'), 'PX', b + tonumber(ARGV[9]))
redis.call('DEL', KEYS[3], KEYS[4], KEYS[1])
redis.call('PUBLISH', ARGV[8], 'open:' .. ARGV[7] .. ':1:' .. ARGV[10])
return { 1, b, 1, calls, fails }
`;

/**
 * KEYS: state, mode, iso. Returns {has break 1/0, break ms left (<= 0: half-open), openCount,
 * mode or '', isolation holders}.
 * @internal
 */
export const READ_SCRIPT = `${NOW}
local mode = redis.call('GET', KEYS[2]) or ''
local iso = redis.call('SCARD', KEYS[3])
local v = redis.call('GET', KEYS[1])
local u, c
if v then u, c = string.match(v, '^(%d+):(%d+)') end
if not u then return { 0, 0, 0, mode, iso } end
return { 1, tonumber(u) - now, tonumber(c), mode, iso }
`;

/**
 * KEYS: state, probes. ARGV: token, leaseMs, probes. Takes one of `probes` fleet-wide probe
 * leases. Returns -1 when taken, -2 when the breaker is closed (no break key), else the ms until
 * the first lease ends.
 * @internal
 */
export const LEASE_SCRIPT = `${NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local lease = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], lease * 2)
  return -1
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
`;

/**
 * KEYS: state, probes, ok, counts. ARGV: token, successThreshold, channel, id. A probe succeeded:
 * frees its lease and counts it; at the threshold, closes the breaker everywhere. Returns 1 when
 * it closed now, 2 when it was closed already, else 0.
 * @internal
 */
export const PROBE_OK_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
redis.call('ZREM', KEYS[2], ARGV[1])
local n = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], math.max(redis.call('PTTL', KEYS[1]), 1000))
if n < tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[3], 'closed:0:0:' .. ARGV[4])
return 1
`;

/**
 * KEYS: state, probes, ok, counts (and, with ARGV[3] = 'reset', mode and iso). ARGV: channel, id,
 * 'closed' or 'reset'. Closes the breaker everywhere (a reset also ends forcing, disabling and
 * isolation).
 * @internal
 */
export const CLOSE_SCRIPT = `
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('PUBLISH', ARGV[1], ARGV[3] .. ':0:0:' .. ARGV[2])
return 1
`;

/** KEYS: probes. ARGV: token. Frees a probe lease (a probe that counted neither way). @internal */
export const RELEASE_SCRIPT = `
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

/** KEYS: mode. ARGV: mode, channel, id. Forces the breaker open, or disables it, fleet-wide. @internal */
export const MODE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'mode:' .. ARGV[1] .. ':0:' .. ARGV[3])
return 1
`;

/**
 * KEYS: iso. ARGV: token, channel, id, '1' (isolate) or '0' (release). Returns the holders left;
 * publishes `isolate` on each isolation and `release` when the last one is released.
 * @internal
 */
export const ISOLATE_SCRIPT = `
if ARGV[4] == '1' then redis.call('SADD', KEYS[1], ARGV[1]) else redis.call('SREM', KEYS[1], ARGV[1]) end
local n = redis.call('SCARD', KEYS[1])
if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[2], 'isolate:' .. n .. ':0:' .. ARGV[3])
elseif n == 0 then redis.call('PUBLISH', ARGV[2], 'release:0:0:' .. ARGV[3]) end
return n
`;

const SHA = new Map<string, string>();

/** SHA1 of a script, as EVALSHA wants it (computed once per script). @internal */
export function sha(script: string): string {
  let s = SHA.get(script);
  if (s === undefined) {
    s = createHash('sha1').update(script).digest('hex');
    SHA.set(script, s);
  }
  return s;
}
