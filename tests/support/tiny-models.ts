// A models folder laid out as the product expects, pointing (by symlink) at the oracle's tiny models.
import { mkdtempSync, mkdirSync, symlinkSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './fixtures.ts';

export const TINY_TOKENIZER = join(import.meta.dirname, '..', '..', 'assets', 'tokenizer', 'tiny-clip-1000');

/** Creates DATA_DIR/models with base model "tiny", ControlNets, a second VAE and two LoRAs; returns DATA_DIR. */
export function tinyDataDir(): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'cn-data-'));
  const models = join(dataDir, 'models');
  for (const kind of ['base', 'controlnet', 'vae', 'lora']) mkdirSync(join(models, kind), { recursive: true });
  const base = join(models, 'base', 'tiny');
  mkdirSync(base);
  for (const part of readdirSync(join(FIXTURES, 'tiny', 'sd15'))) symlinkSync(join(FIXTURES, 'tiny', 'sd15', part), join(base, part));
  symlinkSync(TINY_TOKENIZER, join(base, 'tokenizer'));
  // control types share the two tiny ControlNets: what matters here is the pipeline, not the weights
  symlinkSync(join(FIXTURES, 'tiny', 'controlnet'), join(models, 'controlnet', 'canny'));
  symlinkSync(join(FIXTURES, 'tiny', 'controlnet'), join(models, 'controlnet', 'inpaint'));
  symlinkSync(join(FIXTURES, 'pipeline', 'controlnet-b'), join(models, 'controlnet', 'depth'));
  symlinkSync(join(FIXTURES, 'pipeline', 'vae-alt'), join(models, 'vae', 'vae-alt'));
  for (const l of ['lora-a', 'lora-b']) copyFileSync(join(FIXTURES, 'pipeline', l, 'lora.safetensors'), join(models, 'lora', `${l}.safetensors`));
  return dataDir;
}
