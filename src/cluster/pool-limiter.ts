// The pool-wide request rate per key: the same token bucket as api/rate-limit.ts, kept in Redis and updated by one
// Lua script on Redis's clock, so the limit holds across all servers together.
import type { Redis } from 'ioredis';
import type { Limiter } from '../api/rate-limit.ts';

// KEYS: bucket. ARGV: limit per minute. Returns 0 (allowed) or the seconds until the next token.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per = tonumber(ARGV[1])
local rate = per / 60000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or per
local at = tonumber(b[2]) or now
tokens = math.min(per, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.max(1, math.ceil((1 - tokens) / rate / 1000)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
return wait`;

type Scripted = Redis & { cnTakeToken(...a: (string | number)[]): Promise<number> };

export class PoolLimiter implements Limiter {
  private readonly r: Scripted;

  constructor(redis: Redis, private readonly p: string, private readonly perMinute: number) {
    this.r = redis as Scripted;
    this.r.defineCommand('cnTakeToken', { numberOfKeys: 1, lua: TAKE });
  }

  async take(keyId: number): Promise<number> {
    if (this.perMinute <= 0) return 0;
    return this.r.cnTakeToken(`${this.p}:rate:${keyId}`, this.perMinute);
  }
}
