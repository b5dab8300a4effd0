// Who is calling: the key comes in the JSON body (`key`, the hosted API's way), as Authorization: Bearer (the JS
// SDK), or in a header named `key` (the official CLI sends it there as well as in the body).
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';
import type { ApiKey, Keys } from './keys.ts';

/** The key a request carries: body `key`, else `Authorization: Bearer <key>`, else a `key` header. */
export function keyOf(req: FastifyRequest): string | undefined {
  const body = req.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object' && typeof body.key === 'string' && body.key) return body.key;
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  if (m?.[1]) return m[1];
  const k = req.headers.key;
  return typeof k === 'string' && k.trim() ? k.trim() : undefined;
}

/** The caller's key record; 401 when the key is missing, unknown or revoked, or (with `admin`) not an admin key. */
export async function authenticate(keys: Keys, req: FastifyRequest, opts: { admin?: boolean } = {}): Promise<ApiKey> {
  const key = keyOf(req);
  if (!key) throw new ApiError(401, 'an API key is required (body "key", Authorization: Bearer, or a "key" header)');
  const k = await keys.verify(key);
  if (!k) throw new ApiError(401, 'invalid API key');
  if (opts.admin && !k.admin) throw new ApiError(401, 'this endpoint needs an admin key');
  return k;
}

/**
 * The route hook every keyed endpoint runs before its body is validated: authenticates (401 before any 400) and
 * copies a header key into the body, so the body schemas can state `key` as required whichever way it came.
 */
export function keyHook(keys: Keys, opts: { admin?: boolean } = {}) {
  return async (req: FastifyRequest): Promise<void> => {
    attachKey(req, await authenticate(keys, req, opts));
  };
}

/** Records the authenticated caller on the request and copies a header key into the body (keyHook, admissionHook). */
export function attachKey(req: FastifyRequest, k: ApiKey): void {
  req.apiKey = k;
  const body = req.body;
  if (body === undefined || body === null) req.body = { key: keyOf(req) };
  else if (typeof body === 'object' && !Array.isArray(body) && (body as Record<string, unknown>).key !== keyOf(req)) {
    req.body = { ...(body as Record<string, unknown>), key: keyOf(req) };
  }
}

/**
 * The OpenAPI security requirement of keyed routes: a bearer token, or a `key` header, or neither (`{}`) because
 * the key may travel in the JSON body, which OpenAPI cannot express as a security scheme.
 */
export const KEY_SECURITY: { [scheme: string]: string[] }[] = [{ bearer: [] }, { keyHeader: [] }, {}];

/** The matching components.securitySchemes. */
export const SECURITY_SCHEMES = {
  bearer: { type: 'http' as const, scheme: 'bearer', description: 'the API key as a bearer token' },
  keyHeader: { type: 'apiKey' as const, in: 'header', name: 'key', description: 'the API key in a header named `key` (as the official CLI sends it)' },
};

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (set by keyHook). */
    apiKey?: ApiKey;
  }
}
