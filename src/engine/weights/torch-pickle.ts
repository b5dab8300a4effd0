// PyTorch .pth / .bin / .ckpt files (torch.save's zip format: <archive>/data.pkl + <archive>/data/<key>),
// read through the restricted unpickler. Only the globals torch uses to rebuild tensors and containers are
// permitted; tensors are read lazily from their storage entries by file offset.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { DTYPE_BYTES, numel, toFloat32 } from './dtype.ts';
import { readRange } from './file-range.ts';
import { unpickle, type AllowedGlobal, type PickleValue } from './pickle.ts';
import type { RawTensor, TensorInfo, WeightDType, WeightSource } from './types.ts';
import { readZipDirectory, readZipEntry, type ZipEntry } from './zip.ts';

class StorageType {
  constructor(readonly dtype: WeightDType) {}
}

interface StorageRef {
  key: string;
  dtype: WeightDType;
}

export class TorchTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** An inert stand-in for numpy scalars/dtypes that lightning checkpoints keep beside the weights. */
export class NumpyValue {
  constructor(readonly parts: PickleValue[]) {}
}

const STORAGES: Record<string, WeightDType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};

function rebuildTensor(args: PickleValue[]): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage && typeof storage === 'object' && 'key' in storage)) throw new Error('torch pickle: tensor without storage');
  return new TorchTensor(storage as StorageRef, Number(offset), (size as number[]).map(Number), (stride as number[]).map(Number));
}

const numpy: AllowedGlobal = { call: (args) => new NumpyValue(args) };

/** The allow-list: rebuilding tensors, parameters, storages and plain containers, nothing else. */
export const TORCH_GLOBALS: Record<string, AllowedGlobal> = {
  'collections.OrderedDict': { call: () => new Map() },
  'torch._utils._rebuild_tensor': { call: rebuildTensor },
  'torch._utils._rebuild_tensor_v2': { call: rebuildTensor },
  'torch._utils._rebuild_parameter': { call: (a) => a[0] },
  'torch._utils._rebuild_parameter_with_state': { call: (a) => a[0] },
  'torch.Size': { call: (a) => (a[0] as PickleValue[]) ?? [] },
  'builtins.set': { call: (a) => new Set((a[0] as PickleValue[]) ?? []) },
  '__builtin__.set': { call: (a) => new Set((a[0] as PickleValue[]) ?? []) },
  'builtins.frozenset': { call: (a) => new Set((a[0] as PickleValue[]) ?? []) },
  '_codecs.encode': { call: (a) => Buffer.from(String(a[0]), a[1] === 'latin1' || a[1] === 'latin-1' ? 'latin1' : 'utf8') },
  'numpy.core.multiarray.scalar': numpy,
  'numpy._core.multiarray.scalar': numpy,
  'numpy.dtype': numpy,
  ...Object.fromEntries(Object.entries(STORAGES).map(([name, dtype]) => [`torch.${name}`, { value: new StorageType(dtype) }])),
};

export interface TorchArchive {
  root: PickleValue;
  entries: Map<string, ZipEntry>;
  prefix: string;
  pickleHash: string;
}

/** Opens the archive and unpickles data.pkl (tensors stay on disk). */
export async function loadTorchArchive(path: string): Promise<TorchArchive> {
  let entries: Map<string, ZipEntry>;
  try {
    entries = await readZipDirectory(path);
  } catch (e) {
    throw new Error(`${path}: not a PyTorch zip checkpoint (the pre-1.6 legacy format is not supported): ${(e as Error).message}`);
  }
  const pkl = [...entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pkl) throw new Error(`${path}: zip archive without data.pkl (not a torch.save file)`);
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && Buffer.from(await readZipEntry(path, order)).toString() !== 'little') throw new Error(`${path}: big-endian checkpoints are not supported`);
  const data = await readZipEntry(path, entries.get(pkl)!);
  const root = unpickle(data, {
    globals: TORCH_GLOBALS,
    persistentLoad: (pid) => {
      const [kind, type, key] = pid as [string, unknown, unknown];
      if (kind !== 'storage' || !(type instanceof StorageType)) throw new Error(`${path}: unsupported persistent id ${String(kind)}`);
      return { key: String(key), dtype: type.dtype } satisfies StorageRef;
    },
  });
  const size = (await stat(path)).size;
  return { root, entries, prefix, pickleHash: createHash('sha256').update(data).update(String(size)).digest('hex').slice(0, 32) };
}

/** Tensors of a torch checkpoint by flat name; a lightning checkpoint's "state_dict" is used when present. */
export class TorchCheckpoint implements WeightSource {
  private constructor(
    readonly path: string,
    private readonly archive: TorchArchive,
    private readonly tensors: Map<string, TorchTensor>,
  ) {}

  static async open(path: string): Promise<TorchCheckpoint> {
    const archive = await loadTorchArchive(path);
    let root = archive.root;
    if (root instanceof Map && root.get('state_dict') instanceof Map) root = root.get('state_dict');
    if (!(root instanceof Map)) throw new Error(`${path}: the checkpoint is not a dict of tensors`);
    const tensors = new Map<string, TorchTensor>();
    flatten(root, '', tensors);
    return new TorchCheckpoint(path, archive, tensors);
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    return t && { dtype: t.storage.dtype, shape: [...t.shape] };
  }

  async readRaw(name: string): Promise<RawTensor> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor named ${name}`);
    const entry = this.archive.entries.get(`${this.archive.prefix}data/${t.storage.key}`);
    if (!entry) throw new Error(`${this.path}: storage ${t.storage.key} of ${name} is missing`);
    const esize = DTYPE_BYTES[t.storage.dtype];
    const n = numel(t.shape);
    // The elements this view touches: [offset, offset + span) of the storage.
    const span = n === 0 ? 0 : 1 + t.shape.reduce((s, d, i) => s + (d - 1) * t.stride[i]!, 0);
    if ((t.offset + span) * esize > entry.size) throw new Error(`${this.path}: tensor ${name} exceeds its storage`);
    const read = async (from: number, count: number) =>
      entry.method === 0
        ? readRange(this.path, entry.dataOffset + from * esize, count * esize)
        : (await readZipEntry(this.path, entry)).slice(from * esize, (from + count) * esize);
    const region = await read(t.offset, span);
    const bytes = isContiguous(t.shape, t.stride) ? region : gather(region, t.shape, t.stride, esize);
    return { dtype: t.storage.dtype, shape: [...t.shape], bytes };
  }

  async readF32(name: string): Promise<Float32Array> {
    const raw = await this.readRaw(name);
    return toFloat32(raw.dtype, raw.bytes);
  }

  fingerprint(): string {
    return `pt:${this.archive.pickleHash}`;
  }
}

export function openTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  return TorchCheckpoint.open(path);
}

function flatten(map: Map<unknown, unknown>, prefix: string, out: Map<string, TorchTensor>): void {
  for (const [k, v] of map) {
    const name = prefix + String(k);
    if (v instanceof TorchTensor) out.set(name, v);
    else if (v instanceof Map) flatten(v, `${name}.`, out);
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Copies a strided view into C order. */
function gather(region: Uint8Array, shape: number[], stride: number[], esize: number): Uint8Array {
  const n = numel(shape);
  const out = new Uint8Array(n * esize);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += idx[d]! * stride[d]!;
    out.set(region.subarray(src * esize, (src + 1) * esize), i * esize);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}
