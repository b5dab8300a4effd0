// Reads a network's weights for a graph builder: checks each name and shape against the source, makes the
// initializer lazy (weights stream to external data when the model is written), and at the end reports
// every key the builder did not consume, so a wrong config or a foreign checkpoint fails loudly.
import type { GraphBuilder, Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { float32ToFloat16 } from '../weights/dtype.ts';

/** float32 values in the graph's weight type (its floatType): float16 rounds to nearest even, as torch's .half(). */
function inType(g: GraphBuilder, v: Float32Array): Float32Array | Uint16Array {
  return g.floatType === 'float16' ? float32ToFloat16(v) : v;
}

export class WeightReader {
  private readonly consumed = new Set<string>();

  /**
   * @param alias maps a canonical (checkpoint) name to the key the source really holds, e.g. CLIP files
   *   written by transformers 5 lack the `text_model.` prefix.
   */
  constructor(readonly src: WeightSource, readonly label: string, private readonly alias: (name: string) => string = (n) => n) {}

  private key(name: string): string {
    return this.alias(name);
  }

  has(name: string): boolean {
    return this.src.info(this.key(name)) !== undefined;
  }

  shape(name: string): number[] {
    const info = this.src.info(this.key(name));
    if (!info) throw new Error(`${this.label}: missing weight ${name}`);
    return info.shape;
  }

  private take(name: string, expected?: number[]): number[] {
    const shape = this.shape(name);
    if (expected && (expected.length !== shape.length || expected.some((d, i) => d !== shape[i]))) {
      throw new Error(`${this.label}: weight ${name} has shape [${shape}], the config implies [${expected}]`);
    }
    if (this.consumed.has(name)) throw new Error(`${this.label}: weight ${name} used twice`);
    this.consumed.add(name);
    return shape;
  }

  /** The tensor as an initializer named `name`, in the graph's floatType (read as float32, then rounded if float16). */
  param(g: GraphBuilder, name: string, expected?: number[]): Value {
    const shape = this.take(name, expected);
    const key = this.key(name);
    return g.weight(name, g.floatType, shape, async () => inType(g, await this.src.readF32(key)));
  }

  /** A 2-D [out, in] matrix stored transposed as [in, out] (what MatMul wants); the name stays the diffusers one. */
  paramT(g: GraphBuilder, name: string, expected?: number[]): Value {
    const [out, inF] = this.take(name, expected) as [number, number];
    const key = this.key(name);
    return g.weight(name, g.floatType, [inF, out], async () => {
      const w = await this.src.readF32(key);
      const t = new Float32Array(w.length);
      for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) t[i * out + o] = w[o * inF + i]!;
      return inType(g, t);
    });
  }

  /**
   * The tensor rewritten when the model is written: `fn` maps the stored values (float32) and shape to the
   * values of an equivalent tensor of shape `dims` (e.g. a pixel-difference kernel turned into a plain one).
   * The initializer keeps the checkpoint name.
   */
  paramWith(g: GraphBuilder, name: string, dims: number[], fn: (w: Float32Array, shape: number[]) => Float32Array, expected?: number[]): Value {
    const shape = this.take(name, expected);
    const key = this.key(name);
    return g.weight(name, 'float32', dims, async () => fn(await this.src.readF32(key), shape));
  }

  /** The tensor after `map` (a layout change of the same shape, e.g. permuted input channels), named `name`. */
  paramMapped(g: GraphBuilder, name: string, map: (data: Float32Array) => Float32Array, expected?: number[]): Value {
    const shape = this.take(name, expected);
    const key = this.key(name);
    return g.weight(name, 'float32', shape, async () => map(await this.src.readF32(key)));
  }

  /** Reads a tensor's values now (small tensors whose values shape the graph, e.g. position embeddings). */
  async read(name: string): Promise<Float32Array> {
    this.take(name);
    return this.src.readF32(this.key(name));
  }

  /** Source keys that no builder step consumed (buffers such as position_ids excepted by the caller). */
  unused(ignore: (key: string) => boolean = () => false): string[] {
    const consumedKeys = new Set([...this.consumed].map((n) => this.key(n)));
    return this.src.keys().filter((k) => !consumedKeys.has(k) && !ignore(k));
  }

  /** Throws naming every weight the graph did not use: the config and the file disagree. */
  assertAllUsed(ignore?: (key: string) => boolean): void {
    const rest = this.unused(ignore);
    if (rest.length) {
      const shown = rest.slice(0, 20).join(', ');
      throw new Error(`${this.label}: ${rest.length} weight(s) not used by the config: ${shown}${rest.length > 20 ? ', ...' : ''}`);
    }
  }
}
