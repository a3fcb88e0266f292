/**
 * The Lua script behind a `redisRateLimiter`, generated for its limits. One EVALSHA decides a
 * whole batch of calls (the calls of one limiter queued in the same tick, in arrival order): for
 * each call, every limit is checked, then (only if all admit it) every one is charged. The
 * algorithms are line-for-line ports of src/limits/algorithms/*.ts, so a key's decisions match the
 * in-memory limiter's for the same times.
 *
 * The script is specialised for the limiter's limits: their kinds and parameters are literals in
 * straight-line code (no closures or parameter parsing per run), which keeps a decision's server
 * time close to that of the simplest hand-written script. A key's state is one string (`GET`, then
 * `SET … PX` with the time it takes to return to full, plus a margin, so idle keys disappear), read
 * once per batch and written once per batch if it changed: a batch costs one TIME, and one GET and
 * at most one SET per distinct key. Numbers that are not integers are returned as `%.17g` strings (exact doubles; a Lua
 * number is returned by Redis as an integer, truncated).
 *
 * KEYS: one per limit per call, call after call. ARGV[1] = now in ms ('' = the server's `TIME`),
 * then one cost per call. Returns, per call: allowed (1/0), index of the most constraining limit,
 * remaining, retryAfterMs, resetMs.
 */
import { createHash } from 'node:crypto';

/** A limit as the script sees it: kind 1 token bucket, 2 GCRA, 3 fixed window, 4 sliding-window counter. */
export interface ScriptLimit {
  readonly kind: 1 | 2 | 3 | 4;
  /** Token bucket: capacity; GCRA: emission interval T (ms); windows: the limit. */
  readonly a: number;
  /** Token bucket: tokens per ms; GCRA: tolerance tau (ms); windows: the window (ms). */
  readonly b: number;
}

/** A generated script and its SHA1. @internal */
export interface RateLimitScript {
  readonly source: string;
  readonly sha: string;
  /** The reply is the lone-fixed-window script's: three values per call, numeric times in µs. */
  readonly microseconds: boolean;
}

/** A lone fixed window the expiry script can run: whole ms, exact in µs. */
function expiryWindow(l: ScriptLimit): boolean {
  return l.kind === 3 && Number.isInteger(l.b) && l.b * 1000 < 2 ** 50;
}

/** A number as an exact Lua literal. */
function lit(x: number): string {
  if (Number.isInteger(x)) return String(x);
  return x.toPrecision(17);
}

/** Lua code (statements) loading the state `s` of limit `i` from its key. */
function load(l: ScriptLimit): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    // A value that does not parse (another format, a wrong type) counts as no state.
    case 1:
      return `if v then local a, b = match(v, '^([^:]+):([^:]+)$'); a, b = tonumber(a), tonumber(b); if a and b then s = { a, b } end end
    if not s then s = { ${A}, now } end`;
    case 2:
      return `if v then local a = tonumber(v); if a then s = { a } end end
    if not s then s = { now } end`;
    case 3:
      return `if v then local a, b = match(v, '^([^:]+):([^:]+)$'); a, b = tonumber(a), tonumber(b); if a and b then s = { a, b } end end
    if not s then s = { floor(now / ${B}) * ${B}, 0 } end`;
    case 4:
      return `if v then local a, b, c = match(v, '^([^:]+):([^:]+):([^:]+)$'); a, b, c = tonumber(a), tonumber(b), tonumber(c); if a and b and c then s = { a, b, c } end end
    if not s then s = { floor(now / ${B}) * ${B}, 0, 0 } end`;
  }
}

/** Brings state `s` up to now and sets `ok` to whether it admits `cost`. */
function check(l: ScriptLimit, s: string, ok: string): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    case 1:
      return `if now > ${s}[2] then local t = ${s}[1] + (now - ${s}[2]) * ${B}; if t < ${A} then ${s}[1] = t else ${s}[1] = ${A} end; ${s}[2] = now; ${s}[9] = true end
    local ${ok} = ${s}[1] >= cost`;
    case 2:
      return `local ${ok}
    do local w = ${s}[1] - now; if w < 0 then w = 0 end; ${ok} = w + ${A} * cost <= ${B} end`;
    case 3:
      return `if now >= ${s}[1] + ${B} then ${s}[1] = floor(now / ${B}) * ${B}; ${s}[2] = 0; ${s}[9] = true end
    local ${ok} = ${s}[2] + cost <= ${A}`;
    case 4:
      return `if now >= ${s}[1] + ${B} then local st = floor(now / ${B}) * ${B}; if st == ${s}[1] + ${B} then ${s}[3] = ${s}[2] else ${s}[3] = 0 end; ${s}[2] = 0; ${s}[1] = st; ${s}[9] = true end
    local ${ok} = floor(${s}[3] * (1 - (now - ${s}[1]) / ${B})) + ${s}[2] + cost <= ${A}`;
  }
}

function commit(l: ScriptLimit, s: string): string {
  switch (l.kind) {
    case 1:
      return `${s}[1] = ${s}[1] - cost; ${s}[9] = true`;
    case 2:
      return `do local tat = ${s}[1]; if tat < now then tat = now end; ${s}[1] = tat + ${lit(l.a)} * cost; ${s}[9] = true end`;
    default:
      return `${s}[2] = ${s}[2] + cost; ${s}[9] = true`;
  }
}

/** An expression: the units left in state `s`. */
function remaining(l: ScriptLimit, s: string): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    case 1:
      return `floor(${s}[1])`;
    case 2:
      return `max(0, floor((${B} - max(0, ${s}[1] - now)) / ${A}))`;
    case 3:
      return `max(0, floor(${A} - ${s}[2]))`;
    case 4:
      return `max(0, floor(${A} - (floor(${s}[3] * (1 - (now - ${s}[1]) / ${B})) + ${s}[2])))`;
  }
}

/** Statements setting `r` to the wait until state `s` admits `cost` (INF if never). */
function retryAfter(l: ScriptLimit, s: string): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    case 1:
      return `if cost > ${A} then r = INF elseif ${s}[1] >= cost then r = 0 else local raw = (cost - ${s}[1]) / ${B}; r = raw + max(1e-6, raw * 1e-9) end`;
    case 2:
      return `if ${A} * cost > ${B} then r = INF else r = max(0, max(0, ${s}[1] - now) + ${A} * cost - ${B}) end`;
    case 3:
      return `if cost > ${A} then r = INF elseif ${s}[2] + cost <= ${A} then r = 0 else r = ${s}[1] + ${B} - now end`;
    case 4:
      return `if cost > ${A} then r = INF elseif floor(${s}[3] * (1 - (now - ${s}[1]) / ${B})) + ${s}[2] + cost <= ${A} then r = 0
      elseif ${s}[2] + cost <= ${A} then r = max(0, ${s}[1] + after(${s}[3], ${A} - cost - ${s}[2], ${B}) - now)
      else r = ${s}[1] + ${B} + after(${s}[2], ${A} - cost, ${B}) - now end`;
  }
}

/** An expression: the time until state `s` is full again. */
function reset(l: ScriptLimit, s: string): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    case 1:
      return `(${A} - ${s}[1]) / ${B}`;
    case 2:
      return `max(0, ${s}[1] - now)`;
    case 3:
      return `(${s}[2] == 0 and 0 or ${s}[1] + ${B} - now)`;
    case 4:
      return `(${s}[2] > 0 and ${s}[1] + 2 * ${B} - now or (${s}[3] > 0 and ${s}[1] + ${B} - now or 0))`;
  }
}

/** Statements writing state `s` to `key` with its expiry. */
function save(l: ScriptLimit, key: string, s: string): string {
  const A = lit(l.a);
  const B = lit(l.b);
  switch (l.kind) {
    case 1:
      return `redis.call('SET', ${key}, fmt(${s}[1]) .. ':' .. fmt(${s}[2]), 'PX', ttl((${A} - ${s}[1]) / ${B}))`;
    case 2:
      return `redis.call('SET', ${key}, fmt(${s}[1]), 'PX', ttl(${s}[1] - now))`;
    case 3:
      return `redis.call('SET', ${key}, fmt(${s}[1]) .. ':' .. fmt(${s}[2]), 'PX', ttl(${s}[1] + ${B} - now))`;
    case 4:
      return `redis.call('SET', ${key}, fmt(${s}[1]) .. ':' .. fmt(${s}[2]) .. ':' .. fmt(${s}[3]), 'PX', ttl(${s}[1] + 2 * ${B} - now))`;
  }
}

/**
 * The leanest script, for a lone fixed window of whole milliseconds decided in server time: the
 * count is a plain counter charged with `INCRBY` (taken back if the call does not fit, unless the
 * window was full already: then the counter just runs past the limit, which changes no decision,
 * so a rejection in a full window costs one command too), and the first
 * charge of a window sets `PEXPIREAT` to the window's last millisecond, so the key vanishes exactly
 * when the window ends (Redis expires a key once its time is past) and the next charge starts the
 * next window. A decision costs `TIME` and one command, like the simplest hand-written limiter, but
 * windows stay aligned to the epoch as in memory. It answers three values per call — 1 allowed, 0
 * rejected or 2 rejected for ever (cost over the limit); remaining; resetMs (also the wait of a
 * rejected call) — with times as integer MICROseconds, which spares a string format per call.
 */
function fixedWindowExpiryScript(l: ScriptLimit): string {
  const A = lit(l.a);
  const W = lit(l.b * 1000);
  return [
    `-- bulwark rate limit: fixed window ${A}/${lit(l.b)} (expiry)`,
    'local floor = math.floor',
    "local t = redis.call('TIME')",
    'local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])',
    `local endUs = nowUs - nowUs % ${W} + ${W}`,
    'local resetUs = endUs - nowUs',
    'local lastMs = endUs / 1000 - 1',
    'local result = {}',
    'for c = 1, #KEYS do',
    '  local key = KEYS[c]',
    '  local cost = tonumber(ARGV[c + 1])',
    '  local used',
    '  if cost == floor(cost) then',
    "    used = redis.pcall('INCRBY', key, cost)",
    "    if type(used) ~= 'number' then used = nil end",
    '  end',
    "  if used == nil then used = tonumber(redis.call('INCRBYFLOAT', key, cost)) end",
    '  local fresh = used == cost',
    // A full window's counter may run past the limit (a rejected call there is not taken back:
    // it changes no later decision); the count that decides is the counter capped at the limit.
    '  local before = used - cost',
    `  local full = before >= ${A}`,
    `  if full then before = ${A} end`,
    '  local o = (c - 1) * 3',
    '  local eff',
    `  if before + cost <= ${A} then`,
    '    result[o + 1] = 1',
    '    eff = before + cost',
    '  else',
    '    if not full then',
    '      if cost == floor(cost) and used == floor(used) then',
    "        redis.call('DECRBY', key, cost)",
    '      else',
    "        redis.call('INCRBYFLOAT', key, -cost)",
    '      end',
    '    end',
    `    if cost > ${A} then result[o + 1] = 2 else result[o + 1] = 0 end`,
    '    eff = before',
    '  end',
    "  if fresh then redis.call('PEXPIREAT', key, lastMs) end",
    `  local rem = floor(${A} - eff)`,
    '  if rem < 0 then rem = 0 end',
    '  result[o + 2] = rem',
    '  if eff == 0 then result[o + 3] = 0 else result[o + 3] = resetUs end',
    'end',
    'return result',
    '',
  ].join('\n');
}

/**
 * Generates the script for these limits (in this order). `serverTime`: the limiter always uses
 * Redis's TIME (no time passed in), which lets a lone whole-ms fixed window use the expiry script.
 * @internal
 */
export function rateLimitScript(limits: readonly ScriptLimit[], serverTime = false): RateLimitScript {
  if (limits.length === 1 && limits[0]!.kind === 3 && serverTime && expiryWindow(limits[0]!)) {
    const source = fixedWindowExpiryScript(limits[0]!);
    return { source, sha: createHash('sha1').update(source).digest('hex'), microseconds: true };
  }
  const n = limits.length;
  const idx = limits.map((_, i) => i + 1);
  const lines: string[] = [
    `-- bulwark rate limit: ${limits.map((l) => `${l.kind}/${lit(l.a)}/${lit(l.b)}`).join(' ')}`,
    'local now',
    "if ARGV[1] == '' then",
    "  local t = redis.call('TIME')",
    '  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000',
    'else',
    '  now = tonumber(ARGV[1])',
    'end',
    'local INF, floor, max, match, format = math.huge, math.floor, math.max, string.match, string.format',
    "local function fmt(x) if x == floor(x) and x > -1e14 and x < 1e14 then return tostring(x) end return format('%.17g', x) end",
    'local function out(x) if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end return fmt(x) end',
    '-- Idle keys disappear once their state is back to full (plus a margin).',
    '-- (Capped below 1e14 ms: Redis turns a larger Lua number into "1e+14", which PX refuses.)',
    'local function ttl(x) return math.min(max(1, math.ceil(x)) + 1000, 90000000000000) end',
  ];
  if (limits.some((l) => l.kind === 4)) {
    lines.push(
      'local function after(weight, room, w)',
      '  if weight < room + 1 then return 0 end',
      '  local c = max(0, math.ceil(w * (1 - (room + 1) / weight)))',
      '  while c < w and floor(weight * (1 - c / w)) > room do c = c + 1 end',
      '  while c > 0 and floor(weight * (1 - (c - 1) / w)) <= room do c = c - 1 end',
      '  return c',
      'end',
    );
  }
  lines.push(
    // cache: key -> state; order: keys in first-seen order; which: the limit of each
    'local cache, order, which, result = {}, {}, {}, {}',
    `for c = 0, #ARGV - 2 do`,
    '  local cost = tonumber(ARGV[c + 2])',
    `  local base = c * ${n}`,
  );
  for (const i of idx) {
    const l = limits[i - 1]!;
    lines.push(
      `  local k${i} = KEYS[base + ${i}]`,
      `  local s${i} = cache[k${i}]`,
      `  if not s${i} then`,
      `    local v = redis.pcall('GET', k${i})`,
      "    if type(v) ~= 'string' then v = nil end",
      '    local s',
      `    ${load(l)}`,
      `    s${i} = s; cache[k${i}] = s; order[#order + 1] = k${i}; which[#order] = ${i}`,
      '  end',
      `  ${check(l, `s${i}`, `ok${i}`)}`,
    );
  }
  // The states are brought up to now even on a rejection (nothing spent), so the float
  // arithmetic follows the in-memory limiter's step for step.
  lines.push(`  local allowed = ${idx.map((i) => `ok${i}`).join(' and ')}`, '  local best, rem, retry, rs');
  lines.push('  if allowed then');
  for (const i of idx) lines.push(`    ${commit(limits[i - 1]!, `s${i}`)}`);
  lines.push('    retry = 0');
  for (const i of idx) {
    const l = limits[i - 1]!;
    lines.push(
      i === 1
        ? `    best = 1; rem = ${remaining(l, 's1')}`
        : `    do local r = ${remaining(l, `s${i}`)}; if r < rem then rem = r; best = ${i} end end`,
    );
  }
  lines.push('  else', '    local r', '    retry = -1');
  for (const i of idx) {
    lines.push(
      `    ${retryAfter(limits[i - 1]!, `s${i}`)}`,
      `    if r > retry then retry = r; best = ${i} end`,
    );
  }
  for (const i of idx) lines.push(`    if best == ${i} then rem = ${remaining(limits[i - 1]!, `s${i}`)} end`);
  lines.push('  end');
  for (const i of idx) lines.push(`  if best == ${i} then rs = ${reset(limits[i - 1]!, `s${i}`)} end`);
  lines.push(
    '  local o = c * 5',
    '  result[o + 1] = allowed and 1 or 0',
    '  result[o + 2] = best - 1',
    '  result[o + 3] = out(rem)',
    '  result[o + 4] = out(retry)',
    '  result[o + 5] = out(rs)',
    'end',
    '-- Only changed states are written (a rejection by a fixed window changes nothing).',
    'for j = 1, #order do',
    '  local key, s, w = order[j], cache[order[j]], which[j]',
    '  if s[9] then',
  );
  for (const i of idx)
    lines.push(`    ${i === 1 ? 'if' : 'elseif'} w == ${i} then ${save(limits[i - 1]!, 'key', 's')}`);
  lines.push('    end', '  end', 'end', 'return result', '');
  const source = lines.join('\n');
  return { source, sha: createHash('sha1').update(source).digest('hex'), microseconds: false };
}
