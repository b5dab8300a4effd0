// Builds a 3.4 GB fp32 random-weight graph with our builder, then times: first start (build + write + load) and
// second start (cache hit: load only). Prints seconds and GB/s. Run: node --import tsx bench/graph-build-load.ts
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../src/engine/onnx/graph.ts';
import { compiledModel, createSession, ort } from '../src/engine/onnx/session.ts';

const N = 2560; // weights are N x N fp32 (26.2 MB each)
const COUNT = Math.ceil(3.4e9 / (N * N * 4));
const cacheDir = mkdtempSync(join(tmpdir(), 'bench-graph-'));

function randomWeights(seed: number): Float32Array {
  // xorshift32: fast, deterministic; the values only need to be finite and small
  const a = new Float32Array(N * N);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296 - 0.5) * (2 / N);
  }
  return a;
}

function build(): GraphBuilder {
  const g = new GraphBuilder('big');
  let x = g.input('x', 'float32', [1, N]);
  for (let i = 0; i < COUNT; i++) x = g.op('MatMul', [x, g.weight(`w${i}`, 'float32', [N, N], () => randomWeights(i))]);
  g.output(x, 'y', 'float32', [1, N]);
  return g;
}

async function start(label: string): Promise<void> {
  const t0 = performance.now();
  const { path, built } = await compiledModel(cacheDir, { bench: 'big', N, COUNT }, build);
  const t1 = performance.now();
  const s = await createSession(path, { provider: 'cpu', cacheDir });
  const t2 = performance.now();
  await s.run({ x: new ort.Tensor('float32', new Float32Array(N).fill(0.01), [1, N]) });
  const t3 = performance.now();
  await s.release();
  const gb = statSync(`${path}.data`).size / 1e9;
  console.log(`${label}: ${built ? 'built+wrote' : 'cache hit'} ${((t1 - t0) / 1000).toFixed(1)} s, load ${((t2 - t1) / 1000).toFixed(1)} s ` +
    `(${(gb / ((t2 - t1) / 1000)).toFixed(2)} GB/s), first run ${((t3 - t2) / 1000).toFixed(2)} s, weights ${gb.toFixed(2)} GB in ${COUNT} tensors`);
}

try {
  await start('first start ');
  await start('second start');
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
