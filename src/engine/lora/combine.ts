// Turns the request's LoRAs into the graph's LoRA inputs. Each LoRA slot takes `down` [R,in], `up` [out,R] and a
// per-rank-row `scale` [R]; the graph adds up @ diag(scale) @ down to the weight (models/layers.ts). Several LoRAs
// on one weight are concatenated along the rank axis, LoRA i filling r_i rows of down, r_i columns of up and r_i
// entries of scale with its factor, so ΔW = Σ_i s_i · up_i @ down_i. The factor s_i is strength_i × alpha_i / r_i;
// parse.ts has already folded alpha / rank into each branch's `up` (types.ts), so the scale entries here are the
// strengths. up and down are never multiplied in JS: a single LoRA is fed its parsed arrays as they are, several
// are concatenated with TypedArray.set and that concatenation is kept for the set of LoRAs whatever the strengths,
// so a strength change only rebuilds the scale vectors.
import type { FeedTensor, LoraBranch, ParsedLora } from './types.ts';

export interface LoraUse {
  parsed: ParsedLora;
  strength: number;
}

/** One weight's branches of a set of LoRAs stacked along the rank axis (strength-independent). */
interface Stacked {
  down: FeedTensor;
  up: FeedTensor;
  /** The LoRAs (indices into the set's sorted uses) in rank order, with their ranks. */
  parts: { use: number; rank: number }[];
}

/** The last few concatenated sets, by LoRA identity only (switching back costs no copy). */
const stackedSets = new Map<string, Map<string, Stacked>>();
const RECENT_SETS = 2;
const loraIds = new WeakMap<ParsedLora, number>();
let nextLoraId = 0;

function loraId(p: ParsedLora): number {
  let id = loraIds.get(p);
  if (id === undefined) loraIds.set(p, (id = nextLoraId++));
  return id;
}

/** Concatenates the branches of one weight along the rank axis (row blocks of down, column blocks of up). */
function stack(target: string, list: { b: LoraBranch; use: number }[]): Stacked {
  const first = list[0]!.b;
  const upDims = (outF: number, R: number) => (first.upDims.length === 4 ? [outF, R, 1, 1] : [outF, R]);
  if (list.length === 1) {
    // One LoRA on this weight: its own arrays, no copy.
    return {
      down: { dims: first.downDims, data: first.down },
      up: { dims: upDims(first.upDims[0]!, first.rank), data: first.up },
      parts: [{ use: list[0]!.use, rank: first.rank }],
    };
  }
  const inner = first.down.length / first.rank; // in · kh · kw
  const outF = first.up.length / first.rank;
  for (const { b } of list) {
    // A 1×1 conv branch may be stored as [r,in,1,1] in one file and [r,in] in another: equal sizes suffice.
    if (b.down.length / b.rank !== inner || b.up.length / b.rank !== outF) {
      throw new Error(`LoRAs disagree on the shape of ${target}: down [${first.downDims}] vs [${b.downDims}]`);
    }
  }
  const R = list.reduce((s, { b }) => s + b.rank, 0);
  const down = new Float32Array(R * inner);
  const up = new Float32Array(outF * R);
  let r0 = 0;
  for (const { b } of list) {
    down.set(b.down, r0 * inner);
    // up is [out, r] row-major: branch i fills columns r0 .. r0 + r_i of every row (one block copy per row).
    const r = b.rank;
    const src = b.up;
    for (let o = 0, s = 0, d = r0; o < outF; o++, s += r, d += R) up.set(src.subarray(s, s + r), d);
    r0 += r;
  }
  return {
    down: { dims: [R, ...first.downDims.slice(1)], data: down },
    up: { dims: upDims(outF, R), data: up },
    parts: list.map(({ b, use }) => ({ use, rank: b.rank })),
  };
}

/**
 * Combines several LoRAs into graph inputs `<weight>.lora_down` / `<weight>.lora_up` / `<weight>.lora_scale`,
 * keyed by input name. Dims are the files' own ([R,in] / [out,R], or [R,in,kh,kw] / [out,R,1,1] for convs; scale
 * [R]); `loraFeeds` fits them to each slot. down and up may be shared with the parsed LoRAs and with earlier
 * results: read-only. The scales are new on every call.
 */
export function combineLoras(loras: LoraUse[]): Map<string, FeedTensor> {
  for (const { strength } of loras) if (!Number.isFinite(strength)) throw new Error(`LoRA strength must be a number (got ${strength})`);
  // Sorted by identity, so that A+B and B+A share one concatenation (ΔW is a sum: the order is immaterial).
  const uses = loras.map((l) => ({ ...l, id: loraId(l.parsed) })).sort((a, b) => a.id - b.id);
  const key = uses.map((u) => u.id).join('|');
  let stacked = stackedSets.get(key);
  if (stacked) {
    stackedSets.delete(key);
  } else {
    const byTarget = new Map<string, { b: LoraBranch; use: number }[]>();
    uses.forEach(({ parsed }, use) => {
      for (const [target, b] of parsed.targets) {
        let list = byTarget.get(target);
        if (!list) byTarget.set(target, (list = []));
        list.push({ b, use });
      }
    });
    stacked = new Map([...byTarget].map(([target, list]) => [target, stack(target, list)]));
  }
  stackedSets.set(key, stacked);
  while (stackedSets.size > RECENT_SETS) stackedSets.delete(stackedSets.keys().next().value!);

  const out = new Map<string, FeedTensor>();
  for (const [target, { down, up, parts }] of stacked) {
    // alpha / rank is already in up (parse.ts): each LoRA's rank rows get its strength.
    const scale = new Float32Array(down.dims[0]!);
    let r0 = 0;
    for (const { use, rank } of parts) scale.fill(uses[use]!.strength, r0, (r0 += rank));
    out.set(`${target}.lora_down`, down);
    out.set(`${target}.lora_up`, up);
    out.set(`${target}.lora_scale`, { dims: [scale.length], data: scale });
  }
  return out;
}

/** One LoRA attachment point of a graph (the networks' LoraSlot satisfies this). */
export interface LoraSlotSpec {
  /** The diffusers weight name; the graph inputs are `<name>.lora_down`, `<name>.lora_up` and `<name>.lora_scale`. */
  name: string;
  kind: 'linear' | 'conv';
  inFeatures: number;
  outFeatures: number;
  kernel: [number, number];
}

export interface FeedOptions {
  /**
   * Rank of the branch fed to linear slots no LoRA touches: 0 (default: zero-sized tensors; ONNX Runtime's MatMul
   * folds [B, T, 0] @ [0, out] into one GEMM, which it fills with zeros) or 1 (one zero row, for runtimes without
   * empty tensors). Conv slots always get at least rank 1: ONNX Runtime 1.30's CPU Conv with no input channels
   * ([B, 0, H, W] into [out, 0, 1, 1]) returns its output buffer unwritten, so a rank-0 conv branch added whatever
   * that memory held (stale activations with the arena, NaN seen without it; tests/engine/lora/empty-rank.test.ts).
   */
  emptyRank?: 0 | 1;
}

export interface LoraFeeds {
  /** A feed for every slot's three inputs. */
  feeds: Map<string, FeedTensor>;
  /** Combined LoRA weights that name no slot of this graph (other component, or a layer the graph lacks). */
  unused: string[];
}

const zeroCache = new Map<number, Float32Array>();
/** Shared read-only zeros (ONNX Runtime copies or only reads its inputs). */
function zeros(n: number): Float32Array {
  let z = zeroCache.get(n);
  if (!z) zeroCache.set(n, (z = new Float32Array(n)));
  return z;
}

const PARTS = ['down', 'up', 'scale'] as const;

/** The complete LoRA feed of a graph: the combined branches where they exist, zero branches elsewhere. */
export function loraFeeds(slots: LoraSlotSpec[], combined: Map<string, FeedTensor>, opts: FeedOptions = {}): LoraFeeds {
  const emptyRank = opts.emptyRank ?? 0;
  const feeds = new Map<string, FeedTensor>();
  const used = new Set<string>();
  for (const s of slots) {
    const [kh, kw] = s.kind === 'conv' ? s.kernel : [1, 1];
    const [downName, upName, scaleName] = PARTS.map((p) => `${s.name}.lora_${p}`) as [string, string, string];
    const down = combined.get(downName), up = combined.get(upName), scale = combined.get(scaleName);
    const shapes = (R: number) => s.kind === 'linear'
      ? { d: [R, s.inFeatures], u: [s.outFeatures, R] }
      : { d: [R, s.inFeatures, kh, kw], u: [s.outFeatures, R, 1, 1] };
    if (down || up || scale) {
      const R = down?.dims[0] ?? up?.dims[1] ?? scale!.dims[0]!;
      const { d, u } = shapes(R);
      if (!down || !up || !scale || down.dims[0] !== R || down.data.length !== R * s.inFeatures * kh * kw ||
        up.data.length !== s.outFeatures * R || scale.data.length !== R) {
        const dims = (t: FeedTensor | undefined) => (t ? `[${t.dims}]` : 'missing');
        throw new Error(`LoRA for ${s.name} has down ${dims(down)} / up ${dims(up)} / scale ${dims(scale)}, ` +
          `the layer takes down [${d}] / up [${u}] / scale [${R}]`);
      }
      feeds.set(downName, { dims: d, data: down.data });
      feeds.set(upName, { dims: u, data: up.data });
      feeds.set(scaleName, { dims: [R], data: scale.data });
      used.add(downName).add(upName).add(scaleName);
    } else {
      // a zero branch: rank 1 at least for a conv (FeedOptions.emptyRank says why)
      const R = s.kind === 'conv' ? Math.max(1, emptyRank) : emptyRank;
      const { d, u } = shapes(R);
      feeds.set(downName, { dims: d, data: zeros(R * s.inFeatures * kh * kw) });
      feeds.set(upName, { dims: u, data: zeros(s.outFeatures * R) });
      feeds.set(scaleName, { dims: [R], data: zeros(R) });
    }
  }
  const unused = [...new Set([...combined.keys()].filter((k) => !used.has(k)).map((k) => k.replace(/\.lora_(down|up|scale)$/, '')))];
  return { feeds, unused };
}
