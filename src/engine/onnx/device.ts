// Tensors kept on the execution provider's device for a whole generation, and a count of the bytes that cross
// between host and device. On webgpu, session outputs named "on device" come back as ONNX Runtime device tensors
// (location 'gpu-buffer', ORT's IO binding in the Node binding) and are fed to the next session as they are; host
// tensors that every step reuses (text embeddings, hints, scales, LoRA feeds) are uploaded once. On cpu the same code
// runs with the device being host memory: uploads and device outputs only mark tensors as resident, and the counter
// still adds up what a GPU would copy, so the accounting is tested where CI runs.
//
// cuda / tensorrt: the Node binding can keep outputs on the device for WebGPU only, so there device outputs are
// host tensors and count as crossings (the counter shows it; see README "GPU").
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from './graph.ts';
import { writeModel } from './serialize.ts';
import { createSession, keepsOutputsOnDevice, keyHash, ort, type Provider, type RuntimeOptions } from './session.ts';
import { SessionMemo } from './session-memo.ts';

/** Bytes copied host → device and device → host, and the ONNX Runtime runs that caused them. */
export interface TransferCount {
  hostToDevice: number;
  deviceToHost: number;
  runs: number;
}

const bytesOf = (t: ort.Tensor): number => (t.location === 'cpu' || t.location === 'cpu-pinned' ? (t.data as ArrayBufferView).byteLength : 0);

/**
 * Small graphs run on the device for the pipeline's glue (upload, ControlNet residual sums, guess mode's zero
 * unconditional half), built once into the cache folder and held for the engine's life.
 */
export class DeviceOps {
  private readonly sessions = new SessionMemo<string>();

  constructor(private readonly rt: RuntimeOptions) {}

  get provider(): Provider {
    return this.rt.provider;
  }

  /** The session of a helper graph (built into <cache>/device/<key>.onnx on first use), outputs on the device. */
  session(name: string, count: number, build: () => GraphBuilder): Promise<ort.InferenceSession> {
    const key = `${name}-${count}`;
    return this.sessions.get(key, async () => {
      const dir = join(this.rt.cacheDir, 'device');
      await mkdir(dir, { recursive: true });
      const file = join(dir, `${key}-${keyHash({ v: 1, name, count })}.onnx`);
      if (!existsSync(file)) await writeModel(build(), file);
      return createSession(file, this.rt, { outputsOnDevice: true });
    });
  }

  async release(): Promise<void> {
    await this.sessions.releaseAll();
  }
}

/** Identity over float32 tensors of any shape: uploads a host tensor into a device tensor. */
export function uploadGraph(): GraphBuilder {
  const g = new GraphBuilder('upload');
  g.output(g.op('Identity', [g.input('x', 'float32', [])]), 'y', 'float32');
  // rank-free input: drop the empty shape so any rank is accepted
  g.inputs[0]!.shape = undefined;
  return g;
}

/** s_i = a_i + b_i for `count` float32 tensor pairs (two ControlNets' residuals summed, as MultiControlNetModel). */
export function residualSumGraph(count: number): GraphBuilder {
  const g = new GraphBuilder('residual_sum');
  for (let i = 0; i < count; i++) {
    g.output(g.op('Add', [g.input(`a_${i}`, 'float32', ['b', 'c', `h${i}`, `w${i}`]), g.input(`b_${i}`, 'float32', ['b', 'c', `h${i}`, `w${i}`])]), `s_${i}`, 'float32');
  }
  return g;
}

/** y_i = concat(zeros like x_i, x_i) on the batch axis (guess mode with CFG: no residual for the unconditional half). */
export function zeroUncondGraph(count: number): GraphBuilder {
  const g = new GraphBuilder('zero_uncond');
  const zero = { tensor: { dtype: 'float32' as const, dims: [1], data: Float32Array.of(0) } };
  for (let i = 0; i < count; i++) {
    const x = g.input(`x_${i}`, 'float32', ['b', `c${i}`, `h${i}`, `w${i}`]);
    g.output(g.op('Concat', [g.op('ConstantOfShape', [g.op('Shape', [x])], { value: zero }), x], { axis: 0 }), `y_${i}`, 'float32');
  }
  return g;
}

/**
 * One generation's view of the device: uploads, runs with outputs kept on the device, device-side residual ops, and
 * the transfer count. Tensors it made are disposed with dispose() (or step by step with disposeAll()).
 */
export class DeviceIO {
  readonly count: TransferCount = { hostToDevice: 0, deviceToHost: 0, runs: 0 };
  /** Host tensors that stand for device tensors (cpu provider, or uploads the binding cannot hold on the device). */
  private readonly resident = new WeakSet<ort.Tensor>();
  private readonly owned = new Set<ort.Tensor>();

  constructor(readonly ops: DeviceOps) {}

  private get onDevice(): boolean {
    return keepsOutputsOnDevice(this.ops.provider);
  }

  /** Whether t is (or stands for) a device tensor: feeding it copies nothing. */
  isResident(t: ort.Tensor): boolean {
    return t.location === 'gpu-buffer' || this.resident.has(t);
  }

  /**
   * The tensor on the device, copied once (counted). float32 tensors with elements only: other types (int64 tables)
   * and empty tensors (rank-0 LoRA slots) stay host tensors and are counted at each run that feeds them.
   */
  async toDevice(t: ort.Tensor): Promise<ort.Tensor> {
    if (this.isResident(t) || t.type !== 'float32' || t.size === 0) return t;
    this.count.hostToDevice += bytesOf(t);
    if (!this.onDevice) {
      this.resident.add(t);
      return t;
    }
    const s = await this.ops.session('upload', 1, uploadGraph);
    const y = (await s.run({ x: t })).y!;
    this.owned.add(y);
    return y;
  }

  /** toDevice for every value of a feed record. */
  async allToDevice(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const out: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) out[k] = await this.toDevice(v);
    return out;
  }

  /**
   * session.run, counting host feeds as uploads and host outputs as downloads. With `outputsOnDevice` the session was
   * created with createSession's outputsOnDevice: its outputs are device tensors (on cpu: host tensors marked resident), owned here.
   */
  async run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, outputsOnDevice = false): Promise<Record<string, ort.Tensor>> {
    for (const t of Object.values(feeds)) if (!this.isResident(t)) this.count.hostToDevice += bytesOf(t);
    const out = (await session.run(feeds)) as Record<string, ort.Tensor>;
    this.count.runs++;
    for (const t of Object.values(out)) {
      if (outputsOnDevice) {
        this.owned.add(t);
        if (t.location === 'cpu') {
          if (this.onDevice) this.count.deviceToHost += bytesOf(t); // the binding gave it back to the host after all
          else this.resident.add(t);
        }
      } else {
        this.count.deviceToHost += bytesOf(t);
      }
    }
    return out;
  }

  /** Element-wise sums of two residual lists (same shapes), on the device. */
  async sum(a: ort.Tensor[], b: ort.Tensor[]): Promise<ort.Tensor[]> {
    const s = await this.ops.session('residual_sum', a.length, () => residualSumGraph(a.length));
    const feeds: Record<string, ort.Tensor> = {};
    a.forEach((t, i) => { feeds[`a_${i}`] = t; feeds[`b_${i}`] = b[i]!; });
    const out = await this.run(s, feeds, true);
    return a.map((_, i) => out[`s_${i}`]!);
  }

  /** Each tensor with a zero half prepended on the batch axis, on the device. */
  async zeroUncond(x: ort.Tensor[]): Promise<ort.Tensor[]> {
    const s = await this.ops.session('zero_uncond', x.length, () => zeroUncondGraph(x.length));
    const feeds: Record<string, ort.Tensor> = {};
    x.forEach((t, i) => { feeds[`x_${i}`] = t; });
    const out = await this.run(s, feeds, true);
    return x.map((_, i) => out[`y_${i}`]!);
  }

  /** Frees device tensors this view made (residuals of a finished step); others are left alone. */
  disposeAll(tensors: Iterable<ort.Tensor>): void {
    for (const t of tensors) {
      if (!this.owned.delete(t)) continue;
      if (t.location === 'gpu-buffer') t.dispose();
    }
  }

  /** Frees every device tensor still owned (end of the generation). */
  dispose(): void {
    this.disposeAll([...this.owned]);
  }
}
