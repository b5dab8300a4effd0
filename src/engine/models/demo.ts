// The random tiny models: a tiny SD 1.5-shaped base model and one tiny ControlNet per control type, with seeded
// random weights (noise-like images), made in seconds. Tests and benchmarks use them as fixtures for the whole
// server; the quick start installs the trained demo model of assets/demo-model instead (src/cli/demo-model.ts).
// Architectures (configs, weight names and shapes) come from diffusers via tools/oracle/networks_demo.py.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTROLNET_TYPES, type ControlNetType } from '../pipeline/types.ts';
import { DEFAULT_MODEL_ID } from '../store.ts';
import { float32ToFloat16 } from '../weights/dtype.ts';
import { writeSafetensors, type TensorToWrite } from '../weights/safetensors.ts';

const MANIFEST = join(import.meta.dirname, 'demo-manifest.json');
const TOKENIZER_DIR = join(import.meta.dirname, '..', '..', '..', 'assets', 'tokenizer', 'clip-vit-large-patch14');

/** diffusers' SD 1.5 scheduler_config.json (runwayml/stable-diffusion-v1-5). */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler', _diffusers_version: '0.6.0', beta_end: 0.012, beta_schedule: 'scaled_linear',
  beta_start: 0.00085, clip_sample: false, num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true,
  steps_offset: 1, trained_betas: null,
};

interface NetworkManifest {
  config: Record<string, unknown>;
  weights: Record<string, number[]>;
}

/** mulberry32 + Box-Muller: a small seeded normal generator (the demo needs reproducible, not torch-equal). */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Weights ~ N(0, 1/fan_in); 1-D `weight`s (norm scales) = 1; biases = 0. Stored as fp16. */
function randomWeights(m: NetworkManifest, seed: number): Record<string, TensorToWrite> {
  const randn = normals(seed);
  const out: Record<string, TensorToWrite> = {};
  for (const [name, shape] of Object.entries(m.weights)) {
    const size = shape.reduce((x, y) => x * y, 1);
    const v = new Float32Array(size);
    if (shape.length > 1) {
      const std = 1 / Math.sqrt(size / shape[0]!);
      for (let i = 0; i < size; i++) v[i] = randn() * std;
    } else if (name.endsWith('.weight')) {
      v.fill(1);
    }
    out[name] = { dtype: 'float16', shape, data: float32ToFloat16(v) };
  }
  return out;
}

async function writeComponent(dir: string, m: NetworkManifest, file: string, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(m.config, null, 2));
  await writeSafetensors(join(dir, file), randomWeights(m, seed), { format: 'pt', note: 'demo model: random weights' });
}

/** Writes into a temp folder beside `dir`, then renames, so a crash never leaves a half-written model. */
async function atomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await fill(tmp);
  await writeFile(join(tmp, 'DEMO.json'), JSON.stringify({ demo: true, note: 'random weights, noise-like images' }));
  await rename(tmp, dir);
}

export interface DemoOptions {
  /** Base model id (default: the server's default model id). */
  baseId?: string;
  /** ControlNet ids per type (default: the type name, e.g. controlnet/canny). */
  controlnetId?: (type: ControlNetType) => string;
  types?: readonly ControlNetType[];
}

export interface DemoResult {
  base: string;
  controlnets: Partial<Record<ControlNetType, string>>;
  /** Paths written now (existing models are never overwritten). */
  created: string[];
}

/** Creates the demo models under `modelsDir` (base/<id>, controlnet/<id>) where nothing exists yet. */
export async function createDemoModels(modelsDir: string, opts: DemoOptions = {}): Promise<DemoResult> {
  const m = JSON.parse(await readFile(MANIFEST, 'utf8')) as Record<'unet' | 'controlnet' | 'vae' | 'text_encoder', NetworkManifest>;
  const created: string[] = [];
  const base = join(modelsDir, 'base', opts.baseId ?? DEFAULT_MODEL_ID);
  if (!existsSync(base)) {
    await mkdir(join(modelsDir, 'base'), { recursive: true });
    await atomically(base, async (dir) => {
      await writeComponent(join(dir, 'unet'), m.unet, 'diffusion_pytorch_model.safetensors', 1);
      await writeComponent(join(dir, 'vae'), m.vae, 'diffusion_pytorch_model.safetensors', 2);
      await writeComponent(join(dir, 'text_encoder'), m.text_encoder, 'model.safetensors', 3);
      await mkdir(join(dir, 'scheduler'));
      await writeFile(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(SD15_SCHEDULER_CONFIG, null, 2));
      await mkdir(join(dir, 'tokenizer'));
      for (const f of await readdir(TOKENIZER_DIR)) await copyFile(join(TOKENIZER_DIR, f), join(dir, 'tokenizer', f));
      await writeFile(join(dir, 'model_index.json'), JSON.stringify({
        _class_name: 'StableDiffusionPipeline', _diffusers_version: '0.42.1', requires_safety_checker: false,
        scheduler: ['diffusers', 'PNDMScheduler'], text_encoder: ['transformers', 'CLIPTextModel'],
        tokenizer: ['transformers', 'CLIPTokenizer'], unet: ['diffusers', 'UNet2DConditionModel'],
        vae: ['diffusers', 'AutoencoderKL'], safety_checker: [null, null], feature_extractor: [null, null],
      }, null, 2));
    });
    created.push(base);
  }
  const controlnets: DemoResult['controlnets'] = {};
  const types = opts.types ?? CONTROLNET_TYPES;
  await mkdir(join(modelsDir, 'controlnet'), { recursive: true });
  for (const [i, type] of types.entries()) {
    const dir = join(modelsDir, 'controlnet', opts.controlnetId?.(type) ?? type);
    controlnets[type] = dir;
    if (existsSync(dir)) continue;
    await atomically(dir, (tmp) => writeComponent(tmp, m.controlnet, 'diffusion_pytorch_model.safetensors', 100 + i));
    created.push(dir);
  }
  return { base, controlnets, created };
}
