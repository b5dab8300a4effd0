// A content hash of a model's weight files, for the compiled-graph cache key. Two fine-tunes of one
// architecture have identical safetensors headers, so a header fingerprint alone would let one reuse the
// other's compiled graph. Hashing GBs takes seconds, so results are kept on disk keyed by
// (path, size, mtime, inode) and recomputed only when a file changes.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { WeightSource } from '../weights/types.ts';

const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt)$/i;

async function weightFiles(path: string): Promise<string[]> {
  if (!statSync(path).isDirectory()) return [path];
  const out: string[] = [];
  for (const e of await readdir(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory() || e.isSymbolicLink() && statSync(p).isDirectory()) out.push(...(await weightFiles(p)));
    else if (WEIGHT_FILE.test(e.name)) out.push(p);
  }
  return out.sort();
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class ContentIds {
  private memo: Record<string, string>;
  private readonly file: string;
  /** MB of weight files hashed so far (memo hits excluded): the engine's hash phase counts its work in it. */
  hashedMB = 0;

  constructor(cacheDir: string) {
    this.file = join(cacheDir, 'content-ids.json');
    this.memo = existsSync(this.file) ? JSON.parse(readFileSync(this.file, 'utf8')) : {};
  }

  /** sha256 over the sha256 of every weight file under `path` (a folder or one file). */
  async of(path: string): Promise<string> {
    const parts: string[] = [];
    let changed = false;
    for (const f of await weightFiles(path)) {
      const st = statSync(f);
      const stamp = `${f}|${st.size}|${st.mtimeMs}|${st.ino}`;
      let h = this.memo[stamp];
      if (!h) {
        h = await sha256File(f);
        this.hashedMB += st.size / 2 ** 20;
        this.memo[stamp] = h;
        changed = true;
      }
      parts.push(h);
    }
    if (changed) await this.save();
    return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(this.memo));
    await rename(tmp, this.file);
  }
}

/** The same weights, fingerprinted by content as well as structure. */
export function withContentId(src: WeightSource, contentId: string): WeightSource {
  return {
    keys: () => src.keys(),
    info: (name) => src.info(name),
    readF32: (name) => src.readF32(name),
    readRaw: src.readRaw ? (name) => src.readRaw!(name) : undefined,
    fingerprint: () => `${src.fingerprint()}#${contentId}`,
  };
}
