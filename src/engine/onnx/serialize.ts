// Writes a GraphBuilder as an .onnx file. Tensors over a size threshold go to one external-data file
// beside it (needed past protobuf's 2 GB limit, and it lets weights stream through one at a time).
import { createWriteStream, type WriteStream } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { basename } from 'node:path';
import { once } from 'node:events';
import { DataType } from './proto.ts';
import { ModelProto } from './proto.ts';
import { encodeAttr, type ConstTensor, type GraphBuilder, type NodeSpec, type SubGraph, type TypedData, type ValueSpec } from './graph.ts';

export const OPSET = 21;
export const IR_VERSION = 10;

export interface WriteOptions {
  /** Initializers of at least this many bytes go to `<file>.data`. Default 1 KiB; Infinity keeps all inline. */
  externalThreshold?: number;
  metadata?: Record<string, string>;
}

function bytesOf(d: TypedData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function tensorProto(t: ConstTensor, name = ''): object {
  return { name, dims: t.dims, data_type: DataType[t.dtype], raw_data: bytesOf(t.data) };
}

function valueInfo(v: ValueSpec): object {
  const elem_type = DataType[v.dtype];
  if (!v.shape) return { name: v.name, type: { tensor_type: { elem_type } } };
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name: v.name, type: { tensor_type: { elem_type, shape: { dim } } } };
}

function nodeProto(n: NodeSpec): object {
  return {
    name: n.name, op_type: n.opType, domain: n.domain, input: n.inputs, output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v, (t) => tensorProto(t), subgraphProto)),
  };
}

/** A branch body: its nodes and outputs (no inputs; it reads the enclosing graph's values by name). */
function subgraphProto(sg: SubGraph): object {
  return { name: sg.name, node: sg.nodes.map(nodeProto), output: sg.outputs.map(valueInfo) };
}

function allNodes(nodes: NodeSpec[]): NodeSpec[] {
  return nodes.flatMap((n) => [n, ...Object.values(n.attrs).flatMap((a) => (typeof a === 'object' && a !== null && 'graph' in a ? allNodes(a.graph.nodes) : []))]);
}

async function writeChunk(stream: WriteStream, bytes: Uint8Array): Promise<void> {
  if (!stream.write(bytes)) await once(stream, 'drain');
}

/** Serializes the graph to `file` (and `file.data` when needed). Returns the external data size in bytes. */
export async function writeModel(g: GraphBuilder, file: string, opts: WriteOptions = {}): Promise<number> {
  const threshold = opts.externalThreshold ?? 1024;
  const dataFile = `${file}.data`;
  let stream: WriteStream | undefined;
  let offset = 0;
  const initializer: object[] = [];
  for (const init of g.initializers) {
    const data = typeof init.data === 'function' ? await init.data() : init.data;
    const expected = init.dims.reduce((a, b) => a * b, 1);
    const perElem = init.dtype === 'float16' || init.dtype === 'bfloat16' ? 2 : data.BYTES_PER_ELEMENT;
    if (data.byteLength !== expected * perElem) {
      throw new Error(`initializer ${init.name}: ${data.byteLength} bytes for dims [${init.dims}] of ${init.dtype}`);
    }
    if (data.byteLength < threshold) {
      initializer.push(tensorProto({ dtype: init.dtype, dims: init.dims, data }, init.name));
      continue;
    }
    stream ??= createWriteStream(`${dataFile}.tmp`);
    // 64-byte alignment lets ONNX Runtime memory-map tensors directly.
    const pad = (64 - (offset % 64)) % 64;
    if (pad) await writeChunk(stream, new Uint8Array(pad));
    offset += pad;
    await writeChunk(stream, bytesOf(data));
    initializer.push({
      name: init.name, dims: init.dims, data_type: DataType[init.dtype], data_location: 1,
      external_data: [
        { key: 'location', value: basename(dataFile) },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(data.byteLength) },
      ],
    });
    offset += data.byteLength;
  }
  if (stream) {
    stream.end();
    await once(stream, 'finish');
    await rename(`${dataFile}.tmp`, dataFile);
  }
  const model = modelObject(g, initializer, opts);
  const err = ModelProto.verify(model);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  await writeFile(`${file}.tmp`, ModelProto.encode(ModelProto.fromObject(model)).finish());
  await rename(`${file}.tmp`, file);
  return offset;
}

/** The ModelProto object of the graph with these initializer protos. */
function modelObject(g: GraphBuilder, initializer: object[], opts: WriteOptions): object {
  const domains = new Set(allNodes(g.nodes).map((n) => n.domain).filter((d) => d !== ''));
  return {
    ir_version: IR_VERSION,
    producer_name: 'controlnet-server',
    opset_import: [{ domain: '', version: OPSET }, ...[...domains].map((d) => ({ domain: d, version: 1 }))],
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      node: g.nodes.map(nodeProto),
      initializer,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  };
}

/**
 * The graph as .onnx bytes in memory, every initializer inline (for models well under protobuf's 2 GB limit,
 * e.g. the bundled annotator models), ready for ort.InferenceSession.create(bytes).
 */
export async function encodeModel(g: GraphBuilder, opts: WriteOptions = {}): Promise<Uint8Array> {
  const initializer: object[] = [];
  for (const init of g.initializers) {
    const data = typeof init.data === 'function' ? await init.data() : init.data;
    initializer.push(tensorProto({ dtype: init.dtype, dims: init.dims, data }, init.name));
  }
  const model = modelObject(g, initializer, opts);
  const err = ModelProto.verify(model);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
