// The models folder: <modelsDir>/<kind>/<id>. A base model is a diffusers folder (model_index.json)
// or a single-file checkpoint <id>.safetensors / <id>.ckpt; the other kinds follow their own file layouts.
// The folder's location is a setting (config.ts: MODELS_DIR, default DATA_DIR/models), passed in, never read here.
import { isAbsolute, join, relative, sep } from 'node:path';

export const MODEL_KINDS = [
  'base', 'controlnet', 'lora', 'vae', 'annotator', 'safety_checker', 'upscaler', 'translator', 'prompt_enhancer',
] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** The default models folder of a data folder (DATA_DIR/models). */
export function defaultModelsDir(dataDir: string): string {
  return join(dataDir, 'models');
}

export function cacheDir(dataDir: string): string {
  return join(dataDir, 'cache');
}

/** <modelsDir>/<kind>/<id>; throws on an id that could leave the folder (the API's schema refuses those first). */
export function modelPath(kind: ModelKind, id: string, modelsDir: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) throw new Error(`invalid model id "${id}"`);
  return join(modelsDir, kind, id);
}

/**
 * A path as users may see it: relative to the models folder (`controlnet/canny.safetensors`). Paths outside it
 * become their last component, so that no message ever shows a server path.
 */
export function userPath(path: string, modelsDir: string): string {
  const rel = relative(modelsDir, path);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return rel.split(sep).join('/');
  return path.split(sep).pop() ?? '';
}

/** Rewrites every occurrence of an absolute path under the models folder (or any other absolute path) in a message. */
export function scrubPaths(message: string, modelsDir: string): string {
  const root = modelsDir.endsWith(sep) ? modelsDir : modelsDir + sep;
  return message.split(root).join('').replace(/(?:\/[^/\s:'"`()]+)+\/([^/\s:'"`()]+)/g, '$1');
}

/** The id used when a request names no model_id and no DEFAULT_MODEL_ID is set. */
export const DEFAULT_MODEL_ID = 'sd-1.5';
