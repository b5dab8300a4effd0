// Token Merging for Stable Diffusion (tomesd 0.1.3) as ONNX ops: `bipartite_soft_matching_random2d` and the
// per-block rule of `compute_merge`. The token grid h × w may be numbers or graph values (dynamic latent size):
// the dst/src partition is computed in the graph, so one UNet graph serves every size.
//
// tomesd, for x [B, N, C] on an h × w grid, r = int(N · ratio):
//  - in every sy × sx cell one token is dst (the top-left one, or a random one with use_rand), the rest are
//    src; rows/columns beyond the last whole cell are src;
//  - each src token's most similar dst (cosine similarity of x) and that similarity are found; the r src
//    tokens with the highest similarity are merged into their dst (mean), the others stay;
//  - merge(v) = [unmerged src (by descending similarity), dst], unmerge puts every row back in place.
// One deliberate difference: our dst rows are in token order, tomesd's in the order torch's unstable CPU
// argsort happens to leave them; the rows and values are the same, and merge → attention → unmerge gives the
// same result either way (tested against tomesd with that permutation applied).
//
// Random dst choice: tomesd draws torch.randint(sy·sx, (h//sy, w//sx, 1)) from a generator forked from
// torch's global RNG, which advances with every block and step (not reproducible from a request seed).
// Here the draw is deterministic: by default the cells take the first h//sy · w//sx values of
// torch.randint(sy·sx, …, generator=torch.Generator().manual_seed(seed)) (mt19937 words mod sy·sx), the same
// for every block; or the caller feeds its own table as a graph input (`randTable`) to vary it per step.
// As in tomesd, an odd batch turns the random choice off (prompted and unprompted halves must match).
import type { GraphBuilder, Value } from '../onnx/graph.ts';
import { Mt19937 } from '../random/mt19937.ts';

export interface TomeMergeOptions {
  /** Fraction of tokens removed: r = int(N · ratio); at most 1 - 1 / (sx · sy). */
  ratio: number;
  /** A float64 scalar graph value read instead of `ratio` (one graph for every ratio; see TOME_RATIO_INPUT). */
  ratioValue?: Value;
  sx: number;
  sy: number;
  useRand: boolean;
  /** Seed of the random dst choice (useRand). Default 0. */
  seed?: number;
  /** An int64 graph value [L] with L ≥ (h // sy) · (w // sx), each in 0 .. sx·sy-1: the random dst choice, read
   *  row-major over the cells. Overrides `seed`; see tomeRandTable. */
  randTable?: Value;
}

export interface TokenMerge {
  merge(v: Value): Value;
  unmerge(v: Value): Value;
  /** int64 [B, N]: unmerge(v) gathers these rows of v seen as [B·(N - r), c]. */
  unmergeRows: Value;
}

/** Cells covered by the baked random table (enough for 4096 × 4096 images with 2 × 2 strides); a larger grid
 *  fails at run time with Gather's out-of-range index error. */
export const TOME_MAX_RAND_CELLS = 65536;

/** torch.randint(sx·sy, (cells,), generator=torch.Generator().manual_seed(seed)) as int64 (the row-major cell choices). */
export function tomeRandTable(seed: number, sx: number, sy: number, cells: number): BigInt64Array {
  const mt = new Mt19937(seed);
  const out = new BigInt64Array(cells);
  const range = sx * sy;
  // torch's CPU randint for ranges below 2^32: one 32-bit word per value, modulo the range.
  for (let i = 0; i < cells; i++) out[i] = BigInt(mt.nextUint32() % range);
  return out;
}

/** tomesd's compute_merge rule: the downsample factor of a block from its token count. */
export function tomeDownsample(originalH: number, originalW: number, tokens: number): number {
  return Math.ceil(Math.sqrt(Math.floor((originalH * originalW) / tokens)));
}

/** Whether tomesd merges tokens in a block with `tokens` tokens, for an original latent of originalH × originalW. */
export function tomeAppliesAt(originalH: number, originalW: number, tokens: number, maxDownsample: number): boolean {
  return tomeDownsample(originalH, originalW, tokens) <= maxDownsample;
}

/** Shared per-graph constants (the random table is large; every block uses the same one). */
const tableCache = new WeakMap<GraphBuilder, Map<string, Value>>();

function bakedTable(g: GraphBuilder, seed: number, sx: number, sy: number): Value {
  let m = tableCache.get(g);
  if (!m) tableCache.set(g, (m = new Map()));
  const key = `${seed}:${sx}:${sy}`;
  let v = m.get(key);
  if (!v) {
    v = g.const(tomeRandTable(seed, sx, sy, TOME_MAX_RAND_CELLS), [TOME_MAX_RAND_CELLS], 'int64', 'tome_rand');
    m.set(key, v);
  }
  return v;
}

/**
 * Emits tomesd's bipartite soft matching for tokens `x` [B, N, C] (N = h·w; x is also the similarity metric)
 * and returns merge / unmerge for any [B, N, c] / [B, N - r, c] tensor. h and w are numbers or int64 scalars.
 */
export function tomeMergeFns(g: GraphBuilder, x: Value, hw: { h: number | Value; w: number | Value }, opts: TomeMergeOptions): TokenMerge {
  const { sx, sy } = opts;
  if (!(sx >= 1 && sy >= 1 && Number.isInteger(sx) && Number.isInteger(sy))) throw new Error(`ToMe strides must be positive integers (sx ${sx}, sy ${sy})`);
  if (opts.ratioValue === undefined && !(opts.ratio >= 0 && opts.ratio < 1)) throw new Error(`ToMe ratio must be in [0, 1) (got ${opts.ratio})`);
  const s = (v: number): Value => g.i64([v], []); // int64 scalar
  const v1 = (v: number): Value => g.i64([v]); // int64 [1]
  const scalar = (v: number | Value): Value => (typeof v === 'number' ? s(v) : v);
  const op = g.op.bind(g);

  return g.scope('tome', () => {
    const h = scalar(hw.h), w = scalar(hw.w);
    const shapeX = op('Shape', [x]);
    const B = op('Gather', [shapeX, s(0)], { axis: 0 });
    const N = op('Gather', [shapeX, s(1)], { axis: 0 });
    const hsy = op('Div', [h, s(sy)]), wsx = op('Div', [w, s(sx)]);

    // The dst mask over the grid: inside a whole cell, at the cell's chosen position.
    const ys = op('Unsqueeze', [op('Range', [s(0), h, s(1)]), v1(1)]); // [h, 1]
    const xs = op('Unsqueeze', [op('Range', [s(0), w, s(1)]), v1(0)]); // [1, w]
    const inside = op('And', [op('Less', [ys, op('Mul', [hsy, s(sy)])]), op('Less', [xs, op('Mul', [wsx, s(sx)])])]);
    const cell = op('Add', [op('Mul', [op('Mod', [ys, s(sy)]), s(sx)]), op('Mod', [xs, s(sx)])]);
    let choice: Value;
    if (!opts.useRand) {
      choice = s(0);
    } else {
      const table = opts.randTable ?? bakedTable(g, opts.seed ?? 0, sx, sy);
      const ry = op('Min', [op('Div', [ys, s(sy)]), op('Sub', [hsy, s(1)])]);
      const rx = op('Min', [op('Div', [xs, s(sx)]), op('Sub', [wsx, s(1)])]);
      const drawn = op('Gather', [table, op('Add', [op('Mul', [ry, wsx]), rx])], { axis: 0 });
      const oddBatch = op('Equal', [op('Mod', [B, s(2)]), s(1)]);
      choice = op('Where', [oddBatch, s(0), drawn]);
    }
    const isDst = op('Reshape', [op('And', [inside, op('Equal', [cell, choice])]), v1(-1)]); // [N]
    // dst and src token positions in token order. tomesd takes them from torch's unstable argsort of a -1/0
    // buffer, whose order inside each set is not token order: our merged tensor lists the same dst rows in
    // another order. Attention between merge and unmerge is indifferent to it; unmerge restores positions.
    const bIdx = op('Reshape', [op('NonZero', [isDst]), v1(-1)]); // [Nd]
    const aIdx = op('Reshape', [op('NonZero', [op('Not', [isDst])]), v1(-1)]); // [Na]
    const Nd = op('Shape', [bIdx]), Na = op('Shape', [aIdx]); // [1]

    // Cosine similarity of every src to every dst, best dst per src, src ordered by that similarity.
    const metric = op('Div', [x, op('ReduceL2', [x, v1(-1)], { keepdims: 1 })]);
    const scores = op('MatMul', [
      op('Gather', [metric, aIdx], { axis: 1 }),
      op('Transpose', [op('Gather', [metric, bIdx], { axis: 1 })], { perm: [0, 2, 1] }),
    ]); // [B, Na, Nd]
    const nodeMax = op('ReduceMax', [scores, v1(-1)], { keepdims: 0 });
    const nodeIdx = op('ArgMax', [scores], { axis: -1, keepdims: 0 });
    const edge = g.opN('TopK', [nodeMax, Na], 2, { axis: -1, largest: 1, sorted: 1 })[1]!; // [B, Na]
    // r = int(N · ratio) in double precision as Python computes it, at most the number of src tokens.
    const ratio = opts.ratioValue ?? g.const(Float64Array.of(opts.ratio), [], 'float64', 'ratio');
    const rRaw = op('Cast', [op('Mul', [op('Cast', [N], { to: DOUBLE }), ratio])], { to: INT64 });
    const r = op('Min', [op('Unsqueeze', [rRaw, v1(0)]), Na]); // [1]
    const srcIdx = op('Slice', [edge, v1(0), r, v1(1)]); // [B, r]
    const unmIdx = op('Slice', [edge, r, v1(2 ** 53), v1(1)]); // [B, Na - r]
    const dstIdx = op('GatherElements', [nodeIdx, srcIdx], { axis: 1 }); // [B, r] in 0..Nd-1

    // Rows as flat indices into [B·N, c] (gathers of whole rows, no index tensors of size c).
    const batch = op('Unsqueeze', [op('Range', [s(0), B, s(1)]), v1(1)]); // [B, 1]
    const rowsOf = (pos: Value, per: Value) => op('Add', [pos, op('Mul', [batch, per])]);
    const unmRows = rowsOf(op('Gather', [aIdx, unmIdx], { axis: 0 }), N); // [B, Na - r]
    const srcRows = rowsOf(op('Gather', [aIdx, srcIdx], { axis: 0 }), N); // [B, r]
    const dstRows = op('Reshape', [rowsOf(op('Unsqueeze', [bIdx, v1(0)]), N), v1(-1)]); // [B·Nd]
    const B1 = op('Unsqueeze', [B, v1(0)]);
    const into = op('Unsqueeze', [rowsOf(dstIdx, Nd), v1(-1)]); // [B, r, 1] into [B·Nd, c]
    const one = { tensor: { dtype: 'float32' as const, dims: [1], data: Float32Array.of(1) } };
    // scatter_reduce 'mean' with include_self: (dst + Σ src) / (1 + count).
    const counts = op('ScatterND', [
      op('ConstantOfShape', [op('Concat', [op('Mul', [B1, Nd]), v1(1)], { axis: 0 })], { value: one }),
      into,
      op('ConstantOfShape', [op('Concat', [B1, r, v1(1)], { axis: 0 })], { value: one }),
    ], { reduction: 'add' }); // [B·Nd, 1]

    // unmerge: the row of the merged tensor each output token comes from, as one gather.
    const M = op('Sub', [N, op('Squeeze', [r, v1(0)])]); // rows per batch after merging
    const unmLen = op('Sub', [Na, r]); // [1]
    const perm = op('Concat', [
      op('Expand', [op('Unsqueeze', [bIdx, v1(0)]), op('Concat', [B1, Nd], { axis: 0 })]),
      op('Gather', [aIdx, unmIdx], { axis: 0 }),
      op('Gather', [aIdx, srcIdx], { axis: 0 }),
    ], { axis: 1 }); // [B, N]: token positions of the rows [dst, unm, src]
    const fromRow = op('Concat', [
      op('Expand', [op('Unsqueeze', [op('Add', [op('Range', [s(0), op('Squeeze', [Nd, v1(0)]), s(1)]), unmLen]), v1(0)]), op('Concat', [B1, Nd], { axis: 0 })]),
      op('Expand', [op('Unsqueeze', [op('Range', [s(0), op('Squeeze', [unmLen, v1(0)]), s(1)]), v1(0)]), op('Concat', [B1, unmLen], { axis: 0 })]),
      op('Add', [dstIdx, unmLen]),
    ], { axis: 1 }); // [B, N]: the merged row of each of those
    const source = op('ScatterElements', [op('ConstantOfShape', [op('Concat', [B1, op('Unsqueeze', [N, v1(0)])], { axis: 0 })], {
      value: { tensor: { dtype: 'int64', dims: [1], data: BigInt64Array.of(0n) } },
    }), perm, fromRow], { axis: 1 });
    const unmergeRows = rowsOf(source, M); // [B, N]

    const flat = (v: Value) => op('Reshape', [v, op('Concat', [v1(-1), op('Shape', [v], { start: 2 })], { axis: 0 })]);
    return {
      unmergeRows,
      merge(v: Value): Value {
        return g.scope('tome_merge', () => {
          const rows = flat(v);
          const c = op('Shape', [v], { start: 2 });
          const unm = op('Gather', [rows, unmRows], { axis: 0 }); // [B, Na - r, c]
          const src = op('Gather', [rows, srcRows], { axis: 0 }); // [B, r, c]
          const sum = op('ScatterND', [op('Gather', [rows, dstRows], { axis: 0 }), into, src], { reduction: 'add' });
          const dst = op('Reshape', [op('Div', [sum, counts]), op('Concat', [B1, Nd, c], { axis: 0 })]);
          return op('Concat', [unm, dst], { axis: 1 });
        });
      },
      unmerge(v: Value): Value {
        return g.scope('tome_unmerge', () => op('Gather', [flat(v), unmergeRows], { axis: 0 }));
      },
    };
  });
}

const DOUBLE = 11;
const INT64 = 7;

/** The graph input tomeMergeFnsFedRand reads the random dst choice from: int64 [cells]. */
export const TOME_RAND_INPUT = 'tome_rand';
const randInputs = new WeakMap<GraphBuilder, Value>();

/**
 * tomeMergeFns with the random dst choice read from one graph input `tome_rand` shared by every block, so a
 * single graph serves every seed (a baked seed makes a graph per seed). Feed
 * tomeRandTable(seed, sx, sy, ⌊h/sy⌋·⌊w/sx⌋) for the largest merging grid h × w (a longer table also works).
 */
export function tomeMergeFnsFedRand(g: GraphBuilder, x: Value, hw: { h: number | Value; w: number | Value }, opts: TomeMergeOptions): TokenMerge {
  if (!opts.useRand) return tomeMergeFns(g, x, hw, opts);
  let input = randInputs.get(g);
  if (!input) randInputs.set(g, (input = g.input(TOME_RAND_INPUT, 'int64', ['tome_cells'])));
  return tomeMergeFns(g, x, hw, { ...opts, randTable: input });
}

/** The graph input holding the merge ratio of a switchable ToMe UNet: float64 scalar; 0 turns merging off. */
export const TOME_RATIO_INPUT = 'tome_ratio';
