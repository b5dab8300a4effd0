// Who is calling: the key comes in the JSON body (`key`, the hosted API's way) or as Authorization: Bearer.
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';
import type { ApiKey, Keys } from './keys.ts';

export function keyOf(req: FastifyRequest): string | undefined {
  const body = req.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object' && typeof body.key === 'string' && body.key) return body.key;
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

/** The caller's key record; 401 when the key is missing, unknown, or (with `admin`) not an admin key. */
export async function authenticate(keys: Keys, req: FastifyRequest, opts: { admin?: boolean } = {}): Promise<ApiKey> {
  const key = keyOf(req);
  if (!key) throw new ApiError(401, 'an API key is required (body "key" or Authorization: Bearer)');
  const k = await keys.verify(key);
  if (!k) throw new ApiError(401, 'invalid API key');
  if (opts.admin && !k.admin) throw new ApiError(401, 'this endpoint needs an admin key');
  return k;
}
