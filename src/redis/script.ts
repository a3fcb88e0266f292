/**
 * The Lua script behind `redisRateLimiter`: every limit of a call is checked, then (only if all
 * admit it) every one is charged, in one atomic script. The algorithms are line-for-line ports of
 * src/limits/algorithms/*.ts, so a key's decisions match the in-memory limiter's for the same
 * times. Numbers are stored and returned as `%.17g` strings (exact doubles; a Lua number returned
 * as such would be truncated to an integer by Redis).
 *
 * KEYS: one per limit. ARGV[1] = cost, ARGV[2] = now in ms ('' = the server's `TIME`), then four
 * values per limit: kind (1 token bucket, 2 GCRA, 3 fixed window, 4 sliding-window counter) and
 * its parameters. Returns `{allowed, index of the most constraining limit, remaining,
 * retryAfterMs, resetMs}`.
 */
import { createHash } from 'node:crypto';

/** @internal */
export const RATE_LIMIT_SCRIPT = `
local cost = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[2])
end
local INF = math.huge
local function fmt(x) return string.format('%.17g', x) end
local n = #KEYS
local kind, p1, p2, st = {}, {}, {}, {}

for i = 1, n do
  local base = 2 + (i - 1) * 4
  local k = tonumber(ARGV[base + 1])
  local a = tonumber(ARGV[base + 2])
  local b = tonumber(ARGV[base + 3])
  kind[i], p1[i], p2[i] = k, a, b
  local s
  if k == 1 then
    local v = redis.call('HMGET', KEYS[i], 't', 'ts')
    if v[1] then s = { t = tonumber(v[1]), ts = tonumber(v[2]) } else s = { t = a, ts = now } end
  elseif k == 2 then
    local v = redis.call('GET', KEYS[i])
    if v then s = { tat = tonumber(v) } else s = { tat = now } end
  else
    local v = redis.call('HMGET', KEYS[i], 'start', 'curr', 'prev')
    if v[1] then
      s = { start = tonumber(v[1]), curr = tonumber(v[2]), prev = tonumber(v[3]) }
    else
      s = { start = math.floor(now / b) * b, curr = 0, prev = 0 }
    end
  end
  st[i] = s
end

-- Sliding-window counter helpers.
local function roll(s, w)
  if now < s.start + w then return end
  local start = math.floor(now / w) * w
  if start == s.start + w then s.prev = s.curr else s.prev = 0 end
  s.curr = 0
  s.start = start
end
local function estimate(s, w)
  return math.floor(s.prev * (1 - (now - s.start) / w)) + s.curr
end

local function check(i)
  local k, a, b, s = kind[i], p1[i], p2[i], st[i]
  if k == 1 then
    -- a = capacity, b = tokens per ms
    if now > s.ts then
      local t = s.t + (now - s.ts) * b
      if t < a then s.t = t else s.t = a end
      s.ts = now
    end
    return s.t >= cost
  elseif k == 2 then
    -- a = interval T, b = tolerance tau
    local tat = s.tat
    if tat < now then tat = now end
    return now >= tat + a * cost - b
  elseif k == 3 then
    -- a = limit, b = window
    if now >= s.start + b then
      s.start = math.floor(now / b) * b
      s.curr = 0
    end
    return s.curr + cost <= a
  else
    roll(s, b)
    return estimate(s, b) + cost <= a
  end
end

local function commit(i)
  local k, a, s = kind[i], p1[i], st[i]
  if k == 1 then
    s.t = s.t - cost
  elseif k == 2 then
    local tat = s.tat
    if tat < now then tat = now end
    s.tat = tat + a * cost
  else
    s.curr = s.curr + cost
  end
end

local function remaining(i)
  local k, a, b, s = kind[i], p1[i], p2[i], st[i]
  if k == 1 then
    return math.floor(s.t)
  elseif k == 2 then
    local ttl = 0
    if s.tat > now then ttl = s.tat - now end
    local r = math.floor((b - ttl) / a)
    if r > 0 then return r end
    return 0
  elseif k == 3 then
    return math.max(0, math.floor(a - s.curr))
  else
    return math.max(0, math.floor(a - estimate(s, b)))
  end
end

local function retryAfter(i)
  local k, a, b, s = kind[i], p1[i], p2[i], st[i]
  if k == 1 then
    if cost > a then return INF end
    if s.t >= cost then return 0 end
    local raw = (cost - s.t) / b
    return raw + math.max(1e-6, raw * 1e-9)
  elseif k == 2 then
    local inc = a * cost
    if inc > b then return INF end
    local tat = s.tat
    if tat < now then tat = now end
    local d = tat + inc - b - now
    if d > 0 then return d end
    return 0
  elseif k == 3 then
    if cost > a then return INF end
    if s.curr + cost <= a then return 0 end
    return s.start + b - now
  else
    if cost > a then return INF end
    if estimate(s, b) + cost <= a then return 0 end
    local w = b
    local function after(weight, room)
      if weight < room + 1 then return 0 end
      local c = math.max(0, math.ceil(w * (1 - (room + 1) / weight)))
      while c < w and math.floor(weight * (1 - c / w)) > room do c = c + 1 end
      while c > 0 and math.floor(weight * (1 - (c - 1) / w)) <= room do c = c - 1 end
      return c
    end
    if s.curr + cost <= a then
      return math.max(0, s.start + after(s.prev, a - cost - s.curr) - now)
    end
    return s.start + w + after(s.curr, a - cost) - now
  end
end

local function reset(i)
  local k, b, s = kind[i], p2[i], st[i]
  if k == 1 then
    return (p1[i] - s.t) / b
  elseif k == 2 then
    if s.tat > now then return s.tat - now end
    return 0
  elseif k == 3 then
    if s.curr == 0 then return 0 end
    return s.start + b - now
  else
    if s.curr > 0 then return s.start + 2 * b - now end
    if s.prev > 0 then return s.start + b - now end
    return 0
  end
end

local function save(i)
  local k, b, s = kind[i], p2[i], st[i]
  local ttl
  if k == 1 then
    ttl = (p1[i] - s.t) / b
    redis.call('HSET', KEYS[i], 't', fmt(s.t), 'ts', fmt(s.ts))
  elseif k == 2 then
    ttl = s.tat - now
    redis.call('SET', KEYS[i], fmt(s.tat))
  elseif k == 3 then
    ttl = s.start + b - now
    redis.call('HSET', KEYS[i], 'start', fmt(s.start), 'curr', fmt(s.curr), 'prev', '0')
  else
    ttl = s.start + 2 * b - now
    redis.call('HSET', KEYS[i], 'start', fmt(s.start), 'curr', fmt(s.curr), 'prev', fmt(s.prev))
  end
  -- Idle keys disappear once their state is back to full (plus a margin).
  redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(ttl)) + 1000)
end

local allowed = true
for i = 1, n do
  if not check(i) then allowed = false end
end
if allowed then
  for i = 1, n do commit(i) end
end
-- The states are written back even on a rejection (brought up to now, nothing spent), so the
-- float arithmetic follows the in-memory limiter's step for step.
for i = 1, n do save(i) end

local best, bestRemaining, bestRetry = 1, INF, -1
for i = 1, n do
  if allowed then
    local r = remaining(i)
    if r < bestRemaining then bestRemaining = r; best = i end
  else
    local r = retryAfter(i)
    if r > bestRetry then bestRetry = r; best = i end
  end
end
local rem, retry
if allowed then rem = bestRemaining; retry = 0 else rem = remaining(best); retry = bestRetry end
return { allowed and 1 or 0, best - 1, fmt(rem), fmt(retry), fmt(reset(best)) }
`;

/** SHA1 of the script, as EVALSHA wants it. @internal */
export const RATE_LIMIT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex');
