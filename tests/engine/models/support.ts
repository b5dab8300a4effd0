// Shared test plumbing: open the tiny models, build a graph into a temp folder, run it in ONNX Runtime.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { GraphBuilder } from '../../../src/engine/onnx/graph.ts';
import { writeModel } from '../../../src/engine/onnx/serialize.ts';
import { openSafetensors } from '../../../src/engine/weights/safetensors.ts';
import type { WeightSource } from '../../../src/engine/weights/types.ts';
import { FIXTURES, type Fixture } from '../../support/fixtures.ts';

export const TINY = join(FIXTURES, 'tiny');

export function tinyConfig(dir: string): any {
  return JSON.parse(readFileSync(join(TINY, dir, 'config.json'), 'utf8'));
}

export function tinyWeights(dir: string, file = 'diffusion_pytorch_model.safetensors'): Promise<WeightSource> {
  return openSafetensors(join(TINY, dir, file));
}

export type Feeds = Record<string, ort.Tensor>;

/** Writes the graph to a temp folder (external data like real builds) and returns a session on it. */
export async function sessionFor(graph: GraphBuilder): Promise<ort.InferenceSession> {
  const dir = mkdtempSync(join(tmpdir(), 'models-test-'));
  try {
    const file = join(dir, 'model.onnx');
    await writeModel(graph, file);
    return await ort.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function f32(fx: Fixture, key: string): ort.Tensor {
  const t = fx.get(key);
  return new ort.Tensor('float32', fx.f32(key), t.shape);
}

export function i64(fx: Fixture, key: string): ort.Tensor {
  const t = fx.get(key);
  return new ort.Tensor('int64', t.data as BigInt64Array, t.shape);
}

export function scalarI64(v: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), []);
}
