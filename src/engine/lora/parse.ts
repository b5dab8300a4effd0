// Reads a LoRA weight file (any key format) into one branch per diffusers weight name.
// Formats: kohya / A1111 (`lora_unet_…` / `lora_te_…` with `.lora_down.weight`, `.lora_up.weight`, `.alpha`;
// diffusers-named or LDM-named UNet paths; LoCon kxk convs), diffusers (`unet.….lora.down.weight`,
// `….lora_A.weight`, `text_encoder.….lora_linear_layer.down.weight`, the old attention-processor
// `….processor.to_q_lora.down.weight`) and PEFT (`base_model.model.….lora_A.weight` with adapter_config.json).
import type { WeightSource } from '../weights/types.ts';
import { LDM_BLOCK, ldmToDiffusers, underscoreToDotted } from './key-names.ts';
import type { LoraBranch, LoraFormat, ParsedLora } from './types.ts';

/** The parts of a PEFT LoraConfig that decide the scale alpha / r of each module. */
export interface PeftLoraConfig {
  r?: number;
  lora_alpha?: number;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  use_rslora?: boolean;
  use_dora?: boolean;
}

export interface ParseOptions {
  /** The UNet's layers_per_block, for LDM-named kohya keys (SD 1.x: 2). */
  layersPerBlock?: number;
  /** A raw PEFT adapter's adapter_config.json. */
  adapterConfig?: PeftLoraConfig;
  /** The safetensors header's `__metadata__`; diffusers stores its LoraConfigs under `lora_adapter_metadata`. */
  metadata?: Record<string, string>;
}

type Role = 'down' | 'up' | 'alpha';
type Component = 'unet' | 'text_encoder';

interface Pending {
  component: Component;
  format: LoraFormat;
  down?: string;
  up?: string;
  alpha?: string;
}

/** Thrown for files whose numbers we cannot apply faithfully (LoHa, LoKr, DoRA, ...). */
export class UnsupportedLoraError extends Error {}

const UNSUPPORTED = /(hada_|lokr_|lora_mid|dora_scale|lora_magnitude_vector|lora_embedding_|\.diff$|\.diff_b$|lora_B\.bias|lora\.up\.bias)/;

const KOHYA_SUFFIX: Record<string, Role> = { 'lora_down.weight': 'down', 'lora_up.weight': 'up', alpha: 'alpha' };

/** A key in any diffusers / PEFT spelling → [module path (with its component prefix, if any), role]. */
function splitDottedKey(key: string): [string, Role, LoraFormat] | undefined {
  let m: RegExpMatchArray | null;
  if ((m = key.match(/^(.+)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/))) return [m[1]!, m[2] === 'A' ? 'down' : 'up', 'diffusers'];
  if ((m = key.match(/^(.+)\.(?:lora|lora_linear_layer)\.(down|up)\.weight$/))) return [m[1]!, m[2] as Role, 'diffusers'];
  if ((m = key.match(/^(.+)_lora\.(down|up)\.weight$/))) return [m[1]!, m[2] as Role, 'diffusers-old'];
  if ((m = key.match(/^(.+)\.alpha$/))) return [m[1]!, 'alpha', 'diffusers'];
  return undefined;
}

const TE_OLD_LEAF: Record<string, string> = { to_q: 'q_proj', to_k: 'k_proj', to_v: 'v_proj', to_out: 'out_proj' };

/** Normalizes a dotted module path of one component to the diffusers module path our graphs use. */
function normalizePath(component: Component, path: string): string {
  let p = path.replace(/\.processor(?=\.)/g, '');
  if (component === 'text_encoder') {
    p = p.replace(/\.(to_q|to_k|to_v|to_out)$/, (_, leaf: string) => `.${TE_OLD_LEAF[leaf]}`);
    // transformers 5 drops CLIPTextModel's `text_model.`; the checkpoints and our graphs keep it.
    if (!p.startsWith('text_model.')) p = `text_model.${p}`;
  } else {
    p = p.replace(/\.to_out$/, '.to_out.0');
  }
  return p;
}

function dottedComponent(path: string): [Component | 'other', string, LoraFormat | undefined] {
  const strip = (pre: string) => path.slice(pre.length);
  if (path.startsWith('unet.')) return ['unet', strip('unet.'), undefined];
  if (path.startsWith('text_encoder.')) return ['text_encoder', strip('text_encoder.'), undefined];
  if (path.startsWith('text_encoder_2.') || path.startsWith('transformer.')) return ['other', path, undefined];
  let p = path;
  let format: LoraFormat | undefined;
  if (p.startsWith('base_model.model.')) {
    p = p.slice('base_model.model.'.length);
    format = 'peft';
  }
  if (/^(text_model|encoder|embeddings|final_layer_norm)\b/.test(p)) return ['text_encoder', p, format];
  if (/^(down_blocks|mid_block|up_blocks|conv_in|conv_out|time_embedding|conv_norm_out)\b/.test(p)) return ['unet', p, format];
  return ['other', path, format];
}

/** The per-component PEFT configs: the raw adapter's own, or those diffusers saved in the safetensors metadata. */
function peftConfigs(opts: ParseOptions): Partial<Record<Component, PeftLoraConfig>> {
  const out: Partial<Record<Component, PeftLoraConfig>> = {};
  if (opts.adapterConfig) out.unet = out.text_encoder = opts.adapterConfig;
  const raw = opts.metadata?.lora_adapter_metadata;
  if (raw) {
    const flat = JSON.parse(raw) as Record<string, unknown>;
    for (const comp of ['unet', 'text_encoder'] as const) {
      const cfg: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(flat)) if (k.startsWith(`${comp}.`)) cfg[k.slice(comp.length + 1)] = v;
      if (Object.keys(cfg).length) out[comp] = cfg as PeftLoraConfig;
    }
  }
  return out;
}

/** PEFT's pattern lookup: a pattern key matches a module path it ends (regex, at a '.' boundary). */
function patternValue(patterns: Record<string, number> | undefined, module: string): number | undefined {
  for (const [key, v] of Object.entries(patterns ?? {})) if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return v;
  return undefined;
}

/** The alpha that gives PEFT's scale (lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA) at this rank. */
function peftAlpha(cfg: PeftLoraConfig, module: string, rank: number): number | undefined {
  if (cfg.use_dora) throw new UnsupportedLoraError('DoRA adapters (use_dora) are not supported');
  const alpha = patternValue(cfg.alpha_pattern, module) ?? cfg.lora_alpha;
  if (alpha === undefined) return undefined;
  return cfg.use_rslora ? alpha * Math.sqrt(rank) : alpha;
}

function scaled(a: Float32Array, scale: number): Float32Array {
  if (scale === 1) return a;
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * scale;
  return out;
}

/** Tensor reads in flight at once: each may open the file, and a LoRA has ~1000 tensors. */
const READ_CONCURRENCY = 16;

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Parses every LoRA branch in `src`. Keys it cannot use are listed in `ignored`; unsupported algorithms throw. */
export async function parseLora(src: WeightSource, opts: ParseOptions = {}): Promise<ParsedLora> {
  const pending = new Map<string, Pending>();
  const ignored: ParsedLora['ignored'] = [];
  const unsupported: string[] = [];
  const layersPerBlock = opts.layersPerBlock ?? 2;

  const add = (target: string, component: Component, format: LoraFormat, role: Role, key: string) => {
    let p = pending.get(target);
    if (!p) pending.set(target, (p = { component, format }));
    if (p[role]) throw new Error(`LoRA keys ${p[role]} and ${key} both give the ${role} of ${target}`);
    p[role] = key;
  };

  for (const key of src.keys()) {
    if (UNSUPPORTED.test(key)) {
      unsupported.push(key);
      continue;
    }
    const kohya = key.match(/^lora_(unet|te|te1|te2)_([^.]+)\.(.+)$/);
    if (kohya) {
      const [, comp, stem, suffix] = kohya as unknown as [string, string, string, string];
      const role = KOHYA_SUFFIX[suffix];
      if (!role) {
        ignored.push({ key, reason: `unknown kohya tensor "${suffix}"` });
        continue;
      }
      if (comp === 'te2') {
        ignored.push({ key, reason: 'second text encoder (SDXL): this model has one' });
        continue;
      }
      const dotted = underscoreToDotted(stem);
      try {
        if (comp === 'unet') {
          const ldm = LDM_BLOCK.test(dotted);
          const path = ldm ? ldmToDiffusers(dotted, layersPerBlock) : dotted;
          add(`${path}.weight`, 'unet', ldm ? 'kohya-ldm' : 'kohya', role, key);
        } else {
          add(`${normalizePath('text_encoder', dotted)}.weight`, 'text_encoder', 'kohya', role, key);
        }
      } catch (e) {
        ignored.push({ key, reason: (e as Error).message });
      }
      continue;
    }
    const split = splitDottedKey(key);
    if (!split) {
      ignored.push({ key, reason: 'not a LoRA tensor name' });
      continue;
    }
    const [rawPath, role, keyFormat] = split;
    const [component, path, prefixFormat] = dottedComponent(rawPath);
    if (component === 'other') {
      ignored.push({ key, reason: 'names no module of the UNet or the text encoder' });
      continue;
    }
    add(`${normalizePath(component, path)}.weight`, component, prefixFormat ?? keyFormat, role, key);
  }
  if (unsupported.length) {
    throw new UnsupportedLoraError(`unsupported LoRA variant (LoHa / LoKr / DoRA / CP-decomposed LoCon / full diffs): ` +
      `${unsupported.slice(0, 5).join(', ')}${unsupported.length > 5 ? ` and ${unsupported.length - 5} more` : ''}`);
  }

  const configs = peftConfigs(opts);
  const targets = new Map<string, LoraBranch>();
  const formats = new Set<LoraFormat>();
  await mapLimit([...pending], READ_CONCURRENCY, async ([target, p]) => {
    if (!p.down || !p.up) {
      const missing = p.down ? 'up' : 'down';
      throw new Error(`LoRA for ${target} has no ${missing} weight (keys: ${[p.down, p.up, p.alpha].filter(Boolean).join(', ')})`);
    }
    const downDims = src.info(p.down)!.shape;
    const upDims = src.info(p.up)!.shape;
    const rank = downDims[0]!;
    const linearOk = downDims.length === 2 && upDims.length === 2;
    const convOk = downDims.length === 4 && upDims.length === 4 && upDims[2] === 1 && upDims[3] === 1;
    if (!(linearOk || convOk) || upDims[1] !== rank) {
      throw new Error(`LoRA for ${target}: down [${downDims}] and up [${upDims}] do not form a rank-${rank} pair`);
    }
    const [down, up, alphaT] = await Promise.all([src.readF32(p.down), src.readF32(p.up), p.alpha ? src.readF32(p.alpha) : undefined]);
    let alpha = alphaT?.[0];
    const cfg = configs[p.component];
    if (alpha === undefined && cfg && (p.format === 'diffusers' || p.format === 'peft')) {
      alpha = peftAlpha(cfg, target.slice(0, -'.weight'.length), rank);
    }
    targets.set(target, { down, downDims, up: alpha === undefined ? up : scaled(up, alpha / rank), upDims, rank, alpha });
    formats.add(p.format);
  });
  // Deterministic order (the promises above settle in any order).
  const sorted = new Map([...targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { targets: sorted, formats: [...formats].sort(), ignored };
}
