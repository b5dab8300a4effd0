// Output images in a local folder (DATA_DIR/outputs), served by the API server. Temporary outputs live apart
// and are reachable only through a link signed with an HMAC of the name and its expiry; once expired the link
// answers 404 and a sweep deletes the file.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { OutputStore, StoredLinkOptions } from './store.ts';

export type { StoredLinkOptions } from './store.ts';

export const OUTPUT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.(png|webp|jpg)$/;
const NAME = OUTPUT_NAME;

export class LocalStore implements OutputStore {
  readonly kind = 'local' as const;
  readonly dir: string;
  readonly tempDir: string;

  constructor(root: string, private readonly secret: string, private readonly now: () => number = Date.now) {
    this.dir = join(root, 'outputs');
    this.tempDir = join(this.dir, 'temp');
  }

  async init(): Promise<void> {
    await mkdir(this.tempDir, { recursive: true });
  }

  /** Writes atomically (temp file + rename): a crash never leaves half an image behind a link. */
  async put(name: string, data: Buffer, temp: boolean): Promise<void> {
    if (!NAME.test(name)) throw new Error(`invalid output name "${name}"`);
    const path = join(temp ? this.tempDir : this.dir, name);
    await writeFile(`${path}.part`, data);
    await rename(`${path}.part`, path);
  }

  private sign(name: string, expiresAt: number): string {
    return createHmac('sha256', this.secret).update(`${name}:${expiresAt}`).digest('base64url');
  }

  link(baseUrl: string, name: string, o: StoredLinkOptions): string {
    if (!o.temp) return `${baseUrl}/outputs/${name}`;
    const exp = o.expiresAt ?? this.now();
    return `${baseUrl}/outputs/temp/${name}?expires=${exp}&signature=${this.sign(name, exp)}`;
  }

  /** The bytes behind a link, or undefined (unknown name, bad signature or expired: all answer 404). */
  async read(name: string, temp: boolean, query: { expires?: string; signature?: string } = {}): Promise<Buffer | undefined> {
    if (!NAME.test(name)) return undefined;
    if (temp) {
      const exp = Number(query.expires);
      if (!Number.isSafeInteger(exp) || !query.signature || exp <= this.now()) return undefined;
      const want = Buffer.from(this.sign(name, exp));
      const got = Buffer.from(query.signature);
      if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    }
    try {
      return await readFile(join(temp ? this.tempDir : this.dir, name));
    } catch {
      return undefined;
    }
  }

  /** Deletes temporary files older than `ttlMs` (their links have expired). */
  async sweep(ttlMs: number): Promise<number> {
    let n = 0;
    for (const f of await readdir(this.tempDir).catch(() => [] as string[])) {
      const p = join(this.tempDir, f);
      const s = await stat(p).catch(() => undefined);
      if (s && s.mtimeMs + ttlMs < this.now()) {
        await rm(p, { force: true });
        n++;
      }
    }
    return n;
  }
}
