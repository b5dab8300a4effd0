// diffusers' StableDiffusionSafetyChecker (diffusers/pipelines/stable_diffusion/safety_checker.py): a CLIP vision
// tower (transformers' CLIPVisionModel: patch embedding, class token, positions, pre-LayerNorm, encoder layers,
// post-LayerNorm of the class token), the visual projection, and the cosine similarities of the image embedding to
// 3 "special care" and 17 concept embeddings. The flag rule (scores against per-concept thresholds, rounded to
// 3 decimals, with the 0.01 adjustment after a special-care hit) runs in TypeScript: safetyFlags().
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { layerNorm, linear, mha, Net, quickGelu, gelu } from './layers.ts';
import { WeightReader } from './weight-reader.ts';

/** The parts of a safety checker's config.json (a transformers CLIPConfig) the graph needs. */
export interface SafetyCheckerConfigJson {
  vision_config?: {
    hidden_size?: number; num_hidden_layers?: number; num_attention_heads?: number; image_size?: number; patch_size?: number;
    layer_norm_eps?: number; hidden_act?: string;
  };
  projection_dim?: number;
  [k: string]: unknown;
}

/** Input size (pixels, square) the checker's CLIP tower expects: vision_config.image_size (224 for SD's). */
export const safetyCheckerImageSize = (c: SafetyCheckerConfigJson): number => c.vision_config?.image_size ?? 224;

/**
 * The graph: input pixel_values [N, 3, S, S] (CLIPImageProcessor's output), outputs image_embeds [N, P],
 * special_cos [N, 3] and concept_cos [N, 17]. Weights under `vision_model.` (transformers ≥ 5) or
 * `vision_model.vision_model.` (older saves, SD 1.5's file). Throws for missing or unused weights.
 */
export function buildSafetyChecker(config: SafetyCheckerConfigJson, src: WeightSource): GraphBuilder {
  const v = config.vision_config ?? {};
  const layers = v.num_hidden_layers ?? 24, heads = v.num_attention_heads ?? 16, eps = v.layer_norm_eps ?? 1e-5;
  const act = v.hidden_act ?? 'quick_gelu';
  if (act !== 'quick_gelu' && act !== 'gelu') throw new Error(`safety checker: hidden_act ${act} is not supported`);
  const nested = src.keys().some((k) => k.startsWith('vision_model.vision_model.'));
  const w = new WeightReader(src, 'safety checker', (name) => (nested && name.startsWith('vision_model.') ? `vision_model.${name}` : name));
  const g = new GraphBuilder('safety_checker');
  const n = new Net(g, w, false);
  const p = 'vision_model';
  const S = safetyCheckerImageSize(config);
  const x = g.input('pixel_values', 'float32', ['batch', 3, S, S]);
  const [hidden, , ph] = w.shape(`${p}.embeddings.patch_embedding.weight`) as [number, number, number];
  // patches [N, hidden, S/ph, S/ph] → tokens [N, L, hidden]; then [class; tokens] + positions
  const patches = g.op('Conv', [x, w.param(g, `${p}.embeddings.patch_embedding.weight`)], { strides: [ph, ph], kernel_shape: [ph, ph] });
  const tokens = g.op('Transpose', [g.op('Reshape', [patches, g.i64([0, hidden, -1])])], { perm: [0, 2, 1] });
  const batch = g.op('Slice', [g.op('Shape', [x]), g.i64([0]), g.i64([1])]);
  const cls = g.op('Expand', [g.op('Reshape', [w.param(g, `${p}.embeddings.class_embedding`, [hidden]), g.i64([1, 1, hidden])]),
    g.op('Concat', [batch, g.i64([1, hidden])], { axis: 0 })]);
  let h: Value = g.op('Add', [g.op('Concat', [cls, tokens], { axis: 1 }), w.param(g, `${p}.embeddings.position_embedding.weight`)]);
  h = layerNorm(n, h, `${p}.pre_layrnorm`, eps);
  for (let i = 0; i < layers; i++) {
    const l = `${p}.encoder.layers.${i}`;
    h = g.scope(l, () => {
      let y = layerNorm(n, h, `${l}.layer_norm1`, eps);
      const q = linear(n, y, `${l}.self_attn.q_proj`), k = linear(n, y, `${l}.self_attn.k_proj`), vv = linear(n, y, `${l}.self_attn.v_proj`);
      y = g.op('Add', [h, linear(n, mha(g, q, k, vv, heads), `${l}.self_attn.out_proj`)]);
      let m = linear(n, layerNorm(n, y, `${l}.layer_norm2`, eps), `${l}.mlp.fc1`);
      m = act === 'gelu' ? gelu(g, m) : quickGelu(g, m);
      return g.op('Add', [y, linear(n, m, `${l}.mlp.fc2`)]);
    });
  }
  const pooled = layerNorm(n, g.op('Squeeze', [g.op('Slice', [h, g.i64([0]), g.i64([1]), g.i64([1])]), g.i64([1])]), `${p}.post_layernorm`, eps);
  const embeds = linear(n, pooled, 'visual_projection');
  const unit = (t: Value): Value => g.op('Div', [t, g.op('ReduceL2', [t, g.i64([-1])], { keepdims: 1 })]);
  const cos = (name: string): Value => g.op('MatMul', [unit(embeds), g.op('Transpose', [unit(w.param(g, name))], { perm: [1, 0] })]);
  g.output(embeds, 'image_embeds', 'float32');
  g.output(cos('special_care_embeds'), 'special_cos', 'float32');
  g.output(cos('concept_embeds'), 'concept_cos', 'float32');
  // the thresholds are read by the caller (safetyFlags), not used by the graph
  w.assertAllUsed((k) => k.endsWith('_embeds_weights') || k.includes('position_ids'));
  return g;
}

/** Python's round(x, 3) for the scores (ties are rare enough with float inputs that half-up is used). */
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * diffusers' flag rule per image: a special-care score (similarity − threshold, rounded to 3 decimals) above 0
 * adds 0.01 to every later score; any concept score above 0 flags the image.
 * @param special [N, 3] and concept [N, 17] similarities, row-major; thresholds from the *_embeds_weights.
 */
export function safetyFlags(special: Float32Array, concept: Float32Array, specialThr: Float32Array, conceptThr: Float32Array): boolean[] {
  const ns = specialThr.length, nc = conceptThr.length, N = special.length / ns;
  const flags: boolean[] = [];
  for (let i = 0; i < N; i++) {
    let adjustment = 0;
    for (let c = 0; c < ns; c++) if (round3(special[i * ns + c]! - specialThr[c]! + adjustment) > 0) adjustment = 0.01;
    let bad = false;
    for (let c = 0; c < nc; c++) if (round3(concept[i * nc + c]! - conceptThr[c]! + adjustment) > 0) bad = true;
    flags.push(bad);
  }
  return flags;
}
