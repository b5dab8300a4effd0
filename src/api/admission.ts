// Admission of a keyed request that may queue work (generate, hint): who is calling, whether its key may send
// another request now (the per-minute rate limit) and how many of its requests are unfinished (the per-key cap).
// One machine answers from its own stores; the pool answers all three in one Redis round trip (cluster/pool-gate.ts).
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';
import { attachKey, keyOf } from './auth.ts';
import type { ApiKey, Keys } from './keys.ts';
import type { Limiter } from './rate-limit.ts';

export interface Admission {
  key: ApiKey;
  /** 0 when a rate token was taken; else the seconds until the key's next token (nothing was taken). */
  retryAfter: number;
  /** The key's unfinished requests before this one. */
  pending: number;
}

/** Admits requests: undefined for a key that is unknown or revoked. */
export interface Gate {
  admit(secret: string): Promise<Admission | undefined>;
}

/** One machine's gate: the key store, the rate limiter and the queue's count of the key's unfinished jobs. */
export class LocalGate implements Gate {
  constructor(private readonly keys: Keys, private readonly limiter: Limiter, private readonly pendingForKey: (keyId: number) => Promise<number>) {}

  async admit(secret: string): Promise<Admission | undefined> {
    const key = await this.keys.verify(secret);
    if (!key) return undefined;
    const retryAfter = await this.limiter.take(key.id);
    return { key, retryAfter, pending: await this.pendingForKey(key.id) };
  }
}

/** What the route counts a rejection as (metrics). */
export interface AdmissionMetrics {
  rejected: { inc(labels: { reason: string }): void };
}

/**
 * The route hook of generate and hint, before the body is validated (the hosted API's order): 401 for a missing or
 * unknown key, then 429 with `retry_after` when the key used its requests per minute. Sets `req.apiKey` and
 * `req.admission`, and copies a header key into the body (see auth.ts keyHook).
 */
export function admissionHook(gate: Gate, o: { perMinute: number; metrics: AdmissionMetrics }) {
  return async (req: FastifyRequest): Promise<void> => {
    const secret = keyOf(req);
    if (!secret) throw new ApiError(401, 'an API key is required (body "key", Authorization: Bearer, or a "key" header)');
    const a = secret.length > 512 ? undefined : await gate.admit(secret);
    if (!a) throw new ApiError(401, 'invalid API key');
    attachKey(req, a.key);
    req.admission = a;
    if (a.retryAfter > 0) {
      o.metrics.rejected.inc({ reason: 'rate' });
      throw new ApiError(429, `rate limit exceeded: ${o.perMinute} requests per minute`, { retry_after: a.retryAfter });
    }
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by admissionHook. */
    admission?: Admission;
  }
}
