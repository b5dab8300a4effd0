// Resolves model ids to files in the models folder (DATA_DIR/models/<kind>/<id>[.ext]) and opens them with
// weights/open.ts, which handles every on-disk layout (diffusers folders, single files, .pth). Opened models are
// kept per path and modification time, so a request pays only for what changed on disk.
import { existsSync, statSync } from 'node:fs';
import { badModelFile, EngineError, modelMissing } from '../errors.ts';
import { modelPath, scrubPaths, userPath, type ModelKind } from '../store.ts';
import { openBaseModel, openControlNet, openVae, type LoadedComponent, type SdModel } from '../weights/open.ts';
import { SD15_CONTROLNET_CONFIG, type ControlNetConfig, type VaeConfig } from '../weights/configs.ts';
import type { ControlNetType } from './types.ts';
import { ContentIds, withContentId } from './content-id.ts';

export type Json = Record<string, any>;

const WEIGHT_EXTS = ['.safetensors', '.ckpt', '.pth', '.pt', '.bin'];

/** The path of model `id` of `kind`: a folder <modelsDir>/<kind>/<id>, or a file <id><ext>. */
export function locate(modelsDir: string, kind: ModelKind, id: string, exts = WEIGHT_EXTS): string | undefined {
  const base = modelPath(kind, id, modelsDir);
  if (existsSync(base)) return base;
  return exts.map((e) => base + e).find((p) => existsSync(p));
}

function require(modelsDir: string, kind: ModelKind, id: string, what: string): string {
  const path = locate(modelsDir, kind, id);
  if (!path) throw modelMissing(what, `${kind}/${id} (a folder, or a ${WEIGHT_EXTS.join(' / ')} file)`);
  return path;
}

/** Errors of the operating system (a file vanished, no permission) are not the file's content: they stay as they are. */
const isSystemError = (e: unknown): boolean => typeof (e as { code?: unknown })?.code === 'string' && /^E[A-Z]+$/.test((e as { code: string }).code);

/**
 * Runs `work` on a user's model file and turns what its content causes (unsupported format or variant, a refused
 * pickle, missing keys, wrong shapes) into EngineError('bad_model_file') naming the file relative to the models
 * folder (HTTP 422). EngineErrors pass through; system errors become internal errors without server paths.
 */
export async function asUserFile<T>(modelsDir: string, field: string, path: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof EngineError) throw e;
    const reason = scrubPaths((e as Error)?.message ?? String(e), modelsDir);
    if (isSystemError(e)) throw new EngineError('internal', `reading ${userPath(path, modelsDir)}: ${reason}`);
    throw badModelFile(field, userPath(path, modelsDir), reason);
  }
}

export class ModelFiles {
  private readonly opened = new Map<string, { stamp: number; value: Promise<unknown> }>();

  private readonly ids: ContentIds;

  constructor(readonly modelsDir: string, cacheDir: string) {
    this.ids = new ContentIds(cacheDir);
  }

  /** MB of weight files hashed so far (a file is hashed when first seen, or after it changed on disk). */
  get hashedMB(): number {
    return this.ids.hashedMB;
  }

  /** Opens once per path and modification time; a failure names the file (asUserFile) and is not kept. */
  private cached<T>(path: string, field: string, open: () => Promise<T>): Promise<T> {
    const stamp = statSync(path).mtimeMs;
    const hit = this.opened.get(path);
    if (hit && hit.stamp === stamp) return hit.value as Promise<T>;
    const value = asUserFile(this.modelsDir, field, path, open);
    this.opened.set(path, { stamp, value });
    value.catch(() => this.opened.delete(path));
    return value;
  }

  base(id: string): Promise<SdModel> {
    const path = require(this.modelsDir, 'base', id, `model_id ${id}`);
    return this.cached(path, 'model_id', async () => {
      const [m, id] = await Promise.all([openBaseModel(path), this.ids.of(path)]);
      return { ...m, unet: withContentId(m.unet, id), textEncoder: withContentId(m.textEncoder, id), vae: withContentId(m.vae, id) };
    });
  }

  /**
   * A ControlNet by id (the default id of a control type is the type's name). A single file carries no config:
   * SD 1.5's is assumed, with global pooling for the shuffle type (control_v11e_sd15_shuffle pools globally).
   */
  controlnet(id: string, type?: ControlNetType): Promise<LoadedComponent<ControlNetConfig>> {
    const path = require(this.modelsDir, 'controlnet', id, `controlnet ${id}`);
    const config = type === 'shuffle' ? { ...SD15_CONTROLNET_CONFIG, global_pool_conditions: true } : SD15_CONTROLNET_CONFIG;
    return this.cached(path, 'controlnet_model', async () => {
      const [c, id] = await Promise.all([openControlNet(path, config), this.ids.of(path)]);
      return { ...c, weights: withContentId(c.weights, id) };
    });
  }

  vae(id: string): Promise<LoadedComponent<VaeConfig>> {
    const path = require(this.modelsDir, 'vae', id, `vae ${id}`);
    return this.cached(path, 'vae', async () => {
      const [v, id] = await Promise.all([openVae(path), this.ids.of(path)]);
      return { ...v, weights: withContentId(v.weights, id) };
    });
  }

  lora(id: string): string {
    return require(this.modelsDir, 'lora', id, `lora_model ${id}`);
  }

  /** The path of an installed upscaler, or undefined (the embedded default is used then). */
  upscaler(id: string): string | undefined {
    return locate(this.modelsDir, 'upscaler', id);
  }

  /** The installed path of a model (after a successful open), for naming it in errors. */
  path(kind: ModelKind, id: string): string | undefined {
    return locate(this.modelsDir, kind, id);
  }
}
