// What a parsed LoRA file is, whatever its key format: one low-rank branch per diffusers weight name.

/** One branch ΔW = up @ down on the weight `target` (a diffusers weight name), alpha / rank already in `up`. */
export interface LoraBranch {
  /** [rank, in] for a Linear, [rank, in, kh, kw] for a Conv (LoCon). */
  down: Float32Array;
  downDims: number[];
  /** [out, rank] for a Linear, [out, rank, 1, 1] for a Conv: the file's up × alpha / rank. The strength is not
   *  applied here but by the graph's per-rank `lora_scale` input (combine.ts), so this array is fed as it is. */
  up: Float32Array;
  upDims: number[];
  rank: number;
  /** The network alpha (informative: already applied to `up`); undefined means alpha = rank, scale 1, as kohya
   *  and diffusers read a missing alpha. */
  alpha: number | undefined;
}

export type LoraFormat = 'kohya' | 'kohya-ldm' | 'diffusers' | 'diffusers-old' | 'peft';

export interface ParsedLora {
  /** Keyed by diffusers weight name: `down_blocks.0.attentions.0.proj_in.weight` (UNet),
   *  `text_model.encoder.layers.0.self_attn.q_proj.weight` (CLIP text encoder). */
  targets: Map<string, LoraBranch>;
  /** The key formats seen in the file. */
  formats: LoraFormat[];
  /** Keys that were not applied, each with the reason (e.g. a second text encoder this model does not have). */
  ignored: { key: string; reason: string }[];
}

/** Which network a target weight belongs to. */
export type LoraComponent = 'unet' | 'text_encoder';

export function componentOf(target: string): LoraComponent {
  return target.startsWith('text_model.') ? 'text_encoder' : 'unet';
}

/** A tensor ready to be fed to a graph input. */
export interface FeedTensor {
  dims: number[];
  data: Float32Array;
}
