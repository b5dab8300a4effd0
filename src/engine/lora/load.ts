// Opens LoRA files from disk and keeps the parsed result, keyed by path + mtime + size, so that switching
// between LoRA sets re-reads nothing. Accepts a .safetensors or torch.save file (.pt / .pth / .bin / .ckpt,
// read without executing pickle code), or a folder holding a PEFT adapter (adapter_model.* +
// adapter_config.json) or a diffusers LoRA (pytorch_lora_weights.*).
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openWeightsFile } from '../weights/open.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import { parseLora, type ParseOptions, type PeftLoraConfig } from './parse.ts';
import type { ParsedLora } from './types.ts';

export interface LoadOptions {
  /** The UNet's layers_per_block, for LDM-named kohya keys (SD 1.x: 2). */
  layersPerBlock?: number;
}

/** Resolves a LoRA path to its weight file and, for a PEFT folder, its adapter config. */
async function resolveFiles(path: string): Promise<{ weights: string; config?: string }> {
  if (!(await stat(path)).isDirectory()) return { weights: path };
  for (const name of ['adapter_model.safetensors', 'pytorch_lora_weights.safetensors', 'adapter_model.bin', 'pytorch_lora_weights.bin']) {
    const weights = join(path, name);
    if (existsSync(weights)) {
      const config = join(path, 'adapter_config.json');
      return { weights, config: existsSync(config) ? config : undefined };
    }
  }
  throw new Error(`${path}: no adapter_model.safetensors or pytorch_lora_weights.safetensors (or .bin) in this LoRA folder`);
}

/** Reads and parses one LoRA (no caching). */
export async function readLora(path: string, opts: LoadOptions = {}): Promise<ParsedLora> {
  const { weights, config } = await resolveFiles(path);
  const src = await openWeightsFile(weights);
  const metadata = src instanceof SafetensorsFile ? src.metadata : undefined;
  const parseOpts: ParseOptions = { layersPerBlock: opts.layersPerBlock, metadata };
  if (config) parseOpts.adapterConfig = JSON.parse(await readFile(config, 'utf8')) as PeftLoraConfig;
  return parseLora(src, parseOpts);
}

function parsedBytes(p: ParsedLora): number {
  let n = 0;
  for (const b of p.targets.values()) n += b.down.byteLength + b.up.byteLength;
  return n;
}

/** A least-recently-used cache of parsed LoRAs within a byte budget (their float32 tensors). */
export class LoraCache {
  private readonly entries = new Map<string, { parsed: Promise<ParsedLora>; bytes: number }>();

  constructor(readonly maxBytes = 2 * 1024 ** 3) {}

  async get(path: string, opts: LoadOptions = {}): Promise<ParsedLora> {
    // The files' own stamps: a folder's mtime does not change when a file in it is rewritten in place.
    const files = await resolveFiles(path);
    const stamps = await Promise.all([files.weights, files.config].filter((f): f is string => !!f).map(async (f) => {
      const st = await stat(f);
      return [f, st.mtimeMs, st.size];
    }));
    const key = JSON.stringify([stamps, opts.layersPerBlock ?? 2]);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.parsed;
    }
    const entry = { parsed: readLora(path, opts), bytes: 0 };
    this.entries.set(key, entry);
    try {
      entry.bytes = parsedBytes(await entry.parsed);
    } catch (e) {
      this.entries.delete(key);
      throw e;
    }
    this.evict();
    return entry.parsed;
  }

  private evict(): void {
    let total = [...this.entries.values()].reduce((s, e) => s + e.bytes, 0);
    for (const [key, e] of this.entries) {
      if (total <= this.maxBytes || this.entries.size <= 1) break;
      this.entries.delete(key);
      total -= e.bytes;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
