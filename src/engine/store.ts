// The models folder: DATA_DIR/models/<kind>/<id>. A base model is a diffusers folder (model_index.json)
// or a single-file checkpoint <id>.safetensors / <id>.ckpt; the other kinds follow their own file layouts.
import { join } from 'node:path';

export const MODEL_KINDS = [
  'base', 'controlnet', 'lora', 'vae', 'annotator', 'safety_checker', 'upscaler', 'translator', 'prompt_enhancer',
] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

export function dataDir(): string {
  return process.env.DATA_DIR ?? join(process.cwd(), 'data');
}

export function modelsDir(root = dataDir()): string {
  return process.env.MODELS_DIR ?? join(root, 'models');
}

export function cacheDir(root = dataDir()): string {
  return join(root, 'cache');
}

export function modelPath(kind: ModelKind, id: string, root = dataDir()): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) throw new Error(`invalid model id "${id}"`);
  return join(modelsDir(root), kind, id);
}

/** The id used when a request names no model_id. */
export const DEFAULT_MODEL_ID = process.env.DEFAULT_MODEL_ID ?? 'sd-1.5';
