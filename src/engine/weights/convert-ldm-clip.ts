// CLIP text encoder names. Our canonical names are the ones SD repositories ship ("text_model.encoder...");
// single-file checkpoints put them under "cond_stage_model.transformer.", and files saved by transformers 5
// (or very old ones) drop the "text_model." part.
import type { ClipTextConfig } from './configs.ts';
import { KeyPairs } from './convert-keys.ts';

/** Every CLIP text-encoder weight as (canonical name ← name below the text model, e.g. "encoder.layers.0..."). */
export function clipTextKeyPairs(c: ClipTextConfig): KeyPairs {
  const k = new KeyPairs();
  const same = (name: string) => k.module(`text_model.${name}`, name);
  k.param('text_model.embeddings.token_embedding.weight', 'embeddings.token_embedding.weight');
  k.param('text_model.embeddings.position_embedding.weight', 'embeddings.position_embedding.weight');
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `encoder.layers.${i}`;
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) same(`${l}.self_attn.${p}`);
    for (const m of ['layer_norm1', 'mlp.fc1', 'mlp.fc2', 'layer_norm2']) same(`${l}.${m}`);
  }
  same('final_layer_norm');
  return k;
}

/** Buffers that checkpoints carry beside the weights. */
export const isClipBuffer = (key: string) => key.endsWith('embeddings.position_ids');

/** Where the text model's weights start in a source: "<base>text_model." or "<base>" for unprefixed files. */
export function clipPrefix(keys: string[], base: string): string {
  return keys.some((k) => k.startsWith(`${base}text_model.`)) ? `${base}text_model.` : base;
}
