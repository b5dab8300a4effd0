// AWS Signature Version 4 for S3 (path-style requests): the Authorization header of a request and presigned
// query URLs. Follows AWS's "Signature Version 4 signing process" and "Authenticating Requests: Using Query
// Parameters" (S3 API reference): canonical request -> string to sign -> HMAC-SHA256 with the derived key.
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as S3 wants it (every byte but A-Z a-z 0-9 - _ . ~; '/' kept in paths). */
export function uriEncode(s: string, keepSlash = false): string {
  return Array.from(Buffer.from(s, 'utf8')).map((b) => {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) return c;
    return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/** "20261130T212500Z" for a time in ms. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function signingKey(c: Credentials, day: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${c.secretAccessKey}`, day), c.region), 's3'), 'aws4_request');
}

function canonicalQuery(q: Record<string, string>): string {
  return Object.keys(q).sort().map((k) => `${uriEncode(k)}=${uriEncode(q[k]!)}`).join('&');
}

function signature(c: Credentials, date: string, canonical: string): string {
  const day = date.slice(0, 8);
  const scope = `${day}/${c.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonical)].join('\n');
  return createHmac('sha256', signingKey(c, day)).update(toSign, 'utf8').digest('hex');
}

/**
 * Headers for a signed request (host, x-amz-date, x-amz-content-sha256, authorization).
 * `path` is the already-encoded absolute path ("/bucket/key"); `body` is hashed into the signature.
 */
export function signedHeaders(c: Credentials, o: { method: string; host: string; path: string; query?: Record<string, string>;
  body?: Buffer; now: number; headers?: Record<string, string> }): Record<string, string> {
  const date = amzDate(o.now);
  const payload = sha256Hex(o.body ?? Buffer.alloc(0));
  const headers: Record<string, string> = { ...(o.headers ?? {}), host: o.host, 'x-amz-date': date, 'x-amz-content-sha256': payload };
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const canonical = [o.method, o.path, canonicalQuery(o.query ?? {}), names.map((n) => `${n}:${lower[n]}\n`).join(''), names.join(';'), payload].join('\n');
  const sig = signature(c, date, canonical);
  const day = date.slice(0, 8);
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${c.accessKeyId}/${day}/${c.region}/s3/aws4_request, SignedHeaders=${names.join(';')}, Signature=${sig}` };
}

/** A presigned GET URL, signed at `signedAt` (ms) and valid `expiresSeconds` (at most 7 days) from then. Deterministic. */
export function presignGet(c: Credentials, o: { origin: string; host: string; path: string; signedAt: number; expiresSeconds: number }): string {
  const date = amzDate(o.signedAt);
  const day = date.slice(0, 8);
  const q: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256', 'X-Amz-Credential': `${c.accessKeyId}/${day}/${c.region}/s3/aws4_request`,
    'X-Amz-Date': date, 'X-Amz-Expires': String(Math.min(604_800, Math.max(1, Math.floor(o.expiresSeconds)))), 'X-Amz-SignedHeaders': 'host',
  };
  const canonical = ['GET', o.path, canonicalQuery(q), `host:${o.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  return `${o.origin}${o.path}?${canonicalQuery(q)}&X-Amz-Signature=${signature(c, date, canonical)}`;
}
