// The pool-wide request rate per key: the same token bucket as api/rate-limit.ts, kept in Redis and updated by one
// Lua script on Redis's clock, so the limit holds across all servers together.
import type { Redis } from 'ioredis';
import type { Limiter } from '../api/rate-limit.ts';

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

/** The bucket of a key id. */
export const rateBucket = (prefix: string, keyId: number | string) => `${prefix}:rate:${keyId}`;

// KEYS: bucket. ARGV: limit per minute. Returns 0 (allowed) or the seconds until the next token.
const TAKE = `${TAKE_TOKEN_LUA}
return take_token(KEYS[1], tonumber(ARGV[1]))`;

type Scripted = Redis & { cnTakeToken(...a: (string | number)[]): Promise<number> };

export class PoolLimiter implements Limiter {
  private readonly r: Scripted;

  constructor(redis: Redis, private readonly p: string, private readonly perMinute: number) {
    this.r = redis as Scripted;
    this.r.defineCommand('cnTakeToken', { numberOfKeys: 1, lua: TAKE });
  }

  async take(keyId: number): Promise<number> {
    if (this.perMinute <= 0) return 0;
    return this.r.cnTakeToken(rateBucket(this.p, keyId), this.perMinute);
  }
}
