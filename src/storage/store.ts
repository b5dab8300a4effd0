// Where output images go: one interface, two stores. LocalStore (DATA_DIR/outputs, served by this server) on one
// machine; S3Store (an S3-compatible bucket every server reads, links presigned) in a pool.

export interface StoredLinkOptions {
  temp: boolean;
  /** ms since epoch; required for temp links (so that future_links and the final output are the same URL). */
  expiresAt?: number;
}

export interface OutputStore {
  readonly kind: 'local' | 's3';
  init(): Promise<void>;
  /** Stores an image under `name` (letters, digits, _ -, then .png/.webp/.jpg); a reader never sees half of it. */
  put(name: string, data: Buffer, temp: boolean): Promise<void>;
  /** The URL a client downloads the image from (a server route, or a presigned bucket URL). */
  link(baseUrl: string, name: string, o: StoredLinkOptions): string;
  /** The bytes behind a server-route link, or undefined (unknown, bad signature or expired). */
  read(name: string, temp: boolean, query?: { expires?: string; signature?: string }): Promise<Buffer | undefined>;
  /** Deletes temporary outputs older than `ttlMs`; returns how many. */
  sweep(ttlMs: number): Promise<number>;
}
