/**
 * The Lua script behind `redisRateLimiter`. One EVALSHA decides a whole batch of calls (the calls
 * of one limiter queued in the same tick, in arrival order): for each call, every limit is
 * checked, then (only if all admit it) every one is charged. The algorithms are line-for-line ports
 * of src/limits/algorithms/*.ts, so a key's decisions match the in-memory limiter's for the same
 * times. A key's state is read once per batch, kept in a Lua table while the batch is decided, and
 * written back once (with its expiry), so a batch costs one TIME and one read and one write per
 * distinct key. Numbers that are not integers are returned as `%.17g` strings (exact doubles; a
 * Lua number is returned by Redis as an integer, truncated).
 *
 * KEYS: `n` per call (one per limit), call after call. ARGV[1] = now in ms ('' = the server's
 * `TIME`), ARGV[2] = n, then three values per limit: kind (1 token bucket, 2 GCRA, 3 fixed
 * window, 4 sliding-window counter) and its two parameters; then one cost per call. Returns, per
 * call, `allowed, index of the most constraining limit, remaining, retryAfterMs, resetMs`.
 */
import { createHash } from 'node:crypto';

/** @internal */
export const RATE_LIMIT_SCRIPT = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local INF = math.huge
local floor = math.floor
local function fmt(x) return string.format('%.17g', x) end
local function out(x)
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end
  return fmt(x)
end
local n = tonumber(ARGV[2])
local kind, p1, p2 = {}, {}, {}
for i = 1, n do
  kind[i] = tonumber(ARGV[3 * i])
  p1[i] = tonumber(ARGV[3 * i + 1])
  p2[i] = tonumber(ARGV[3 * i + 2])
end
local first = 3 * n + 3
local calls = #ARGV - first + 1

local cache, order = {}, {}
local function load(key, k, a, b)
  local s = cache[key]
  if s then return s end
  if k == 1 then
    local v = redis.call('HMGET', key, 't', 'ts')
    if v[1] then s = { t = tonumber(v[1]), ts = tonumber(v[2]) } else s = { t = a, ts = now } end
  elseif k == 2 then
    local v = redis.call('GET', key)
    if v then s = { tat = tonumber(v) } else s = { tat = now } end
  elseif k == 3 then
    local v = redis.call('GET', key)
    local sep = v and string.find(v, ':', 1, true)
    if sep then
      s = { start = tonumber(string.sub(v, 1, sep - 1)), curr = tonumber(string.sub(v, sep + 1)) }
    else
      s = { start = floor(now / b) * b, curr = 0 }
    end
  else
    local v = redis.call('HMGET', key, 'start', 'curr', 'prev')
    if v[1] then
      s = { start = tonumber(v[1]), curr = tonumber(v[2]), prev = tonumber(v[3]) }
    else
      s = { start = floor(now / b) * b, curr = 0, prev = 0 }
    end
  end
  s.k, s.a, s.b = k, a, b
  cache[key] = s
  order[#order + 1] = key
  return s
end

-- Sliding-window counter helpers.
local function roll(s, w)
  if now < s.start + w then return end
  local start = floor(now / w) * w
  if start == s.start + w then s.prev = s.curr else s.prev = 0 end
  s.curr = 0
  s.start = start
end
local function estimate(s, w)
  return floor(s.prev * (1 - (now - s.start) / w)) + s.curr
end

local function check(s, cost)
  local k, a, b = s.k, s.a, s.b
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
      s.start = floor(now / b) * b
      s.curr = 0
    end
    return s.curr + cost <= a
  else
    roll(s, b)
    return estimate(s, b) + cost <= a
  end
end

local function commit(s, cost)
  local k = s.k
  if k == 1 then
    s.t = s.t - cost
  elseif k == 2 then
    local tat = s.tat
    if tat < now then tat = now end
    s.tat = tat + s.a * cost
  else
    s.curr = s.curr + cost
  end
end

local function remaining(s)
  local k, a, b = s.k, s.a, s.b
  if k == 1 then
    return floor(s.t)
  elseif k == 2 then
    local ttl = 0
    if s.tat > now then ttl = s.tat - now end
    local r = floor((b - ttl) / a)
    if r > 0 then return r end
    return 0
  elseif k == 3 then
    return math.max(0, floor(a - s.curr))
  else
    return math.max(0, floor(a - estimate(s, b)))
  end
end

local function retryAfter(s, cost)
  local k, a, b = s.k, s.a, s.b
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
      while c < w and floor(weight * (1 - c / w)) > room do c = c + 1 end
      while c > 0 and floor(weight * (1 - (c - 1) / w)) <= room do c = c - 1 end
      return c
    end
    if s.curr + cost <= a then
      return math.max(0, s.start + after(s.prev, a - cost - s.curr) - now)
    end
    return s.start + w + after(s.curr, a - cost) - now
  end
end

local function reset(s)
  local k, b = s.k, s.b
  if k == 1 then
    return (s.a - s.t) / b
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

-- Idle keys disappear once their state is back to full (plus a margin).
local function ttl(x) return math.max(1, math.ceil(x)) + 1000 end
local function save(key, s)
  local k, b = s.k, s.b
  if k == 1 then
    redis.call('HSET', key, 't', fmt(s.t), 'ts', fmt(s.ts))
    redis.call('PEXPIRE', key, ttl((s.a - s.t) / b))
  elseif k == 2 then
    redis.call('SET', key, fmt(s.tat), 'PX', ttl(s.tat - now))
  elseif k == 3 then
    redis.call('SET', key, fmt(s.start) .. ':' .. fmt(s.curr), 'PX', ttl(s.start + b - now))
  else
    redis.call('HSET', key, 'start', fmt(s.start), 'curr', fmt(s.curr), 'prev', fmt(s.prev))
    redis.call('PEXPIRE', key, ttl(s.start + 2 * b - now))
  end
end

local result = {}
local st = {}
for c = 0, calls - 1 do
  local cost = tonumber(ARGV[first + c])
  local base = c * n
  for i = 1, n do st[i] = load(KEYS[base + i], kind[i], p1[i], p2[i]) end
  -- The states are brought up to now even on a rejection (nothing spent), so the float
  -- arithmetic follows the in-memory limiter's step for step.
  local allowed = true
  for i = 1, n do
    if not check(st[i], cost) then allowed = false end
  end
  if allowed then
    for i = 1, n do commit(st[i], cost) end
  end
  local best, bestRemaining, bestRetry = 1, INF, -1
  for i = 1, n do
    if allowed then
      local r = remaining(st[i])
      if r < bestRemaining then bestRemaining = r; best = i end
    else
      local r = retryAfter(st[i], cost)
      if r > bestRetry then bestRetry = r; best = i end
    end
  end
  local rem, retry
  if allowed then rem = bestRemaining; retry = 0 else rem = remaining(st[best]); retry = bestRetry end
  local o = c * 5
  result[o + 1] = allowed and 1 or 0
  result[o + 2] = best - 1
  result[o + 3] = out(rem)
  result[o + 4] = out(retry)
  result[o + 5] = out(reset(st[best]))
end
for j = 1, #order do save(order[j], cache[order[j]]) end
return result
`;

/** SHA1 of the script, as EVALSHA wants it. @internal */
export const RATE_LIMIT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex');
