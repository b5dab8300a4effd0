// load_model / `models pull`: downloads a model into the models folder from a direct URL or a hub repository
// id (HF_ENDPOINT layout: /api/models/<repo> lists files, /<repo>/resolve/<rev>/<file> serves them). Resumable
// (a .part file continues with an HTTP Range request), checksummed (sha256 from the hub listing, the hub's
// x-linked-etag, or one given by the caller), and fetched through the SSRF-safe client.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { ModelKind } from '../engine/store.ts';
import { safeFetch, type SafeFetchOptions } from '../inputs/safe-fetch.ts';
import { MODEL_FILE_EXTS, type ModelsFolder } from './models-folder.ts';

export interface DownloadSpec {
  kind: ModelKind;
  id: string;
  /** http(s) URL of one weights file, or a hub repository id "owner/name". */
  source: string;
  sha256?: string;
  revision?: string;
  /** Hub repositories only: files (repository paths) not to fetch, e.g. another runtime's conversion. */
  skip?: RegExp;
}

export interface DownloadState {
  kind: ModelKind;
  id: string;
  source: string;
  status: 'downloading' | 'done' | 'failed';
  bytes: number;
  totalBytes?: number;
  files: number;
  error?: string;
  startedAt: number;
  finishedAt?: number;
}

export interface DownloaderOptions {
  hfEndpoint: string;
  fetch?: Omit<SafeFetchOptions, 'sink' | 'onBytes' | 'headers' | 'maxBytes'>;
  maxFileBytes?: number;
}

const REPO = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SKIP_WHEN_SAFETENSORS = /\.(bin|ckpt|pt|pth|msgpack|h5|onnx|ot)$/i;
/** Weights of other frameworks, never read by the engine (TensorFlow .h5, Flax .msgpack, rust-bert .ot): an
 *  opus-mt repository holds each beside its pytorch_model.bin, 300 MB apiece. */
const NEVER_READ = /\.(msgpack|h5|ot)$/i;

interface RemoteFile { name: string; url: string; size?: number; sha256?: string }

export function isRepoId(s: string): boolean {
  return REPO.test(s) && !s.includes('..');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class ModelDownloader {
  private readonly states = new Map<string, DownloadState>();
  private readonly running = new Map<string, Promise<DownloadState>>();

  constructor(private readonly folder: ModelsFolder, private readonly opts: DownloaderOptions) {}

  get(kind: ModelKind, id: string): DownloadState | undefined {
    return this.states.get(`${kind}/${id}`);
  }

  all(): DownloadState[] {
    return [...this.states.values()];
  }

  /** Starts (or joins) a download; the promise settles with the final state (never rejects). */
  start(spec: DownloadSpec): Promise<DownloadState> {
    const k = `${spec.kind}/${spec.id}`;
    const existing = this.running.get(k);
    if (existing) return existing;
    const st: DownloadState = { kind: spec.kind, id: spec.id, source: spec.source, status: 'downloading', bytes: 0, files: 0, startedAt: Date.now() };
    this.states.set(k, st);
    const p = this.run(spec, st).then(() => {
      st.status = 'done';
      return st;
    }, (e: unknown) => {
      st.status = 'failed';
      st.error = (e as Error).message;
      return st;
    }).finally(() => {
      st.finishedAt = Date.now();
      this.running.delete(k);
    });
    this.running.set(k, p);
    return p;
  }

  private async run(spec: DownloadSpec, st: DownloadState): Promise<void> {
    if (/^https?:\/\//i.test(spec.source)) {
      const path = new URL(spec.source).pathname;
      const ext = MODEL_FILE_EXTS.find((e) => path.toLowerCase().endsWith(e)) ?? '.safetensors';
      const dest = this.folder.dir(spec.kind, spec.id) + ext;
      await mkdir(dirname(dest), { recursive: true });
      st.files = 1;
      await this.file({ name: posix.basename(path), url: spec.source, sha256: spec.sha256 }, dest, st, 0);
      return;
    }
    if (!isRepoId(spec.source)) throw new Error(`"${spec.source}" is neither an http(s) URL nor a hub repository id (owner/name)`);
    const files = (await this.listRepo(spec.source, spec.revision ?? 'main')).filter((f) => !spec.skip?.test(f.name));
    st.files = files.length;
    st.totalBytes = files.every((f) => f.size !== undefined) ? files.reduce((s, f) => s + f.size!, 0) : undefined;
    const dir = this.folder.dir(spec.kind, spec.id);
    await mkdir(dir, { recursive: true });
    // Marks the folder as not usable until every file is in and checked.
    await writeFile(join(dir, '.incomplete'), spec.source);
    let done = 0;
    for (const f of files) {
      const dest = join(dir, ...f.name.split('/'));
      await mkdir(dirname(dest), { recursive: true });
      done += await this.file(f, dest, st, done);
    }
    await rm(join(dir, '.incomplete'), { force: true });
  }

  /**
   * Downloads one file of a hub repository to `dest` (resumable, checked against the hub's sha256 when it sends
   * one), e.g. an annotator checkpoint into models/annotator/<name>/. Returns its size in bytes.
   */
  async hubFile(repo: string, path: string, dest: string, revision = 'main'): Promise<number> {
    if (!isRepoId(repo)) throw new Error(`"${repo}" is not a hub repository id (owner/name)`);
    if (path.split('/').some((p) => p === '..' || p === '' || p.startsWith('.'))) throw new Error(`bad file name "${path}"`);
    const url = `${this.opts.hfEndpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
    const st: DownloadState = { kind: 'annotator', id: posix.basename(path), source: `${repo}/${path}`, status: 'downloading', bytes: 0, files: 1, startedAt: Date.now() };
    await mkdir(dirname(dest), { recursive: true });
    return this.file({ name: path, url }, dest, st, 0);
  }

  private async listRepo(repo: string, revision: string): Promise<RemoteFile[]> {
    const base = this.opts.hfEndpoint;
    const res = await safeFetch(`${base}/api/models/${repo}?blobs=true`, { ...this.opts.fetch, maxBytes: 8 * 1024 * 1024 });
    if (res.status === 404 || res.status === 401) throw new Error(`hub repository ${repo} not found (HTTP ${res.status})`);
    if (res.status !== 200) throw new Error(`hub listing of ${repo} failed: HTTP ${res.status}`);
    const info = JSON.parse(res.body.toString('utf8')) as { siblings?: { rfilename: string; size?: number; lfs?: { sha256?: string; size?: number } }[] };
    const sib = (info.siblings ?? []).filter((s) => typeof s.rfilename === 'string' && !s.rfilename.startsWith('.')
      && !s.rfilename.split('/').some((p) => p === '..' || p === '' || p.startsWith('.')));
    const hasSafetensors = sib.some((s) => s.rfilename.endsWith('.safetensors'));
    const wanted = sib.filter((s) => !(hasSafetensors && SKIP_WHEN_SAFETENSORS.test(s.rfilename)) && !NEVER_READ.test(s.rfilename));
    if (wanted.length === 0) throw new Error(`hub repository ${repo} lists no files`);
    return wanted.map((s) => ({
      name: s.rfilename,
      url: `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${s.rfilename.split('/').map(encodeURIComponent).join('/')}`,
      size: s.lfs?.size ?? s.size,
      sha256: s.lfs?.sha256,
    }));
  }

  /** Downloads one file to dest via dest.part, resuming a previous partial download; returns its size. */
  private async file(f: RemoteFile, dest: string, st: DownloadState, before: number): Promise<number> {
    const part = `${dest}.part`;
    const have = existsSync(part) ? (await stat(part)).size : 0;
    st.bytes = before + have;
    let offset = 0;
    let res;
    try {
      res = await safeFetch(f.url, {
        timeoutMs: 6 * 3600_000, ...this.opts.fetch, maxBytes: this.opts.maxFileBytes ?? 64 * 1024 ** 3,
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        // 206: the server continues where the partial file ends; 200: it sends everything, so start over.
        sink: (status) => {
          if (status === 206) { offset = have; return createWriteStream(part, { flags: 'a' }); }
          if (status === 200) return createWriteStream(part, { flags: 'w' });
          return undefined;
        },
        onBytes: (n) => { st.bytes = before + offset + n; },
      });
    } catch (e) {
      throw new Error(`${f.name}: ${(e as Error).message}`);
    }
    // 416: the partial file already holds every byte.
    if (res.status !== 200 && res.status !== 206 && !(res.status === 416 && have > 0)) {
      throw new Error(`${f.name}: HTTP ${res.status}`);
    }
    const size = (await stat(part)).size;
    const expected = (f.sha256 ?? etagSha256(res.headers))?.toLowerCase();
    if (f.size !== undefined && size !== f.size) {
      throw new Error(`${f.name}: got ${size} bytes, expected ${f.size} (the partial file is kept; retry resumes)`);
    }
    if (expected) {
      const got = await sha256File(part);
      if (got !== expected) {
        await rm(part, { force: true });
        throw new Error(`${f.name}: sha256 mismatch (expected ${expected}, got ${got}); the file was discarded`);
      }
    }
    await rename(part, dest);
    st.bytes = before + size;
    return size;
  }
}

/** The hub sends an LFS file's sha256 as x-linked-etag (or ETag) on resolve responses. */
function etagSha256(h: Record<string, string | string[] | undefined>): string | undefined {
  for (const v of [h['x-linked-etag'], h.etag]) {
    const s = (Array.isArray(v) ? v[0] : v)?.replace(/^W\//, '').replace(/"/g, '');
    if (s && /^[0-9a-f]{64}$/i.test(s)) return s;
  }
  return undefined;
}
