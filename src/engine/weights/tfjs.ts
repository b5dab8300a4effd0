// TF.js "layers" models (a Keras model topology plus binary weight shards), as TensorFlow.js' io.loadWeights and
// tf.loadLayersModel read them (tfjs-core src/io/io_utils.ts decodeWeights): weights are float32 or int32, or
// affine-quantised uint8/uint16 (value = min + q * scale), or float16. Also the browserify bundles that nsfwjs
// ships (model.min.js / group1-shard*.min.js: the model object and a base64 shard), evaluated in an empty
// sandbox (no require, no globals), never with this process's privileges.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runInNewContext } from 'node:vm';

/** One layer of a Keras functional model config (class_name, config, inbound_nodes as Keras 2 saves them). */
export interface KerasLayer {
  class_name: string;
  name: string;
  config: Record<string, any>;
  /** [[[layerName, nodeIndex, tensorIndex, kwargs], ...]]: the layers feeding each call of this layer. */
  inbound_nodes: [string, number, number, unknown?][][];
}

export interface KerasModelConfig {
  name: string;
  layers: KerasLayer[];
  input_layers: [string, number, number][];
  output_layers: [string, number, number][];
}

export interface TfjsTensor {
  shape: number[];
  /** Dequantised float32 values, row-major in TF's layout (e.g. Conv2D kernels [kh, kw, in, out]). */
  data: Float32Array;
}

export interface TfjsLayersModel {
  model: KerasModelConfig;
  /** Weights by their TF.js names, e.g. `F_0/kernel`, `bn_Conv1/moving_mean`. */
  weights: Map<string, TfjsTensor>;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; min?: number; scale?: number };
}

interface ModelJson {
  format?: string;
  modelTopology: { model_config?: { class_name: string; config: KerasModelConfig }; class_name?: string; config?: KerasModelConfig };
  weightsManifest: { paths: string[]; weights: ManifestEntry[] }[];
}

/** Thrown for files that are not TF.js layers models this reader understands (a user's file: a bad_model_file). */
export class TfjsFormatError extends Error {}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decodes the concatenated bytes of one manifest group into named float32 tensors (io_utils.decodeWeights). */
export function decodeWeights(entries: ManifestEntry[], bytes: Uint8Array, into = new Map<string, TfjsTensor>()): Map<string, TfjsTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (const w of entries) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const q = w.quantization;
    const size = q ? (q.dtype === 'uint8' ? 1 : 2) : w.dtype === 'bool' ? 1 : 4;
    if (offset + n * size > bytes.length) throw new TfjsFormatError(`weight ${w.name} lies beyond the shard data (${bytes.length} bytes)`);
    if (q && (q.dtype === 'uint8' || q.dtype === 'uint16')) {
      if (q.min === undefined || q.scale === undefined) throw new TfjsFormatError(`weight ${w.name}: ${q.dtype} quantisation without min/scale`);
      for (let i = 0; i < n; i++) data[i] = q.min + q.scale * (q.dtype === 'uint8' ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true));
    } else if (q && q.dtype === 'float16') {
      for (let i = 0; i < n; i++) data[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
    } else if (q) {
      throw new TfjsFormatError(`weight ${w.name}: unsupported quantisation ${String((q as { dtype: unknown }).dtype)}`);
    } else if (w.dtype === 'float32') {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(offset + 4 * i, true);
    } else if (w.dtype === 'int32') {
      for (let i = 0; i < n; i++) data[i] = view.getInt32(offset + 4 * i, true);
    } else {
      for (let i = 0; i < n; i++) data[i] = view.getUint8(offset + i);
    }
    offset += n * size;
    into.set(w.name, { shape: w.shape, data });
  }
  return into;
}

function modelConfig(json: ModelJson): KerasModelConfig {
  const topo = json.modelTopology;
  const mc = topo.model_config ?? (topo.class_name ? { class_name: topo.class_name, config: topo.config! } : undefined);
  if (!mc || !['Functional', 'Model'].includes(mc.class_name) || !Array.isArray(mc.config?.layers)) {
    throw new TfjsFormatError(`not a TF.js layers model of a Keras functional Model (got ${mc?.class_name ?? 'no model_config'})`);
  }
  return mc.config;
}

/** Reads `model.json` and its binary shards (paths relative to it), as tf.loadLayersModel('file://…') would. */
export async function readTfjsLayersModel(modelJsonPath: string): Promise<TfjsLayersModel> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as ModelJson;
  } catch (e) {
    throw new TfjsFormatError(`not a TF.js model.json: ${(e as Error).message}`);
  }
  const model = modelConfig(json);
  const weights = new Map<string, TfjsTensor>();
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(join(dirname(modelJsonPath), p))));
    decodeWeights(group.weights, Buffer.concat(shards), weights);
  }
  return { model, weights };
}

/** Evaluates a UMD/browserify bundle in an empty context and returns what it exports. */
function evalBundle(source: string): unknown {
  const module = { exports: {} as unknown };
  runInNewContext(source, { module, exports: module.exports }, { timeout: 10_000 });
  return module.exports;
}

/**
 * Reads a TF.js layers model shipped as JS bundles (nsfwjs' dist/models/<variant>/model.min.js and its
 * group1-shard<i>of<n>.min.js files, each exporting a base64 string of that shard's bytes).
 */
export async function readTfjsBundledModel(modelJs: string, shardJs: string[]): Promise<TfjsLayersModel> {
  // re-created in this realm (the sandbox's objects have its own prototypes)
  const json = JSON.parse(JSON.stringify(evalBundle(await readFile(modelJs, 'utf8')) ?? null)) as ModelJson;
  if (!json?.modelTopology || !Array.isArray(json.weightsManifest)) throw new TfjsFormatError('the bundle does not export a TF.js model (modelTopology, weightsManifest)');
  const model = modelConfig(json);
  const shards: Buffer[] = [];
  for (const f of shardJs) {
    const b64 = evalBundle(await readFile(f, 'utf8'));
    if (typeof b64 !== 'string') throw new TfjsFormatError('a shard bundle does not export a base64 string');
    shards.push(Buffer.from(b64, 'base64'));
  }
  const all = Buffer.concat(shards);
  let offset = 0;
  const weights = new Map<string, TfjsTensor>();
  for (const group of json.weightsManifest) {
    const bytes = group.weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * (w.quantization ? (w.quantization.dtype === 'uint8' ? 1 : 2) : 4), 0);
    decodeWeights(group.weights, all.subarray(offset, offset + bytes), weights);
    offset += bytes;
  }
  return { model, weights };
}
