// tomeMergeFns against tomesd 0.1.3 (tools/oracle/tome.py): merge, unmerge and their round trip, with the
// token grid given as graph inputs (one graph for every size) and as numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../../../src/engine/onnx/graph.ts';
import { writeModel } from '../../../src/engine/onnx/serialize.ts';
import { TOME_RAND_INPUT, tomeAppliesAt, tomeDownsample, tomeMergeFns, tomeMergeFnsFedRand, tomeRandTable, type TomeMergeOptions } from '../../../src/engine/models/tome.ts';
import { loadFixture, maxAbsDiff, type Fixture } from '../../support/fixtures.ts';

async function session(g: GraphBuilder): Promise<ort.InferenceSession> {
  const dir = mkdtempSync(join(tmpdir(), 'tome-test-'));
  try {
    const file = join(dir, 'model.onnx');
    await writeModel(g, file);
    return await ort.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** x, v, u → merged v, unmerged u, unmerge(merge(v)); h, w as graph inputs or baked numbers. */
function tomeGraph(opts: TomeMergeOptions, fixed?: { h: number; w: number }, randTable = false): GraphBuilder {
  const g = new GraphBuilder('tome');
  const x = g.input('x', 'float32', ['B', 'N', 'C']);
  const v = g.input('v', 'float32', ['B', 'N', 'c']);
  const u = g.input('u', 'float32', ['B', 'M', 'c']);
  const hw = fixed ?? { h: g.input('h', 'int64', []), w: g.input('w', 'int64', []) };
  const table = randTable ? g.input('rand_table', 'int64', ['L']) : undefined;
  const t = tomeMergeFns(g, x, hw, { ...opts, randTable: table });
  const merged = t.merge(v);
  g.output(merged, 'merged', 'float32', ['B', 'M', 'c']);
  g.output(t.unmerge(u), 'unmerged', 'float32', ['B', 'N', 'c']);
  g.output(t.unmerge(merged), 'roundtrip', 'float32', ['B', 'N', 'c']);
  return g;
}

const tensor = (fx: Fixture, k: string) => new ort.Tensor('float32', fx.f32(k), fx.get(k).shape);

/**
 * The merged tensor lists the dst tokens after the unmerged ones. We keep dst in token order; tomesd keeps them
 * in the order torch's unstable CPU argsort leaves them (saved as b_idx). Attention between merge and unmerge
 * does not depend on that order, so the test maps rows through it: ours[unm + k] ↔ tomesd[unm + j] where
 * b_idx[j] is the k-th smallest dst position.
 */
function dstOrder(fx: Fixture): number[] {
  const bIdx = [...(fx.get('b_idx').data as BigInt64Array)].map(Number);
  const sorted = [...bIdx].sort((a, b) => a - b);
  return bIdx.map((p) => sorted.indexOf(p)); // tomesd's j → our k
}

/** Moves the dst rows of a merged [B, M, c] tensor between tomesd's order and ours. */
function reorderDst(data: Float32Array, dims: readonly number[], order: number[], toOurs: boolean): Float32Array {
  const [B, M, c] = dims as [number, number, number];
  const unm = M - order.length;
  const out = data.slice();
  for (let b = 0; b < B; b++) {
    order.forEach((k, j) => {
      const [from, to] = toOurs ? [j, k] : [k, j];
      out.set(data.subarray((b * M + unm + from) * c, (b * M + unm + from + 1) * c), (b * M + unm + to) * c);
    });
  }
  return out;
}

async function check(s: ort.InferenceSession, fx: Fixture, extra: Record<string, ort.Tensor> = {}): Promise<number> {
  const order = dstOrder(fx);
  const uDims = fx.get('u').shape;
  const feeds: Record<string, ort.Tensor> = {
    x: tensor(fx, 'x'), v: tensor(fx, 'v'), u: new ort.Tensor('float32', reorderDst(fx.f32('u'), uDims, order, true), uDims), ...extra,
  };
  if (s.inputNames.includes('h')) {
    feeds.h = new ort.Tensor('int64', BigInt64Array.of(BigInt(fx.meta.h)), []);
    feeds.w = new ort.Tensor('int64', BigInt64Array.of(BigInt(fx.meta.w)), []);
  }
  const out = await s.run(feeds);
  let worst = 0;
  for (const k of ['merged', 'unmerged', 'roundtrip']) {
    assert.deepEqual(out[k]!.dims, fx.get(k).shape, `${k} shape`);
    let ours = out[k]!.data as Float32Array;
    if (k === 'merged') ours = reorderDst(ours, out[k]!.dims, order, false);
    const err = maxAbsDiff(ours, fx.f32(k));
    assert.ok(err <= 1e-5, `${k}: max abs ${err}`);
    worst = Math.max(worst, err);
  }
  return worst;
}

const CASES = ['g64_norand', 'g64_rand', 'g9x7_rand', 'g17x13_r03', 'g8_r075_rand', 'g12x10_s3x2_rand', 'g5_odd_batch'];
const optsOf = (fx: Fixture): TomeMergeOptions => ({ ratio: fx.meta.ratio, sx: fx.meta.sx, sy: fx.meta.sy, useRand: fx.meta.use_rand, seed: fx.meta.seed });

test('ToMe merge / unmerge equal tomesd within 1e-5 (h, w as graph inputs)', async () => {
  // One graph per option set, run on every grid size that uses it: the partition is computed at run time.
  const sessions = new Map<string, ort.InferenceSession>();
  for (const name of CASES) {
    const fx = loadFixture(`tome/${name}`);
    const key = JSON.stringify(optsOf(fx));
    if (!sessions.has(key)) sessions.set(key, await session(tomeGraph(optsOf(fx))));
    const err = await check(sessions.get(key)!, fx);
    console.log(`${name} (${fx.meta.h}x${fx.meta.w}, ratio ${fx.meta.ratio}, r ${fx.meta.r}, rand ${fx.meta.use_rand}): max abs ${err.toExponential(2)}`);
  }
});

test('ToMe with h, w baked as numbers, and with the random table fed at run time', async () => {
  for (const name of ['g9x7_rand', 'g17x13_r03']) {
    const fx = loadFixture(`tome/${name}`);
    await check(await session(tomeGraph(optsOf(fx), { h: fx.meta.h, w: fx.meta.w })), fx);
  }
  const fx = loadFixture('tome/g12x10_s3x2_rand');
  const table = tomeRandTable(fx.meta.seed, fx.meta.sx, fx.meta.sy, 100);
  await check(await session(tomeGraph(optsOf(fx), undefined, true)), fx, { rand_table: new ort.Tensor('int64', table, [100]) });
  // A different table picks different dst tokens: the comparison fails (the check is not vacuous).
  const other = tomeRandTable(fx.meta.seed + 1, fx.meta.sx, fx.meta.sy, 100);
  await assert.rejects(check(await session(tomeGraph(optsOf(fx), undefined, true)), fx, { rand_table: new ort.Tensor('int64', other, [100]) }));
});

test('tomeRandTable reproduces torch.randint on a seeded generator', () => {
  const fx = loadFixture('tome/randint');
  const same = (a: BigInt64Array, b: BigInt64Array) => assert.deepEqual([...a], [...b]);
  same(tomeRandTable(42, 2, 2, 64), fx.get('seed42_range4').data as BigInt64Array);
  same(tomeRandTable(7, 3, 2, 64), fx.get('seed7_range6').data as BigInt64Array);
  same(tomeRandTable(1234, 2, 2, 1024), fx.get('seed1234_range4_grid').data as BigInt64Array);
});

test('tomeAppliesAt follows compute_merge: downsample = ceil(sqrt(original tokens // tokens))', () => {
  const rows = loadFixture('tome/downsample_rule').get('rows').data as BigInt64Array;
  for (let i = 0; i < rows.length; i += 4) {
    const [oh, ow, tokens, ds] = [...rows.subarray(i, i + 4)].map(Number) as [number, number, number, number];
    assert.equal(tomeDownsample(oh, ow, tokens), ds, `${oh}x${ow} at ${tokens} tokens`);
    assert.equal(tomeAppliesAt(oh, ow, tokens, 1), ds <= 1);
    assert.equal(tomeAppliesAt(oh, ow, tokens, 2), ds <= 2);
  }
  assert.equal(tomeAppliesAt(64, 64, 4096, 1), true);
  assert.equal(tomeAppliesAt(64, 64, 1024, 1), false);
});

test('ToMe with r = 0 (tiny grid, small ratio): nothing merged, unmerge(merge(v)) = v', async () => {
  const g = tomeGraph({ ratio: 0.01, sx: 2, sy: 2, useRand: true, seed: 3 });
  const s = await session(g);
  const [B, N, c] = [2, 25, 3];
  const v = Float32Array.from({ length: B * N * c }, (_, i) => Math.sin(i));
  const out = await s.run({
    x: new ort.Tensor('float32', Float32Array.from({ length: B * N * 4 }, (_, i) => Math.cos(i * 0.37)), [B, N, 4]),
    v: new ort.Tensor('float32', v, [B, N, c]),
    u: new ort.Tensor('float32', v, [B, N, c]),
    h: new ort.Tensor('int64', BigInt64Array.of(5n), []),
    w: new ort.Tensor('int64', BigInt64Array.of(5n), []),
  });
  assert.deepEqual(out.merged!.dims, [B, N, c]);
  assert.equal(maxAbsDiff(out.roundtrip!.data as Float32Array, v), 0);
});

test('tomeMergeFnsFedRand: every block reads one tome_rand input; one graph serves every seed', async () => {
  const fx = loadFixture('tome/g9x7_rand');
  const g = new GraphBuilder('tome');
  const x = g.input('x', 'float32', ['B', 'N', 'C']);
  const v = g.input('v', 'float32', ['B', 'N', 'c']);
  const u = g.input('u', 'float32', ['B', 'M', 'c']);
  const hw = { h: g.input('h', 'int64', []), w: g.input('w', 'int64', []) };
  const t = tomeMergeFnsFedRand(g, x, hw, optsOf(fx));
  tomeMergeFnsFedRand(g, x, hw, optsOf(fx)); // a second block: no second input
  const merged = t.merge(v);
  g.output(merged, 'merged', 'float32', ['B', 'M', 'c']);
  g.output(t.unmerge(u), 'unmerged', 'float32', ['B', 'N', 'c']);
  g.output(t.unmerge(merged), 'roundtrip', 'float32', ['B', 'N', 'c']);
  assert.deepEqual(g.inputs.map((i) => i.name).filter((n) => n === TOME_RAND_INPUT), [TOME_RAND_INPUT]);
  const cells = Math.floor(fx.meta.h / fx.meta.sy) * Math.floor(fx.meta.w / fx.meta.sx);
  const table = tomeRandTable(fx.meta.seed, fx.meta.sx, fx.meta.sy, cells);
  await check(await session(g), fx, { [TOME_RAND_INPUT]: new ort.Tensor('int64', table, [cells]) });
});
