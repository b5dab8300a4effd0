// The pool's server registry: every server writes its state (ServerInfo) to the hash `<prefix>:servers` at each
// heartbeat, stamped with Redis's own clock (no clock skew between machines). A server whose last heartbeat is
// older than 3 periods is shown as lost (alive: false); one that left (graceful stop) says so at once. A server
// restarted with the same id overwrites its entry: it rejoins.
import type { Redis } from 'ioredis';
import type { ServerInfo } from './details.ts';

/** What the registry stores per server: the public view plus the installed models of every kind (for the 422 check). */
export interface ServerRecord extends ServerInfo {
  installed: Record<string, string[]>;
  left?: boolean;
}

export class ServerRegistry {
  constructor(private readonly r: Redis, private readonly p: string, private readonly heartbeatMs: number) {}

  private async redisNow(): Promise<number> {
    const [s, us] = await this.r.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  /** Writes this server's state, stamped now. */
  async beat(rec: ServerRecord): Promise<void> {
    await this.r.hset(`${this.p}:servers`, rec.id, JSON.stringify({ ...rec, last_seen: await this.redisNow(), left: false }));
  }

  /** Marks this server as gone (graceful shutdown). */
  async leave(rec: ServerRecord): Promise<void> {
    await this.r.hset(`${this.p}:servers`, rec.id, JSON.stringify({ ...rec, busy: false, job: null, last_seen: await this.redisNow(), left: true }));
  }

  /** Every server that ever joined, alive or not, sorted by id. */
  async list(): Promise<ServerRecord[]> {
    const now = await this.redisNow();
    const all = Object.values(await this.r.hgetall(`${this.p}:servers`)).map((v) => JSON.parse(v) as ServerRecord);
    return all.map((s) => ({ ...s, alive: !s.left && now - s.last_seen < 3 * this.heartbeatMs }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
