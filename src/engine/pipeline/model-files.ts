// Resolves model ids to files in the models folder (DATA_DIR/models/<kind>/<id>[.ext]) and opens them with
// weights/open.ts, which handles every on-disk layout (diffusers folders, single files, .pth). Opened models are
// kept per path and modification time, so a request pays only for what changed on disk.
import { existsSync, statSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { EngineError, modelInvalid, modelMissing } from '../errors.ts';
import { modelPath, modelsDir, type ModelKind } from '../store.ts';
import { openBaseModel, openControlNet, openVae, type LoadedComponent, type SdModel } from '../weights/open.ts';
import { SD15_CONTROLNET_CONFIG, type ControlNetConfig, type VaeConfig } from '../weights/configs.ts';
import type { ControlNetType } from './types.ts';
import { ContentIds, withContentId } from './content-id.ts';

export type Json = Record<string, any>;

const WEIGHT_EXTS = ['.safetensors', '.ckpt', '.pth', '.pt', '.bin'];

/** The path of model `id` of `kind`: a folder DATA_DIR/models/<kind>/<id>, or a file <id><ext>. */
export function locate(dataDir: string, kind: ModelKind, id: string, exts = WEIGHT_EXTS): string | undefined {
  const base = modelPath(kind, id, dataDir);
  if (existsSync(base)) return base;
  return exts.map((e) => base + e).find((p) => existsSync(p));
}

function require(dataDir: string, kind: ModelKind, id: string, what: string): string {
  const path = locate(dataDir, kind, id);
  if (!path) throw modelMissing(what, `${kind}/${id} (a folder, or a ${WEIGHT_EXTS.join(' / ')} file)`);
  return path;
}

export class ModelFiles {
  private readonly opened = new Map<string, { stamp: number; value: Promise<unknown> }>();

  private readonly ids: ContentIds;

  constructor(private readonly dataDir: string, cacheDir: string) {
    this.ids = new ContentIds(cacheDir);
  }

  /**
   * Opens once per path and modification time. A file that cannot be opened (wrong layout, truncated, not a
   * model of this kind) is the user's: it becomes a 422 naming the file relative to the models folder.
   */
  private cached<T>(path: string, what: string, open: () => Promise<T>): Promise<T> {
    const stamp = statSync(path).mtimeMs;
    const hit = this.opened.get(path);
    if (hit && hit.stamp === stamp) return hit.value as Promise<T>;
    const value = open().catch((e: unknown) => {
      throw this.unusable(what, path, e);
    });
    this.opened.set(path, { stamp, value });
    value.catch(() => this.opened.delete(path));
    return value;
  }

  /** The 422 for a model file that failed to open: names it relative to the models folder (EngineErrors pass). */
  unusable(what: string, path: string, e: unknown): EngineError {
    if (e instanceof EngineError) return e;
    const root = modelsDir(this.dataDir);
    const rel = relative(root, path).split(sep).join('/');
    const why = ((e as Error)?.message ?? String(e)).split(path).join(rel).split(root + sep).join('');
    return modelInvalid(what, rel, why.startsWith(`${rel}: `) ? why.slice(rel.length + 2) : why);
  }

  base(id: string): Promise<SdModel> {
    const path = require(this.dataDir, 'base', id, `model_id ${id}`);
    return this.cached(path, `model_id ${id}`, async () => {
      const [m, id] = await Promise.all([openBaseModel(path), this.ids.of(path)]);
      return { ...m, unet: withContentId(m.unet, id), textEncoder: withContentId(m.textEncoder, id), vae: withContentId(m.vae, id) };
    });
  }

  /**
   * A ControlNet by id (the default id of a control type is the type's name). A single file carries no config:
   * SD 1.5's is assumed, with global pooling for the shuffle type (control_v11e_sd15_shuffle pools globally).
   */
  controlnet(id: string, type?: ControlNetType): Promise<LoadedComponent<ControlNetConfig>> {
    const path = require(this.dataDir, 'controlnet', id, `controlnet ${id}`);
    const config = type === 'shuffle' ? { ...SD15_CONTROLNET_CONFIG, global_pool_conditions: true } : SD15_CONTROLNET_CONFIG;
    return this.cached(path, `controlnet ${id}`, async () => {
      const [c, id] = await Promise.all([openControlNet(path, config), this.ids.of(path)]);
      return { ...c, weights: withContentId(c.weights, id) };
    });
  }

  vae(id: string): Promise<LoadedComponent<VaeConfig>> {
    const path = require(this.dataDir, 'vae', id, `vae ${id}`);
    return this.cached(path, `vae ${id}`, async () => {
      const [v, id] = await Promise.all([openVae(path), this.ids.of(path)]);
      return { ...v, weights: withContentId(v.weights, id) };
    });
  }

  lora(id: string): string {
    return require(this.dataDir, 'lora', id, `lora_model ${id}`);
  }
}
