// The pool-wide request rate per key: the same token bucket as api/rate-limit.ts, kept in Redis (`<prefix>:rate:<key
// id>`) and updated in Lua on Redis's clock, so the limit holds across all servers together. Taken by the admission
// script (pool-gate.ts), with the key lookup and the key's unfinished count.

/**
 * A Lua function `take_token(bucket, per)`: takes one token from the bucket hash (limit `per` per minute, bursts
 * up to `per`); returns 0 (taken) or the seconds until the next token. Shared with the admission script (pool-gate.ts).
 */
export const TAKE_TOKEN_LUA = `
local function take_token(bucket, per)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local rate = per / 60000
  local b = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(b[1]) or per
  local at = tonumber(b[2]) or now
  tokens = math.min(per, tokens + (now - at) * rate)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = math.max(1, math.ceil((1 - tokens) / rate / 1000)) end
  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', bucket, 120000)
  return wait
end`;
