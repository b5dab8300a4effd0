// The pool's API keys: every server's keys are published to Redis (`<prefix>:keys`: key hash → pool-wide id and
// role), so a key created on the first server works on every server ("pass the first server's API key"), and a
// job's owner is the same key id on every server. Secrets never leave the machine: only their SHA-256 is shared.
import type { Redis } from 'ioredis';
import { hashKey, type ApiKey, type KeyStore, type Keys } from '../api/keys.ts';

// KEYS: keys hash, id counter. ARGV: key hash, admin (0/1). A key already published keeps its id; admin only grows.
const PUBLISH = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local k = cjson.decode(v)
  if ARGV[2] == '1' and not k.admin then k.admin = true; redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(k)) end
  return k.id
end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ id = id, admin = (ARGV[2] == '1') }))
return id`;

type Scripted = Redis & { cnPublishKey(...a: (string | number)[]): Promise<number> };

export class PoolKeys implements Keys {
  private readonly r: Scripted;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(redis: Redis, private readonly p: string, private readonly local: KeyStore) {
    this.r = redis as Scripted;
    this.r.defineCommand('cnPublishKey', { numberOfKeys: 2, lua: PUBLISH });
  }

  private publish(hash: string, admin: boolean): void {
    this.pending = this.pending.then(() => this.r.cnPublishKey(`${this.p}:keys`, `${this.p}:keyid`, hash, admin ? 1 : 0));
  }

  /** Publishes every live key of this machine and withdraws its revoked ones (at join). */
  async publishLocal(): Promise<void> {
    for (const k of this.local.hashes()) this.publish(k.hash, k.admin);
    const revoked = this.local.revokedHashes();
    if (revoked.length) this.pending = this.pending.then(() => this.r.hdel(`${this.p}:keys`, ...revoked));
    await this.flush();
  }

  /** Withdraws a key from the pool: it stops working on every server at once. */
  async withdraw(hash: string): Promise<void> {
    await this.flush();
    await this.r.hdel(`${this.p}:keys`, hash);
  }

  /** Resolves once every key created here is usable on every server. */
  async flush(): Promise<void> {
    await this.pending;
  }

  create(opts: { admin?: boolean; label?: string } = {}): { key: string; id: number } {
    const k = this.local.create(opts);
    this.publish(hashKey(k.key), Boolean(opts.admin));
    return k;
  }

  add(key: string, opts: { admin?: boolean; label?: string } = {}): number {
    const id = this.local.add(key, opts);
    this.publish(hashKey(key), Boolean(opts.admin));
    return id;
  }

  async verify(key: string | undefined): Promise<ApiKey | undefined> {
    if (!key || key.length > 512) return undefined;
    await this.flush();
    const v = await this.r.hget(`${this.p}:keys`, hashKey(key));
    if (!v) return undefined;
    const k = JSON.parse(v) as { id: number; admin: boolean };
    return { id: k.id, admin: k.admin };
  }

  count(): number {
    return this.local.count();
  }
}
