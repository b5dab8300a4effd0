// Per-key request rate: a token bucket refilled continuously (limit per minute, bursts up to the limit).
/** Per-key request rate limit: this machine's (RateLimiter) or the pool's (cluster/pool-limiter.ts). */
export interface Limiter {
  /** Takes one token; resolves 0 when allowed, else the seconds until the next token. */
  take(keyId: number): Promise<number>;
}

export class RateLimiter implements Limiter {
  private readonly buckets = new Map<number, { tokens: number; at: number }>();

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {}

  /** Takes one token; returns 0 when allowed, else the seconds until the next token. */
  async take(keyId: number): Promise<number> {
    return this.takeSync(keyId);
  }

  takeSync(keyId: number): number {
    if (this.perMinute <= 0) return 0;
    const t = this.now();
    const rate = this.perMinute / 60_000;
    const b = this.buckets.get(keyId) ?? { tokens: this.perMinute, at: t };
    b.tokens = Math.min(this.perMinute, b.tokens + (t - b.at) * rate);
    b.at = t;
    this.buckets.set(keyId, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
  }
}
