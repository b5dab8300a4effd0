// The models folder as the API sees it (layout: src/engine/store.ts, <modelsDir>/<kind>/<id>): which models are
// installed, listing and deleting. A model is a folder, or a single weights file <id>.<ext>.
import { readdir, rm, stat } from 'node:fs/promises';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_KINDS, type ModelKind } from '../engine/store.ts';

export const MODEL_FILE_EXTS = ['.safetensors', '.ckpt', '.pt', '.pth', '.bin', '.onnx'];
const FOLDER_MARKER: Partial<Record<ModelKind, string>> = { base: 'model_index.json', controlnet: 'config.json', vae: 'config.json' };
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isModelKind(k: string): k is ModelKind {
  return (MODEL_KINDS as readonly string[]).includes(k);
}

export function validModelId(id: string): boolean {
  return ID.test(id) && !id.includes('..');
}

export class ModelsFolder {
  constructor(readonly root: string) {}

  dir(kind: ModelKind, id: string): string {
    if (!validModelId(id)) throw new Error(`invalid model id "${id}"`);
    return join(this.root, kind, id);
  }

  /** The installed path of a model (folder or single file), or undefined. */
  find(kind: ModelKind, id: string): string | undefined {
    if (!validModelId(id)) return undefined;
    const base = join(this.root, kind, id);
    if (existsSync(base) && statSync(base).isDirectory() && !existsSync(join(base, '.incomplete'))) {
      // The file the engine opens first: a diffusers pipeline's index, or a component's config.
      const marker = FOLDER_MARKER[kind];
      if (!marker || existsSync(join(base, marker))) return base;
    }
    for (const ext of MODEL_FILE_EXTS) if (existsSync(base + ext)) return base + ext;
    return undefined;
  }

  installed(kind: ModelKind, id: string): boolean {
    return this.find(kind, id) !== undefined;
  }

  /** The alphabetically first installed model of a kind (the default base model when none is configured). */
  firstInstalled(kind: ModelKind): string | undefined {
    const dir = join(this.root, kind);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return undefined;
    }
    for (const n of names) {
      if (n.startsWith('.') || n.endsWith('.part')) continue;
      const ext = MODEL_FILE_EXTS.find((e) => n.endsWith(e));
      const id = ext ? n.slice(0, -ext.length) : n;
      if (validModelId(id) && this.installed(kind, id)) return id;
    }
    return undefined;
  }

  /** Ids of the installed models of a kind, sorted (synchronous; no sizes). */
  installedIds(kind: ModelKind): string[] {
    let names: string[];
    try {
      names = readdirSync(join(this.root, kind)).sort();
    } catch {
      return [];
    }
    const ids = new Set<string>();
    for (const n of names) {
      if (n.startsWith('.') || n.endsWith('.part')) continue;
      const ext = MODEL_FILE_EXTS.find((e) => n.endsWith(e));
      const id = ext ? n.slice(0, -ext.length) : n;
      if (validModelId(id) && this.installed(kind, id)) ids.add(id);
    }
    return [...ids];
  }

  async list(kind: ModelKind): Promise<{ id: string; path: string; bytes: number }[]> {
    const dir = join(this.root, kind);
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: { id: string; path: string; bytes: number }[] = [];
    for (const n of names.sort()) {
      if (n.startsWith('.') || n.endsWith('.part') || n.endsWith('.download')) continue;
      const ext = MODEL_FILE_EXTS.find((e) => n.endsWith(e));
      const id = ext ? n.slice(0, -ext.length) : n;
      const path = join(dir, n);
      if (!ext && existsSync(join(path, '.incomplete'))) continue;
      out.push({ id, path, bytes: await sizeOf(path) });
    }
    return out;
  }

  async listAll(): Promise<Record<string, { id: string; bytes: number }[]>> {
    const out: Record<string, { id: string; bytes: number }[]> = {};
    for (const k of MODEL_KINDS) out[k] = (await this.list(k)).map(({ id, bytes }) => ({ id, bytes }));
    return out;
  }

  /** Removes a model (folder or file); returns false when it was not installed. */
  async delete(kind: ModelKind, id: string): Promise<boolean> {
    const p = this.find(kind, id);
    if (!p) return false;
    await rm(p, { recursive: true, force: true });
    return true;
  }
}

async function sizeOf(p: string): Promise<number> {
  const s = await stat(p).catch(() => undefined);
  if (!s) return 0;
  if (s.isFile()) return s.size;
  let total = 0;
  for (const n of await readdir(p).catch(() => [] as string[])) total += await sizeOf(join(p, n));
  return total;
}
