// bench/gpu/profile-summary.ts on a profile shaped as ONNX Runtime 1.30 writes one for the WebGPU EP (two runs, a
// node fallen back to the CPU EP with its copies, timestamped GPU kernels), and on a real CPU-provider profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { summarizeProfile, type ProfileEvent } from '../../bench/gpu/profile-summary.ts';
import { GraphBuilder } from '../../src/engine/onnx/graph.ts';
import { writeModel } from '../../src/engine/onnx/serialize.ts';

const node = (name: string, op: string, provider: string, dur: number): ProfileEvent =>
  ({ cat: 'Node', name: `${name}_kernel_time`, dur, args: { op_name: op, provider } });
const gpu = (name: string, op: string, program: string, dur: number): ProfileEvent =>
  ({ cat: 'Api', name: `${name}&${op}&${program}`, dur, args: { shapes: '', cache_key: `${program}[...]` } });

test('profile summary: nodes per provider, fallbacks and their copies, op types and programs by GPU time per run', () => {
  const W = 'WebGpuExecutionProvider';
  const run = (): ProfileEvent[] => [
    { cat: 'Session', name: 'model_run', dur: 5000 },
    node('conv_in', 'Conv', W, 30), { cat: 'Node', name: 'conv_in_fence_before', dur: 1, args: { op_name: 'Conv' } },
    node('mm', 'MatMul', W, 20), node('cpy_out', 'MemcpyToHost', W, 5), node('erf', 'Erf', 'CPUExecutionProvider', 400),
    node('cpy_in', 'MemcpyFromHost', W, 6),
    gpu('conv_in', 'Conv', 'Conv2DMatMul', 1000), gpu('conv_in', 'Conv', 'Transpose', 200), gpu('mm', 'MatMul', 'MatMul', 300),
    gpu('cpy_in', 'MemcpyFromHost', 'Copy', 50),
  ];
  const s = summarizeProfile([{ cat: 'Session', name: 'model_loading_uri', dur: 9 }, ...run(), ...run()], 'webgpu');
  assert.equal(s.runs, 2);
  assert.equal(s.requestedProvider, W);
  assert.deepEqual(s.nodesByProvider, { [W]: 4, CPUExecutionProvider: 1 });
  assert.deepEqual(s.offProviderOps, { Erf: 1 });
  assert.equal(s.offProviderMsPerRun, 0.4);
  assert.equal(s.memcpyNodes, 2);
  assert.equal(s.cpuSideMsPerRun, (30 + 20 + 5 + 400 + 6) / 1000);
  assert.deepEqual(s.opsByCpuSideTime[0], { name: 'Erf', msPerRun: 0.4, perRun: 1 });
  assert.equal(s.gpuEvents, 8);
  assert.equal(s.gpuMsPerRun, 1.55);
  assert.deepEqual(s.opsByGpuTime.map((r) => [r.name, r.msPerRun, r.perRun]), [['Conv', 1.2, 2], ['MatMul', 0.3, 1], ['MemcpyFromHost', 0.05, 1]]);
  assert.deepEqual(s.programsByGpuTime.map((r) => r.name), ['Conv2DMatMul', 'MatMul', 'Transpose', 'Copy']);
});

test('profile summary of a real ONNX Runtime profile (CPU provider): every node on the CPU EP, no GPU times', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'profile-summary-'));
  try {
    const g = new GraphBuilder('p');
    const x = g.input('x', 'float32', [2, 8]);
    g.output(g.op('Relu', [g.op('MatMul', [x, g.f32(new Float32Array(64).fill(0.5), [8, 8])])]), 'y', 'float32', [2, 8]);
    await writeModel(g, join(dir, 'm.onnx'));
    const s = await ort.InferenceSession.create(join(dir, 'm.onnx'), { enableProfiling: true, profileFilePrefix: join(dir, 'prof') });
    for (let i = 0; i < 3; i++) await s.run({ x: new ort.Tensor('float32', new Float32Array(16).fill(1), [2, 8]) });
    s.endProfiling();
    await s.release();
    const file = readdirSync(dir).find((f) => f.startsWith('prof') && f.endsWith('.json'));
    assert.ok(file, 'a profile was written');
    const sum = summarizeProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')), 'cpu');
    assert.equal(sum.runs, 3);
    assert.deepEqual(Object.keys(sum.nodesByProvider), ['CPUExecutionProvider']);
    assert.deepEqual(sum.offProviderOps, {});
    assert.equal(sum.gpuEvents, 0);
    assert.equal(sum.gpuMsPerRun, null);
    assert.ok(sum.opsByCpuSideTime.every((r) => r.perRun === 1), JSON.stringify(sum.opsByCpuSideTime));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
