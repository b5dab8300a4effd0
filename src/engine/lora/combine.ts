// Turns the request's LoRAs into the graph's LoRA inputs. Several LoRAs on one weight become one branch of
// the summed rank: down stacked along the rank axis, up concatenated along it, each up scaled by
// strength × alpha / rank, so up_all @ down_all = Σ strength_i · alpha_i / r_i · up_i @ down_i
// (alpha / rank is applied when a file is parsed, the strength here).
import type { FeedTensor, LoraBranch, ParsedLora } from './types.ts';

export interface LoraUse {
  parsed: ParsedLora;
  strength: number;
}

/** Ups already multiplied by a scale, per branch (the last scale used): a repeated request re-scales nothing. */
const scaledUps = new WeakMap<LoraBranch, { scale: number; up: Float32Array }>();

function upScaled(b: LoraBranch, scale: number): Float32Array {
  if (scale === 1) return b.up;
  const hit = scaledUps.get(b);
  if (hit && hit.scale === scale) return hit.up;
  const up = new Float32Array(b.up.length);
  const src = b.up;
  for (let i = 0; i < src.length; i++) up[i] = src[i]! * scale;
  scaledUps.set(b, { scale, up });
  return up;
}

/** The last few combined sets, by LoRA identity and strength (switching back and forth costs nothing). */
const recent = new Map<string, Map<string, FeedTensor>>();
const RECENT_SETS = 2;
const loraIds = new WeakMap<ParsedLora, number>();
let nextLoraId = 0;

function setKey(loras: LoraUse[]): string {
  return loras.map(({ parsed, strength }) => {
    let id = loraIds.get(parsed);
    if (id === undefined) loraIds.set(parsed, (id = nextLoraId++));
    return `${id}@${strength}`;
  }).join('|');
}

/**
 * Combines several LoRAs into graph inputs `<weight>.lora_down` / `<weight>.lora_up`, keyed by input name.
 * Dims are the files' own ([R,in] / [out,R], or [R,in,kh,kw] / [out,R,1,1] for convs); `loraFeeds` fits
 * them to each slot. The tensors may be shared with the parsed LoRAs and with earlier results: read-only.
 */
export function combineLoras(loras: LoraUse[]): Map<string, FeedTensor> {
  for (const { strength } of loras) if (!Number.isFinite(strength)) throw new Error(`LoRA strength must be a number (got ${strength})`);
  const key = setKey(loras);
  const hit = recent.get(key);
  if (hit) {
    recent.delete(key);
    recent.set(key, hit);
    return hit;
  }
  const byTarget = new Map<string, { b: LoraBranch; scale: number }[]>();
  for (const { parsed, strength } of loras) {
    for (const [target, b] of parsed.targets) {
      let list = byTarget.get(target);
      if (!list) byTarget.set(target, (list = []));
      list.push({ b, scale: strength }); // alpha / rank is already in b.up
    }
  }
  const out = new Map<string, FeedTensor>();
  for (const [target, list] of byTarget) {
    const first = list[0]!.b;
    const upDims = (outF: number, R: number) => (first.upDims.length === 4 ? [outF, R, 1, 1] : [outF, R]);
    if (list.length === 1) {
      // One LoRA on this weight: its own down, and its up scaled (shared, no copy when the scale is 1).
      out.set(`${target}.lora_down`, { dims: first.downDims, data: first.down });
      out.set(`${target}.lora_up`, { dims: upDims(first.upDims[0]!, first.rank), data: upScaled(first, list[0]!.scale) });
      continue;
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
    for (const { b, scale } of list) {
      down.set(b.down, r0 * inner);
      // up is [out, r] row-major: branch i fills columns r0 .. r0 + r_i of every row (row copies of the
      // branch's scaled up, which stays memoized for the next set that uses it).
      const r = b.rank;
      const src = upScaled(b, scale);
      for (let o = 0; o < outF; o++) up.set(src.subarray(o * r, o * r + r), o * R + r0);
      r0 += r;
    }
    out.set(`${target}.lora_down`, { dims: [R, ...first.downDims.slice(1)], data: down });
    out.set(`${target}.lora_up`, { dims: upDims(outF, R), data: up });
  }
  recent.set(key, out);
  while (recent.size > RECENT_SETS) recent.delete(recent.keys().next().value!);
  return out;
}

/** One LoRA attachment point of a graph (the networks' LoraSlot satisfies this). */
export interface LoraSlotSpec {
  /** The diffusers weight name; the graph inputs are `<name>.lora_down` and `<name>.lora_up`. */
  name: string;
  kind: 'linear' | 'conv';
  inFeatures: number;
  outFeatures: number;
  kernel: [number, number];
}

export interface FeedOptions {
  /** Rank of the branch fed to slots no LoRA touches: 0 (default: zero-sized tensors, which ONNX Runtime's MatMul
   *  and Conv take and add exact zeros for, at no cost) or 1 (one zero row, for runtimes without empty tensors). */
  emptyRank?: 0 | 1;
}

export interface LoraFeeds {
  /** A feed for every slot's two inputs. */
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

/** The complete LoRA feed of a graph: the combined branches where they exist, zero branches elsewhere. */
export function loraFeeds(slots: LoraSlotSpec[], combined: Map<string, FeedTensor>, opts: FeedOptions = {}): LoraFeeds {
  const emptyRank = opts.emptyRank ?? 0;
  const feeds = new Map<string, FeedTensor>();
  const used = new Set<string>();
  for (const s of slots) {
    const [kh, kw] = s.kind === 'conv' ? s.kernel : [1, 1];
    const downName = `${s.name}.lora_down`, upName = `${s.name}.lora_up`;
    const down = combined.get(downName), up = combined.get(upName);
    const shapes = (R: number) => s.kind === 'linear'
      ? { d: [R, s.inFeatures], u: [s.outFeatures, R] }
      : { d: [R, s.inFeatures, kh, kw], u: [s.outFeatures, R, 1, 1] };
    if (down && up) {
      const R = down.dims[0]!;
      const { d, u } = shapes(R);
      if (down.data.length !== R * s.inFeatures * kh * kw || up.data.length !== s.outFeatures * R) {
        throw new Error(`LoRA for ${s.name} has down [${down.dims}] / up [${up.dims}], the layer takes down [${d}] / up [${u}]`);
      }
      feeds.set(downName, { dims: d, data: down.data });
      feeds.set(upName, { dims: u, data: up.data });
      used.add(downName).add(upName);
    } else {
      const { d, u } = shapes(emptyRank);
      feeds.set(downName, { dims: d, data: zeros(emptyRank * s.inFeatures * kh * kw) });
      feeds.set(upName, { dims: u, data: zeros(s.outFeatures * emptyRank) });
    }
  }
  const unused = [...new Set([...combined.keys()].filter((k) => !used.has(k)).map((k) => k.replace(/\.lora_(down|up)$/, '')))];
  return { feeds, unused };
}
