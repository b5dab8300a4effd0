// fp16 graphs (ENGINE_PRECISION=fp16) against the same graphs in fp32, on ONNX Runtime's CPU provider.
//
// The bound and its cause: float16 keeps 11 significant bits (unit roundoff u = 2^-11 ≈ 4.9e-4). Every weight and
// every activation between ops is rounded once to float16, so each layer adds a relative error of a few u, and the
// errors of the ~20-40 layers a tiny network or one full-size block chains add up, partly cancelling: measured
// 5e-4 to 9e-4 (1-2 u) relative L2 error ‖fp16 − fp32‖ / ‖fp32‖ on every network below. The bound, 4e-3 (8 u), leaves
// room for that accumulation on other inputs; a float16 statistic (a GroupNorm variance over thousands of values, a
// softmax sum), a lost fp32 island or a wrong cast shows as 1e-2 and more, or as inf / NaN. On x86 the
// CPU provider runs part of the fp16 ops through float32 kernels with casts around them (rounding between ops is
// the same; accumulation inside an op is float32, as GPU kernels with float32 accumulators do).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { buildControlNet, controlnetScales } from '../../../src/engine/models/controlnet.ts';
import { groupNorm, Net, resnetBlock, transformer2d } from '../../../src/engine/models/layers.ts';
import { buildUNet } from '../../../src/engine/models/unet.ts';
import { buildVaeDecoder, buildVaeEncoder, vaeFloatType } from '../../../src/engine/models/vae.ts';
import { WeightReader } from '../../../src/engine/models/weight-reader.ts';
import { GraphBuilder, type FloatType } from '../../../src/engine/onnx/graph.ts';
import { defaultFp32Islands, floatTypeOf, FP32_ISLANDS, parsePrecision, type Fp32Island } from '../../../src/engine/onnx/precision.ts';
import type { Precision } from '../../../src/engine/onnx/precision.ts';
import type { WeightSource } from '../../../src/engine/weights/types.ts';
import { DataType } from '../../../src/engine/onnx/proto.ts';
import { loadFixture } from '../../support/fixtures.ts';
import { f32, i64, scalarI64, sessionFor, tinyConfig, tinyWeights } from './support.ts';

const BOUND = 4e-3;
const fx = loadFixture('tiny/unet_fwd');

/** ‖a − b‖ / ‖b‖; Infinity on NaN or a length mismatch. */
function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  const r = Math.sqrt(num / den);
  return Number.isNaN(r) ? Infinity : r;
}

/** Runs the fp32 and fp16 builds of one network on the same feeds; returns each output's relative error. */
async function compare(build: (p: Precision) => GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<Record<string, number>> {
  const g32 = build('fp32');
  const g16 = build('fp16');
  assert.equal(g32.floatType, 'float32');
  assert.ok(g16.initializers.some((i) => i.dtype === 'float16'), 'the fp16 graph holds float16 weights');
  // the I/O contract does not change with the precision
  assert.deepEqual(g16.inputs.map((i) => [i.name, i.dtype]), g32.inputs.map((i) => [i.name, i.dtype]));
  assert.deepEqual(g16.outputs.map((o) => [o.name, o.dtype]), g32.outputs.map((o) => [o.name, o.dtype]));
  const [o32, o16] = [await (await sessionFor(g32)).run(feeds), await (await sessionFor(g16)).run(feeds)];
  const errs: Record<string, number> = {};
  for (const k of Object.keys(o32)) {
    assert.equal(o16[k]!.type, 'float32');
    errs[k] = relL2(o16[k]!.data as Float32Array, o32[k]!.data as Float32Array);
  }
  return errs;
}

function assertBound(what: string, errs: Record<string, number>): void {
  const worst = Math.max(...Object.values(errs));
  console.log(`${what}: fp16 vs fp32 relative L2 error, worst output ${worst.toExponential(2)}`);
  for (const [k, e] of Object.entries(errs)) assert.ok(e <= BOUND, `${what} ${k}: relative L2 error ${e} > ${BOUND}`);
}

test('ENGINE_PRECISION: fp16 on GPU providers, fp32 on cpu by default; bad values name the setting', () => {
  assert.equal(parsePrecision(undefined, 'cpu'), 'fp32');
  assert.equal(parsePrecision(undefined, 'webgpu'), 'fp16');
  assert.equal(parsePrecision('', 'cuda'), 'fp16');
  assert.equal(parsePrecision('FP16', 'cpu'), 'fp16');
  assert.equal(parsePrecision('fp32', 'tensorrt'), 'fp32');
  assert.throws(() => parsePrecision('bf16', 'cpu'), /ENGINE_PRECISION must be one of fp16, fp32/);
  assert.equal(floatTypeOf('fp16'), 'float16');
  assert.equal(floatTypeOf(undefined), 'float32');
});

test('float32 islands by provider: every Conv in float32 for fp16 on webgpu (its fp16 Conv accumulates in fp16), none elsewhere', () => {
  assert.deepEqual(defaultFp32Islands('webgpu', 'fp16'), ['conv']);
  assert.deepEqual(defaultFp32Islands('webgpu', 'fp32'), []);
  assert.deepEqual(defaultFp32Islands('webgpu', undefined), []);
  for (const provider of ['cpu', 'cuda', 'tensorrt']) assert.deepEqual(defaultFp32Islands(provider, 'fp16'), [], provider);
  // composed with ENGINE_PRECISION as Pipeline.create does: unset on webgpu is fp16 with the conv island
  assert.deepEqual(defaultFp32Islands('webgpu', parsePrecision(undefined, 'webgpu')), ['conv']);
  assert.deepEqual(defaultFp32Islands('webgpu', parsePrecision('fp32', 'webgpu')), []);
  assert.deepEqual(defaultFp32Islands('cuda', parsePrecision(undefined, 'cuda')), []);
});

/** The number of Conv nodes of the tiny UNet without LoRA. */
function reads0Conv(cfg: ReturnType<typeof tinyConfig>, src: WeightSource): number {
  return buildUNet(cfg, src, { controlnetInputs: true, precision: 'fp16' }).graph.nodes.filter((n) => n.opType === 'Conv').length;
}

/** How many Conv nodes of a graph read float32 casts for all their inputs, out of how many. */
function convsReadingFloat32(g: GraphBuilder): [number, number] {
  const castTo32 = new Set(g.nodes.filter((n) => n.opType === 'Cast' && n.attrs.to === DataType.float32).flatMap((n) => n.outputs));
  const convs = g.nodes.filter((n) => n.opType === 'Conv');
  return [convs.filter((n) => n.inputs.filter((v) => v !== '').every((v) => castTo32.has(v))).length, convs.length];
}

test('UNet with ControlNet residuals and LoRA slots: fp16 within the bound of fp32', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const cfg = tinyConfig('sd15/unet');
  const build = (p: Precision) => buildUNet(cfg, src, { controlnetInputs: true, lora: true, precision: p }).graph;
  const feeds: Record<string, ort.Tensor> = { sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') };
  for (let i = 0; i < 6; i++) feeds[`down_block_additional_residual_${i}`] = f32(fx, `cn_down_${i}`);
  feeds.mid_block_additional_residual = f32(fx, 'cn_mid');
  // a rank-2 LoRA on every slot, so the cast LoRA branch is exercised too
  const inputs = build('fp32').inputs;
  for (const input of inputs) {
    if (!input.name.endsWith('.lora_down')) continue;
    const name = input.name.slice(0, -'.lora_down'.length);
    const [r, ...rest] = [2, ...(input.shape!.slice(1) as number[])];
    const upShape = (inputs.find((i) => i.name === `${name}.lora_up`)!.shape!) as (number | string)[];
    const down = new Float32Array(r * rest.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i) * 0.05);
    const upDims = [upShape[0] as number, r, ...(upShape.length === 4 ? [1, 1] : [])];
    const up = new Float32Array(upDims.reduce((a, b) => a * b, 1)).map((_, i) => Math.cos(i) * 0.05);
    feeds[`${name}.lora_down`] = new ort.Tensor('float32', down, [r, ...rest]);
    feeds[`${name}.lora_up`] = new ort.Tensor('float32', up, upDims);
    feeds[`${name}.lora_scale`] = new ort.Tensor('float32', Float32Array.of(0.8, 0.8), [2]);
  }
  assertBound('tiny UNet', await compare(build, feeds));
});

test('fp32 islands (conv: the WebGPU default; all: bench/gpu.sh --diagnose): each op family reads float32 casts, and the output stays within the bound', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const cfg = tinyConfig('sd15/unet');
  const ops: Record<Fp32Island, string[]> = {
    attention: ['MultiHeadAttention'], linear: ['MatMul'], conv: ['Conv'], norm: ['GroupNormalization', 'LayerNormalization'],
  };
  /** For each op type: how many of its nodes read float32 casts for all their inputs, out of how many. */
  const fp32Reads = (g: GraphBuilder): Record<string, [number, number]> => {
    const castTo32 = new Set(g.nodes.filter((n) => n.opType === 'Cast' && n.attrs.to === 1).flatMap((n) => n.outputs));
    const out: Record<string, [number, number]> = {};
    for (const n of g.nodes) {
      const c = (out[n.opType] ??= [0, 0]);
      if (n.inputs.filter((v) => v !== '').every((v) => castTo32.has(v))) c[0]++;
      c[1]++;
    }
    return out;
  };
  const plain = fp32Reads(buildUNet(cfg, src, { controlnetInputs: true, precision: 'fp16' }).graph);
  for (const island of FP32_ISLANDS) {
    const g = buildUNet(cfg, src, { controlnetInputs: true, precision: 'fp16', fp32Islands: [island] }).graph;
    const reads = fp32Reads(g);
    for (const op of ops[island]) {
      const [n32, n] = reads[op]!;
      assert.ok(n > 0 && n32 === n, `${island}: ${n32} of ${n} ${op} nodes read float32 casts`);
      assert.equal(plain[op]![0], 0, `without islands no ${op} reads float32 casts`);
    }
    // the other families are untouched
    for (const other of FP32_ISLANDS.filter((i) => i !== island)) for (const op of ops[other]) assert.equal(reads[op]![0], 0, `${island} left ${op} alone`);
  }
  // LoRA's conv branches (down kh×kw, up 1×1) are Convs too: under the conv island with the layers' own
  const withLora = convsReadingFloat32(buildUNet(cfg, src, { controlnetInputs: true, lora: true, precision: 'fp16', fp32Islands: ['conv'] }).graph);
  assert.ok(withLora[1] > reads0Conv(cfg, src) && withLora[0] === withLora[1], `with LoRA: ${withLora[0]} of ${withLora[1]} Conv nodes read float32 casts`);
  // an fp32 graph has nothing to island: the option changes nothing there
  const g32 = buildUNet(cfg, src, { controlnetInputs: true, precision: 'fp32', fp32Islands: [...FP32_ISLANDS] }).graph;
  assert.equal(g32.nodes.filter((n) => n.opType === 'Cast').length, buildUNet(cfg, src, { controlnetInputs: true }).graph.nodes.filter((n) => n.opType === 'Cast').length);
  const feeds: Record<string, ort.Tensor> = { sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') };
  for (let i = 0; i < 6; i++) feeds[`down_block_additional_residual_${i}`] = f32(fx, `cn_down_${i}`);
  feeds.mid_block_additional_residual = f32(fx, 'cn_mid');
  const build = (p: Precision) => buildUNet(cfg, src, { controlnetInputs: true, precision: p, fp32Islands: [...FP32_ISLANDS] }).graph;
  assertBound('tiny UNet, fp16 with every fp32 island', await compare(build, feeds));
});

test('UNet with ToMe (its merge a float32 island): fp16 within the bound of fp32', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const cfg = tinyConfig('sd15/unet');
  const tome = { ratio: 0.5, maxDownsample: 1, sx: 2, sy: 2, useRand: false, seed: 0 };
  const build = (p: Precision) => buildUNet(cfg, src, { tome, precision: p }).graph;
  assertBound('tiny UNet + ToMe', await compare(build, { sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') }));
});

test('ControlNet, plain and with the conv island (WebGPU\'s default): fp16 within the bound of fp32', async () => {
  const cfg = tinyConfig('controlnet');
  const src = await tinyWeights('controlnet', 'diffusion_pytorch_model.fp16.safetensors');
  const scales = controlnetScales(cfg, 0.8, false);
  const feeds = {
    sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states'),
    controlnet_cond: f32(fx, 'controlnet_cond'), conditioning_scales: new ort.Tensor('float32', scales, [scales.length]),
  };
  assertBound('tiny ControlNet', await compare((p) => buildControlNet(cfg, src, { precision: p }).graph, feeds));
  // every Conv, the conditioning embedding's and the zero convs included, reads float32 in the island build
  const [n32, n] = convsReadingFloat32(buildControlNet(cfg, src, { precision: 'fp16', fp32Islands: ['conv'] }).graph);
  assert.ok(n > 0 && n32 === n, `${n32} of ${n} Conv nodes read float32 casts`);
  assert.equal(convsReadingFloat32(buildControlNet(cfg, src, { precision: 'fp16' }).graph)[0], 0);
  assert.ok(n > 2 * ((cfg.conditioning_embedding_out_channels ?? [16, 32, 96, 256]).length - 1) + 2, 'the conditioning embedding\'s convs are counted');
  assertBound('tiny ControlNet, conv island', await compare((p) => buildControlNet(cfg, src, { precision: p, fp32Islands: ['conv'] }).graph, feeds));
});

test('CLIP text encoder (causal mask at float16 min): fp16 within the bound of fp32', async () => {
  const cfx = loadFixture('tiny/clip_fwd');
  const src = await tinyWeights('sd15/text_encoder', 'model.safetensors');
  const cfg = tinyConfig('sd15/text_encoder');
  for (const skip of [0, 2]) {
    assertBound(`tiny CLIP skip ${skip}`, await compare((p) => buildClipText(cfg, src, { precision: p }).graph, { input_ids: i64(cfx, 'input_ids'), skip: scalarI64(skip) }));
  }
});

test('VAE: float32 in an fp16 pipeline when force_upcast (diffusers upcasts), float16 when the config clears it', async () => {
  const vfx = loadFixture('tiny/vae_fwd');
  const cfg = tinyConfig('sd15/vae');
  assert.equal(cfg.force_upcast, true);
  assert.equal(vaeFloatType(cfg, 'fp16'), 'float32');
  assert.equal(vaeFloatType({ ...cfg, force_upcast: undefined }, 'fp16'), 'float32'); // diffusers' default is true
  assert.equal(buildVaeDecoder(cfg, await tinyWeights('sd15/vae'), { precision: 'fp16' }).graph.floatType, 'float32');
  const noUpcast = { ...cfg, force_upcast: false };
  assert.equal(vaeFloatType(noUpcast, 'fp32'), 'float32');
  for (const fp32Islands of [[], ['conv']] as Fp32Island[][]) {
    const what = fp32Islands.length ? ', conv island' : '';
    const src = await tinyWeights('sd15/vae');
    assertBound(`tiny VAE decoder (no upcast${what})`, await compare((p) => buildVaeDecoder(noUpcast, src, { precision: p, fp32Islands }).graph, { latent: f32(vfx, 'latent') }));
    const src2 = await tinyWeights('sd15/vae');
    assertBound(`tiny VAE encoder (no upcast${what})`, await compare((p) => buildVaeEncoder(noUpcast, src2, { precision: p, fp32Islands }).graph, { sample: f32(vfx, 'image') }));
  }
  // the island build computes every Conv (quant_conv / post_quant_conv included) on float32 casts
  for (const build of [buildVaeDecoder, buildVaeEncoder]) {
    const [n32, n] = convsReadingFloat32(build(noUpcast, await tinyWeights('sd15/vae'), { precision: 'fp16', fp32Islands: ['conv'] }).graph);
    assert.ok(n > 0 && n32 === n, `${build.name}: ${n32} of ${n} Conv nodes read float32 casts`);
    assert.equal(convsReadingFloat32(build(noUpcast, await tinyWeights('sd15/vae'), { precision: 'fp16' }).graph)[0], 0);
  }
  // a VAE kept float32 by force_upcast has nothing to island
  assert.equal(convsReadingFloat32(buildVaeDecoder(cfg, await tinyWeights('sd15/vae'), { precision: 'fp16', fp32Islands: ['conv'] }).graph)[0], 0);
});

/** Seeded normals (mulberry32 + Box-Muller). */
function randn(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** An in-memory weight source: matrices ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²). */
function randomSource(shapes: Record<string, number[]>, seed: number): WeightSource {
  const r = randn(seed);
  const data = new Map<string, Float32Array>();
  for (const [k, s] of Object.entries(shapes)) {
    const n = s.reduce((a, b) => a * b, 1);
    const std = s.length > 1 ? 1 / Math.sqrt(n / s[0]!) : 0.1;
    const base = s.length === 1 && k.endsWith('.weight') ? 1 : 0;
    data.set(k, Float32Array.from({ length: n }, () => base + r() * std));
  }
  return {
    keys: () => [...data.keys()],
    info: (k) => (shapes[k] ? { dtype: 'float32', shape: shapes[k]! } : undefined),
    readF32: async (k) => data.get(k)!,
    fingerprint: () => `random-${seed}`,
  };
}

/** SD 1.5's down_blocks.1 first layer: ResnetBlock2D 320 → 640 and Transformer2DModel (640 channels, 8 heads). */
function sd15DownBlock1Shapes(): Record<string, number[]> {
  const p = 'down_blocks.1.resnets.0', a = 'down_blocks.1.attentions.0', t = `${a}.transformer_blocks.0`;
  const s: Record<string, number[]> = {
    [`${p}.norm1.weight`]: [320], [`${p}.norm1.bias`]: [320], [`${p}.conv1.weight`]: [640, 320, 3, 3], [`${p}.conv1.bias`]: [640],
    [`${p}.time_emb_proj.weight`]: [640, 1280], [`${p}.time_emb_proj.bias`]: [640], [`${p}.norm2.weight`]: [640], [`${p}.norm2.bias`]: [640],
    [`${p}.conv2.weight`]: [640, 640, 3, 3], [`${p}.conv2.bias`]: [640], [`${p}.conv_shortcut.weight`]: [640, 320, 1, 1], [`${p}.conv_shortcut.bias`]: [640],
    [`${a}.norm.weight`]: [640], [`${a}.norm.bias`]: [640], [`${a}.proj_in.weight`]: [640, 640, 1, 1], [`${a}.proj_in.bias`]: [640],
    [`${a}.proj_out.weight`]: [640, 640, 1, 1], [`${a}.proj_out.bias`]: [640],
    [`${t}.ff.net.0.proj.weight`]: [5120, 640], [`${t}.ff.net.0.proj.bias`]: [5120], [`${t}.ff.net.2.weight`]: [640, 2560], [`${t}.ff.net.2.bias`]: [640],
  };
  for (const n of ['norm1', 'norm2', 'norm3']) Object.assign(s, { [`${t}.${n}.weight`]: [640], [`${t}.${n}.bias`]: [640] });
  for (const at of ['attn1', 'attn2']) {
    const kv = at === 'attn1' ? 640 : 768;
    Object.assign(s, {
      [`${t}.${at}.to_q.weight`]: [640, 640], [`${t}.${at}.to_k.weight`]: [640, kv], [`${t}.${at}.to_v.weight`]: [640, kv],
      [`${t}.${at}.to_out.0.weight`]: [640, 640], [`${t}.${at}.to_out.0.bias`]: [640],
    });
  }
  return s;
}

test('full-size SD 1.5 block (down_blocks.1 resnet + transformer at 32×32, 77 tokens): fp16 within the bound of fp32', async () => {
  const src = randomSource(sd15DownBlock1Shapes(), 7);
  const build = (p: Precision): GraphBuilder => {
    const g = new GraphBuilder('block', { floatType: floatTypeOf(p) });
    const n = new Net(g, new WeightReader(src, 'block'), false);
    const x = g.toFloat(g.input('x', 'float32', [1, 320, 32, 32]));
    const temb = g.toFloat(g.input('temb', 'float32', [1, 1280]));
    const ehs = g.toFloat(g.input('ehs', 'float32', [1, 77, 768]));
    let h = n.withLora(() => resnetBlock(n, x, temb, 'down_blocks.1.resnets.0', { groups: 32, eps: 1e-5, channels: 640 }));
    h = transformer2d(n, h, ehs, 'down_blocks.1.attentions.0', { heads: 8, groups: 32, layers: 1, linearProjection: false });
    g.output(g.fromFloat(h), 'y', 'float32');
    n.w.assertAllUsed();
    return g;
  };
  const r = randn(11);
  const t = (dims: number[], scale = 1) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r() * scale), dims);
  assertBound('SD 1.5 down_blocks.1 (resnet + transformer)', await compare(build, { x: t([1, 320, 32, 32]), temb: t([1, 1280]), ehs: t([1, 77, 768]) }));
});

test('GroupNorm statistics are float32 in an fp16 graph: groups of 8192 values near 30 stay exact', async () => {
  // Σx² over one group is ≈ 7e6, past float16's 65504: a float16 accumulation would give inf / NaN.
  const r = randn(3);
  const src: WeightSource = {
    keys: () => ['gn.weight', 'gn.bias'],
    info: () => ({ dtype: 'float32', shape: [64] }),
    readF32: async (k) => new Float32Array(64).fill(k === 'gn.weight' ? 1 : 0),
    fingerprint: () => 'gn',
  };
  const build = (ft: FloatType): GraphBuilder => {
    const g = new GraphBuilder('gn', { floatType: ft });
    const n = new Net(g, new WeightReader(src, 'gn'), false);
    g.output(g.fromFloat(groupNorm(n, g.toFloat(g.input('x', 'float32', [1, 64, 32, 32])), 'gn', 8, 1e-5)), 'y', 'float32');
    return g;
  };
  // inputs already float16-exact, so both graphs see the same values
  const x = new Float32Array(64 * 32 * 32).map(() => Math.round((30 + r()) * 32) / 32);
  const feeds = { x: new ort.Tensor('float32', x, [1, 64, 32, 32]) };
  const y32 = (await (await sessionFor(build('float32'))).run(feeds)).y!.data as Float32Array;
  const y16 = (await (await sessionFor(build('float16'))).run(feeds)).y!.data as Float32Array;
  const err = relL2(y16, y32);
  console.log(`GroupNorm of values near 30: fp16 vs fp32 relative L2 error ${err.toExponential(2)}`);
  // only the output's rounding to float16 remains (≤ u relative per element)
  assert.ok(err <= 1e-3, `relative L2 error ${err}`);
});

test('the precision is part of the compiled-graph cache key (a VAE kept float32 by force_upcast shares the fp32 entry)', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { compileNetwork, openBaseModel } = await import('../../../src/engine/models/load.ts');
  const cache = mkdtempSync(join(tmpdir(), 'fp16-cache-'));
  const { tinyDataDir } = await import('../../support/tiny-models.ts');
  const data = tinyDataDir();
  try {
    // the tiny SD folder carries no tokenizer: laid out with the tiny vocabulary, as the models folder has it
    const base = await openBaseModel(join(data, 'models', 'base', 'tiny'));
    const c32 = await compileNetwork(cache, 'clip-text', base.textEncoder);
    const c16 = await compileNetwork(cache, 'clip-text', base.textEncoder, { precision: 'fp16' });
    assert.notEqual(c16.path, c32.path);
    assert.equal(c16.built, true);
    assert.equal((await compileNetwork(cache, 'clip-text', base.textEncoder, { precision: 'fp16' })).built, false);
    // fp32 islands: a separate entry for an fp16 UNet, whatever their order (so graphs built before WebGPU's conv
    // island was a default are not reused), and none for an fp32 one
    const u16 = await compileNetwork(cache, 'unet', base.unet, { precision: 'fp16' });
    const ua = await compileNetwork(cache, 'unet', base.unet, { precision: 'fp16', fp32Islands: ['conv', 'attention'] });
    assert.notEqual(ua.path, u16.path);
    assert.equal((await compileNetwork(cache, 'unet', base.unet, { precision: 'fp16', fp32Islands: ['attention', 'conv'] })).path, ua.path);
    assert.equal((await compileNetwork(cache, 'unet', base.unet, { precision: 'fp16', fp32Islands: [] })).path, u16.path);
    const uc = await compileNetwork(cache, 'unet', base.unet, { precision: 'fp16', fp32Islands: ['conv'] });
    assert.ok(uc.path !== u16.path && uc.path !== ua.path);
    const u32 = await compileNetwork(cache, 'unet', base.unet);
    assert.equal((await compileNetwork(cache, 'unet', base.unet, { fp32Islands: ['conv'] })).path, u32.path);
    // the ControlNet's entry too
    const cn = { config: tinyConfig('controlnet'), weights: await tinyWeights('controlnet', 'diffusion_pytorch_model.fp16.safetensors'), origin: 'controlnet' };
    const cn16 = await compileNetwork(cache, 'controlnet', cn, { precision: 'fp16' });
    assert.notEqual((await compileNetwork(cache, 'controlnet', cn, { precision: 'fp16', fp32Islands: ['conv'] })).path, cn16.path);
    // islands that do not change a graph leave its entry alone: CLIP has no Conv and calls mha directly
    assert.equal((await compileNetwork(cache, 'clip-text', base.textEncoder, { precision: 'fp16', fp32Islands: ['conv', 'attention'] })).path, c16.path);
    const v32 = await compileNetwork(cache, 'vae-decoder', base.vae);
    const v16 = await compileNetwork(cache, 'vae-decoder', base.vae, { precision: 'fp16' });
    assert.equal(v16.path, v32.path);
    assert.equal(v16.built, false);
    // force_upcast keeps it float32 whatever the islands; a float16 VAE gets its own entry with the conv island
    assert.equal((await compileNetwork(cache, 'vae-decoder', base.vae, { precision: 'fp16', fp32Islands: ['conv'] })).path, v32.path);
    const vae16 = { ...base.vae, config: { ...base.vae.config, force_upcast: false } };
    const vd16 = await compileNetwork(cache, 'vae-decoder', vae16, { precision: 'fp16' });
    const vdConv = await compileNetwork(cache, 'vae-decoder', vae16, { precision: 'fp16', fp32Islands: ['conv'] });
    assert.ok(vd16.path !== v32.path && vdConv.path !== vd16.path);
    assert.equal((await compileNetwork(cache, 'vae-decoder', vae16, { precision: 'fp16', fp32Islands: ['attention', 'conv'] })).path, vdConv.path);
    assert.notEqual((await compileNetwork(cache, 'vae-encoder', vae16, { precision: 'fp16', fp32Islands: ['conv'] })).path,
      (await compileNetwork(cache, 'vae-encoder', vae16, { precision: 'fp16' })).path);
  } finally {
    rmSync(cache, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  }
});

test('upcast_attention (SD 2.1\'s UNet): in fp16 every attention runs on float32 q, k, v, within the bound of fp32', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const cfg = { ...tinyConfig('sd15/unet'), upcast_attention: true };
  const build = (p: Precision) => buildUNet(cfg, src, { precision: p }).graph;
  const g16 = build('fp16');
  const producer = new Map(g16.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const attentions = g16.nodes.filter((n) => n.opType === 'MultiHeadAttention');
  assert.ok(attentions.length > 0);
  for (const a of attentions) {
    for (const input of a.inputs.slice(0, 3)) {
      const p = producer.get(input)!;
      assert.deepEqual([p.opType, p.attrs.to], ['Cast', DataType.float32], `${a.name}: input ${input} is cast to float32`);
    }
  }
  // without upcast_attention the fp16 graph attends in float16 (no casts around MultiHeadAttention)
  const plain = buildUNet(tinyConfig('sd15/unet'), src, { precision: 'fp16' }).graph;
  const plainProducer = new Map(plain.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  assert.ok(plain.nodes.filter((n) => n.opType === 'MultiHeadAttention').every((a) => plainProducer.get(a.inputs[0]!)!.opType !== 'Cast'));
  const feeds = { sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') };
  assertBound('tiny UNet, upcast_attention', await compare(build, feeds));
});

