// Single-op conformance of the graph builder: each graph, run in ONNX Runtime, equals torch (tools/oracle/graph_ops.py).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, MS_DOMAIN, float, type Value } from '../../../src/engine/onnx/graph.ts';
import { compiledModel, createSession, ort } from '../../../src/engine/onnx/session.ts';
import { loadFixture, maxAbsDiff, type FixtureTensor } from '../../support/fixtures.ts';

const fx = loadFixture('onnx/ops');
const cacheDir = mkdtempSync(join(tmpdir(), 'graph-test-'));
const TOL = 1e-5;

function tensor(t: FixtureTensor): ort.Tensor {
  return t.data instanceof BigInt64Array ? new ort.Tensor('int64', t.data, t.shape) : new ort.Tensor('float32', t.data as Float32Array, t.shape);
}

/** Builds a graph whose inputs are the named fixture tensors, runs it once, returns its single output. */
async function run(inputs: string[], body: (g: GraphBuilder, xs: Value[]) => Value, weights: string[] = []): Promise<Float32Array> {
  const g = new GraphBuilder('op');
  const xs = inputs.map((k) => {
    const t = fx.get(k);
    return g.input(k.replace('.', '_'), t.dtype === 'int64' ? 'int64' : 'float32', t.shape);
  });
  const ws = weights.map((k) => g.weight(k, 'float32', fx.get(k).shape, fx.f32(k)));
  g.output(body(g, [...xs, ...ws]), 'y', 'float32');
  const { path } = await compiledModel(cacheDir, { inputs, weights, body: body.toString() }, () => g, { externalThreshold: 256 });
  const session = await createSession(path, { provider: 'cpu', cacheDir, threads: 1 });
  const feeds = Object.fromEntries(inputs.map((k) => [k.replace('.', '_'), tensor(fx.get(k))]));
  const out = await session.run(feeds);
  await session.release();
  return out.y!.data as Float32Array;
}

const errors: string[] = [];
after(() => console.log(`# single-op max abs errors vs torch: ${errors.join(', ')}`));

function close(name: string, got: Float32Array, want: string): void {
  const d = maxAbsDiff(got, fx.f32(want));
  errors.push(`${name} ${d.toExponential(1)}`);
  assert.ok(d <= TOL, `${name}: max abs error ${d} > ${TOL}`);
}

test('Conv 3x3 with padding, stride 1 and 2 (weights as external data)', async () => {
  close('conv s1', await run(['conv.x'], (g, [x, w, b]) => g.op('Conv', [x!, w!, b!], { pads: [1, 1, 1, 1] }), ['conv.w', 'conv.b']), 'conv.y1');
  close('conv s2', await run(['conv.x'], (g, [x, w, b]) => g.op('Conv', [x!, w!, b!], { pads: [1, 1, 1, 1], strides: [2, 2] }), ['conv.w', 'conv.b']), 'conv.y2');
});

test('GroupNormalization (opset 21) equals torch group_norm', async () => {
  close('gn', await run(['gn.x'], (g, [x, s, b]) => g.op('GroupNormalization', [x!, s!, b!], { num_groups: 4, epsilon: 1e-6 }), ['gn.scale', 'gn.bias']), 'gn.y');
});

test('LayerNormalization and Linear', async () => {
  close('ln', await run(['ln.x'], (g, [x, s, b]) => g.op('LayerNormalization', [x!, s!, b!], { axis: -1, epsilon: 1e-5 }), ['ln.scale', 'ln.bias']), 'ln.y');
  close('linear', await run(['lin.x'], (g, [x, w, b]) => g.op('Add', [g.op('MatMul', [x!, g.op('Transpose', [w!], { perm: [1, 0] })]), b!]), ['lin.w', 'lin.b']), 'lin.y');
});

test('com.microsoft MultiHeadAttention equals scaled_dot_product_attention', async () => {
  close('mha', await run(['mha.q', 'mha.k', 'mha.v'], (g, [q, k, v]) => g.op('MultiHeadAttention', [q!, k!, v!], { num_heads: 4 }, { domain: MS_DOMAIN })), 'mha.y');
});

test('activations: Gelu (erf and tanh), SiLU, Softmax', async () => {
  close('gelu', await run(['act.x'], (g, [x]) => g.op('Gelu', [x!])), 'act.gelu');
  close('gelu tanh', await run(['act.x'], (g, [x]) => g.op('Gelu', [x!], { approximate: 'tanh' })), 'act.gelu_tanh');
  close('silu', await run(['act.x'], (g, [x]) => g.op('Mul', [x!, g.op('Sigmoid', [x!])])), 'act.silu');
  close('softmax', await run(['act.x'], (g, [x]) => g.op('Softmax', [x!], { axis: -1 })), 'act.softmax');
});

test('nearest 2x Resize equals F.interpolate(mode="nearest")', async () => {
  close('upsample', await run(['up.x'], (g, [x]) => g.op('Resize', [x!, '', g.f32([1, 1, 2, 2])], { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' })), 'up.y');
});

test('Gather embedding with int64 ids', async () => {
  close('embedding', await run(['emb.ids'], (g, [ids, table]) => g.op('Gather', [table!, ids!], { axis: 0 }), ['emb.table']), 'emb.y');
});

test('sinusoidal timestep embedding in float32, op for op as diffusers', async () => {
  const y = await run(['temb.t'], (g, [t]) => {
    const half = 16;
    const arange = g.f32(Array.from({ length: half }, (_, i) => i));
    const exponent = g.op('Div', [g.op('Mul', [arange, g.scalar(-Math.log(10000))]), g.scalar(half)]);
    const args = g.op('Mul', [g.op('Unsqueeze', [t!, g.i64([1])]), g.op('Unsqueeze', [g.op('Exp', [exponent]), g.i64([0])])]);
    return g.op('Concat', [g.op('Cos', [args]), g.op('Sin', [args])], { axis: -1 });
  });
  close('timestep embedding', y, 'temb.y');
});

test('whole-number float attributes are written as FLOAT (float())', async () => {
  const y = await run(['gn.x'], (g, [x, s, b]) => g.op('GroupNormalization', [x!, s!, b!], { num_groups: 4, epsilon: float(1) }), ['gn.scale', 'gn.bias']);
  const ref = await run(['gn.x'], (g, [x, s, b]) => g.op('GroupNormalization', [x!, s!, b!], { num_groups: 4, epsilon: 0.999999 }), ['gn.scale', 'gn.bias']);
  assert.ok(maxAbsDiff(y, ref) < 1e-4);
  assert.ok(maxAbsDiff(y, fx.f32('gn.y')) > 1e-3, 'epsilon 1 must differ from epsilon 1e-6');
});
