// The pool's webhook outbox in Redis: `<prefix>:webhooks:due` (a sorted set of delivery ids by due time) and one
// hash per delivery. A claim is one Lua script that takes due ids and pushes their due time past the claim, so
// two servers never POST the same delivery; a server that dies mid-POST leaves it to be retried after the claim.
import type { Redis } from 'ioredis';
import type { ClaimedDelivery, DeliveryStatus, WebhookOutbox } from './webhooks.ts';

// KEYS: due zset. ARGV: now, limit, claim until, prefix. Returns flat [id, job_id, url, body, attempts, ...].
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local h = redis.call('HMGET', ARGV[4] .. ':webhook:' .. id, 'job_id', 'url', 'body', 'attempts')
  table.insert(out, id); table.insert(out, h[1]); table.insert(out, h[2]); table.insert(out, h[3]); table.insert(out, h[4])
end
return out`;

type Scripted = Redis & { cnClaimWebhooks(...a: (string | number)[]): Promise<string[]> };

export class RedisOutbox implements WebhookOutbox {
  private readonly r: Scripted;

  constructor(redis: Redis, private readonly p = 'cn') {
    this.r = redis as Scripted;
    this.r.defineCommand('cnClaimWebhooks', { numberOfKeys: 1, lua: CLAIM });
  }

  private due(): string {
    return `${this.p}:webhooks:due`;
  }

  async add(jobId: number, url: string, body: Record<string, unknown>, now: number): Promise<void> {
    const id = await this.r.incr(`${this.p}:webhookid`);
    await this.r.multi()
      .hset(`${this.p}:webhook:${id}`, { job_id: jobId, url, body: JSON.stringify(body), status: 'pending', attempts: 0, last_error: '' })
      .rpush(`${this.p}:webhooks:job:${jobId}`, id)
      .zadd(this.due(), now, id)
      .exec();
  }

  async claimDue(now: number, limit: number, claimMs: number): Promise<ClaimedDelivery[]> {
    const flat = await this.r.cnClaimWebhooks(this.due(), now, limit, now + claimMs, this.p);
    const out: ClaimedDelivery[] = [];
    for (let i = 0; i < flat.length; i += 5) {
      out.push({ id: Number(flat[i]), jobId: Number(flat[i + 1]), url: flat[i + 2]!, body: flat[i + 3]!, attempts: Number(flat[i + 4]) });
    }
    return out;
  }

  async markDelivered(id: number, attempts: number): Promise<void> {
    await this.r.multi().hset(`${this.p}:webhook:${id}`, { status: 'delivered', attempts, last_error: '' }).zrem(this.due(), id).exec();
  }

  async markFailed(id: number, attempts: number, error: string, nextAt: number | undefined): Promise<void> {
    const m = this.r.multi().hset(`${this.p}:webhook:${id}`, { status: nextAt === undefined ? 'dead' : 'pending', attempts, last_error: error });
    if (nextAt === undefined) m.zrem(this.due(), id);
    else m.zadd(this.due(), nextAt, id);
    await m.exec();
  }

  async status(jobId: number): Promise<DeliveryStatus[]> {
    const ids = await this.r.lrange(`${this.p}:webhooks:job:${jobId}`, 0, -1);
    const out: DeliveryStatus[] = [];
    for (const id of ids) {
      const h = await this.r.hgetall(`${this.p}:webhook:${id}`);
      out.push({ status: h.status as DeliveryStatus['status'], attempts: Number(h.attempts ?? 0), last_error: h.last_error || null });
    }
    return out;
  }
}
