// The one outbound HTTP client for user-supplied URLs (input images, webhooks, model downloads): http/https
// only; every address a name resolves to is checked, and the socket connects to the checked address (so DNS
// rebinding between check and connect is impossible); each redirect hop is checked again; overall timeout and
// a byte cap.
import http from 'node:http';
import https from 'node:https';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { checkAddress, ipLiteral, type Allowlist } from './address.ts';

export class FetchError extends Error {
  constructor(message: string, readonly kind: 'blocked' | 'too_large' | 'http' | 'network' | 'timeout' | 'url') {
    super(message);
  }
}

/** Resolves a host name to addresses (injectable: tests use it to make a name resolve to 127.0.0.1). */
export type Resolver = (host: string) => Promise<string[]>;
const systemResolver: Resolver = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface SafeFetchOptions {
  allow?: Allowlist;
  timeoutMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  resolver?: Resolver;
  /** For downloads: called with the final (non-redirect) response's status; a stream it returns gets the body
   *  piped in (with backpressure) instead of buffered. The byte cap still applies. */
  sink?: (status: number, headers: http.IncomingHttpHeaders) => NodeJS.WritableStream | undefined;
  /** Bytes of the body received so far (downloads' progress). */
  onBytes?: (total: number) => void;
}

export interface SafeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  url: string;
}

/** Parses and checks a URL's form (scheme, host) before any network use. */
export function checkUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FetchError(`"${raw.slice(0, 100)}" is not a valid URL`, 'url');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FetchError(`URL scheme ${u.protocol} is not allowed (http or https only)`, 'url');
  if (u.username || u.password) throw new FetchError('URLs with credentials are not allowed', 'url');
  if (!u.hostname) throw new FetchError('the URL has no host', 'url');
  return u;
}

/** Resolves `host` and returns one checked address; refuses if ANY resolved address is not allowed. */
async function resolveChecked(host: string, allow: Allowlist, resolver: Resolver): Promise<{ address: string; family: 4 | 6 }> {
  const literal = ipLiteral(host);
  let addrs: string[];
  if (literal) addrs = [literal];
  else {
    try {
      addrs = await resolver(host);
    } catch (e) {
      throw new FetchError(`cannot resolve ${host}: ${(e as Error).message}`, 'network');
    }
  }
  if (addrs.length === 0) throw new FetchError(`cannot resolve ${host}`, 'network');
  for (const a of addrs) {
    const why = checkAddress(host, a, allow);
    if (why) throw new FetchError(why, 'blocked');
  }
  const address = addrs[0]!;
  return { address, family: address.includes(':') ? 6 : 4 };
}

export async function safeFetch(rawUrl: string, opts: SafeFetchOptions = {}): Promise<SafeResponse> {
  const allow = opts.allow ?? [];
  const maxRedirects = opts.maxRedirects ?? 5;
  const resolver = opts.resolver ?? systemResolver;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let url = checkUrl(rawUrl);
  let method = opts.method ?? 'GET';
  let body = opts.body;
  for (let hop = 0; ; hop++) {
    const target = await resolveChecked(url.hostname, allow, resolver);
    const res = await requestOnce(url, target, { ...opts, method, body }, deadline);
    if (res.status >= 300 && res.status < 400 && res.headers.location) {
      if (hop >= maxRedirects) throw new FetchError(`too many redirects (more than ${maxRedirects})`, 'http');
      url = checkUrl(new URL(res.headers.location, url).toString());
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    return res;
  }
}

function requestOnce(url: URL, target: { address: string; family: 4 | 6 }, opts: SafeFetchOptions & { method: string },
  deadline: number): Promise<SafeResponse> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.reject(new FetchError('the request timed out', 'timeout'));
  // Pin the connection to the address we checked: Node calls this instead of resolving the name again.
  const lookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
    else cb(null, target.address, target.family);
  };
  const mod = url.protocol === 'https:' ? https : http;
  const maxBytes = opts.maxBytes ?? 20 * 1024 * 1024;
  return new Promise<SafeResponse>((resolveOk, rejectErr) => {
    // Every way out clears the timer (a pending timer would keep the process alive for the full timeout).
    const resolve = (r: SafeResponse) => { clearTimeout(timer); resolveOk(r); };
    const reject = (e: Error) => { clearTimeout(timer); rejectErr(e); };
    const req = mod.request(url, {
      method: opts.method,
      headers: { 'user-agent': 'controlnet-server', ...opts.headers, ...(opts.body ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) },
      lookup,
      agent: false,
      // IP literals skip `lookup` in Node: they were checked by resolveChecked already.
    }, (res) => {
      const len = Number(res.headers['content-length'] ?? NaN);
      const redirect = (res.statusCode ?? 0) >= 300 && (res.statusCode ?? 0) < 400;
      if (Number.isFinite(len) && len > maxBytes && !redirect) {
        req.destroy();
        reject(new FetchError(`the response is larger than ${maxBytes} bytes`, 'too_large'));
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      const sink = redirect ? undefined : opts.sink?.(res.statusCode ?? 0, res.headers);
      const done = () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url: url.toString() }); };
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) {
          req.destroy();
          reject(new FetchError(`the response is larger than ${maxBytes} bytes`, 'too_large'));
          return;
        }
        opts.onBytes?.(total);
        if (!sink) chunks.push(c);
      });
      if (sink) {
        res.pipe(sink);
        sink.on('finish', done);
        sink.on('error', (e: Error) => { req.destroy(); reject(new FetchError(`cannot write: ${e.message}`, 'network')); });
      } else res.on('end', done);
      res.on('error', (e) => reject(new FetchError(e.message, 'network')));
    });
    const timer = setTimeout(() => { req.destroy(); reject(new FetchError('the request timed out', 'timeout')); }, remaining);
    req.on('error', (e) => { reject(e instanceof FetchError ? e : new FetchError(`request failed: ${e.message}`, 'network')); });
    if (opts.body) req.write(opts.body);
    req.end();
  });
}
