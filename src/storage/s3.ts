// Output images in an S3-compatible bucket (the pool's store: every server writes and reads it). Temporary
// outputs (temp: "yes") go under temp/ and their links are presigned GET URLs valid 24 h (TEMP_LINK_TTL_MS, at most
// 7 days), signed at the job's acceptance so that future_links and the final output are the same URL on every
// server. Other outputs are served through any server's /outputs/<name> route, which reads the bucket. Expiring
// temp/ objects is the bucket's lifecycle rule (sweep deletes nothing here). Path-style requests, SigV4 (sigv4.ts).
import type { S3Settings } from '../config.ts';
import { OUTPUT_NAME } from './local.ts';
import { presignGet, signedHeaders, uriEncode, type Credentials } from './sigv4.ts';
import type { OutputStore, StoredLinkOptions } from './store.ts';

export class S3Error extends Error {
  /** `code`: S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`, ...), or `HTTP <status>` when the answer has none. */
  constructor(readonly status: number, message: string, readonly code = `HTTP ${status}`) {
    super(message);
  }
}

export class S3Store implements OutputStore {
  readonly kind = 's3' as const;
  private readonly creds: Credentials;
  private readonly origin: string;
  private readonly host: string;
  private readonly now: () => number;
  private readonly ttlMs: number;

  /** `ttlMs`: how long temp links are valid (TEMP_LINK_TTL_MS; S3 allows at most 7 days). */
  constructor(private readonly s: S3Settings, o: { now?: () => number; ttlMs?: number } = {}) {
    this.ttlMs = o.ttlMs ?? 24 * 3600 * 1000;
    this.creds = { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, region: s.region };
    const u = new URL(s.endpoint);
    this.origin = u.origin;
    this.host = u.host;
    this.now = o.now ?? Date.now;
  }

  private path(key?: string): string {
    return `/${uriEncode(this.s.bucket)}${key === undefined ? '' : `/${uriEncode(key, true)}`}`;
  }

  private key(name: string, temp: boolean): string {
    return temp ? `temp/${name}` : name;
  }

  /** One signed request; throws S3Error (status, S3's error code) unless 2xx. */
  async request(method: string, key: string | undefined, body?: Buffer, headers: Record<string, string> = {}): Promise<Response> {
    const path = this.path(key);
    const h = signedHeaders(this.creds, { method, host: this.host, path, body, now: Date.now(), headers });
    delete h.host; // fetch sets it (the same value)
    const res = await fetch(this.origin + path, { method, headers: h, body: body ? new Uint8Array(body) : undefined });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.status}`;
      throw new S3Error(res.status, `S3 ${method} ${key ?? this.s.bucket}: ${code}`, code);
    }
    return res;
  }

  /** Checks the bucket and the credentials (a wrong secret fails here, at start), creating the bucket if missing. */
  async init(): Promise<void> {
    try {
      await this.request('HEAD', undefined);
    } catch (e) {
      if (!(e instanceof S3Error) || e.status !== 404) throw e;
      try {
        await this.request('PUT', undefined);
      } catch (err) {
        // Servers of one pool starting together: another one created it in between (S3 outside us-east-1 and
        // SeaweedFS answer 409 BucketAlreadyOwnedByYou; us-east-1 answers 200).
        if (!(err instanceof S3Error) || err.code !== 'BucketAlreadyOwnedByYou') throw err;
      }
    }
  }

  async put(name: string, data: Buffer, temp: boolean): Promise<void> {
    if (!OUTPUT_NAME.test(name)) throw new Error(`invalid output name "${name}"`);
    // One PUT: S3 makes an object visible only once it is complete.
    await this.request('PUT', this.key(name, temp), data, { 'content-type': 'image/png' });
  }

  link(baseUrl: string, name: string, o: StoredLinkOptions): string {
    if (!o.temp) return `${baseUrl}/outputs/${name}`;
    const ttlMs = this.ttlMs;
    const expiresAt = o.expiresAt ?? this.now() + ttlMs;
    // Signed at acceptance (expiresAt - TTL), valid until expiresAt.
    const signedAt = Math.floor((expiresAt - ttlMs) / 1000) * 1000;
    return presignGet(this.creds, { origin: this.origin, host: this.host, path: this.path(this.key(name, true)), signedAt,
      expiresSeconds: (expiresAt - signedAt) / 1000 });
  }

  async read(name: string, temp: boolean): Promise<Buffer | undefined> {
    if (temp || !OUTPUT_NAME.test(name)) return undefined; // temp links go to the bucket directly
    try {
      return Buffer.from(await (await this.request('GET', this.key(name, false))).arrayBuffer());
    } catch (e) {
      if (e instanceof S3Error && (e.status === 404 || e.status === 403)) return undefined;
      throw e;
    }
  }

  async sweep(): Promise<number> {
    return 0;
  }
}
