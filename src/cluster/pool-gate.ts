// The pool's admission in one Redis round trip (one Lua script): the key's record in the shared key set (what
// PoolKeys.verify reads), a token from its pool-wide rate bucket (pool-limiter.ts) and the count of its
// unfinished jobs (what RedisQueue.pendingForKey counts). Before this, the three were three round trips.
import type { Redis } from 'ioredis';
import { hashKey } from '../api/keys.ts';
import type { Admission, Gate } from '../api/admission.ts';
import { TAKE_TOKEN_LUA } from './pool-limiter.ts';

// KEYS: key set. ARGV: key hash, prefix, limit per minute (0: none).
// Returns {0} for an unknown key, else {id, admin 0/1, seconds to wait (0: token taken), unfinished jobs}.
const ADMIT = `${TAKE_TOKEN_LUA}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return { 0 } end
local k = cjson.decode(v)
local per = tonumber(ARGV[3])
local wait = 0
if per > 0 then wait = take_token(ARGV[2] .. ':rate:' .. k.id, per) end
return { k.id, k.admin and 1 or 0, wait, redis.call('SCARD', ARGV[2] .. ':pending:' .. k.id) }`;

type Scripted = Redis & { cnAdmit(...a: (string | number)[]): Promise<number[]> };

export class PoolGate implements Gate {
  private readonly r: Scripted;

  /** `ready`: resolves once the keys created on this server are published (PoolKeys.flush). */
  constructor(redis: Redis, private readonly p: string, private readonly perMinute: number, private readonly ready: () => Promise<void>) {
    this.r = redis as Scripted;
    this.r.defineCommand('cnAdmit', { numberOfKeys: 1, lua: ADMIT });
  }

  async admit(secret: string): Promise<Admission | undefined> {
    await this.ready();
    const [id, admin, wait, pending] = await this.r.cnAdmit(`${this.p}:keys`, hashKey(secret), this.p, Math.max(0, this.perMinute));
    if (!id) return undefined;
    return { key: { id, admin: admin === 1 }, retryAfter: wait!, pending: pending! };
  }
}
