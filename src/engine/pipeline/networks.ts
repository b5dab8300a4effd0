// Live sessions for the networks a request needs, built through models/load.ts's compiled-model cache. Graph
// variants are chosen so that nothing per-request (LoRA set, scales, clip skip) forces a rebuild: those are
// graph inputs, and so is ToMe: the UNet's merge ratio is an input (tome_ratio, 0 = off) and merging runs in If branches.
import type { LoraSlot } from '../models/layers.ts';
import { compileNetwork, isNetworkCompiled, type CompileOptions, type NetworkKind } from '../models/load.ts';
import { weightsMB, type PhaseClock, type PlannedWork } from './phases.ts';
import { tomeMergeFnsFedRand } from '../models/tome.ts';
import type { TomeOptions } from '../models/unet.ts';
import { createSession, type ort, type RuntimeOptions } from '../onnx/session.ts';
import type { WeightSource } from '../weights/types.ts';
import { SessionCache, type SessionCacheOptions } from './sessions.ts';

/** A network's resident size over its compiled files' size before one was measured (ONNX Runtime's copies of
 *  the weights, prepacked kernels and the first run's arena; about 2× measured at SD 1.5 size). */
export const FIRST_LOAD_ESTIMATE_FACTOR = 2;

export interface LoadedNet {
  key: string;
  session: ort.InferenceSession;
  loraSlots: LoraSlot[];
}

export interface NetworkFiles {
  config: Record<string, any>;
  weights: WeightSource;
}

export class Networks {
  readonly cache: SessionCache;
  /** LoRA slots of each loaded graph, from its build info (kept beside the compiled model). */
  private readonly slots = new Map<string, LoraSlot[]>();

  constructor(private readonly rt: RuntimeOptions, cache: SessionCacheOptions) {
    this.cache = new SessionCache(cache);
  }

  /** Times builds and loads of the request being run (requests run one at a time). */
  clock?: PhaseClock;

  private keyOf(kind: NetworkKind, id: string, src: NetworkFiles, opts: CompileOptions): string {
    const tome = opts.unet?.tome;
    return `${kind}:${id}:${src.weights.fingerprint()}:${tome ? JSON.stringify({ ...tome, mergeFns: undefined }) : ''}`;
  }

  /** Loads (building on a cache miss) and holds a network until release(). */
  async acquire(kind: NetworkKind, id: string, src: NetworkFiles, opts: CompileOptions = {}): Promise<LoadedNet> {
    const key = this.keyOf(kind, id, src, opts);
    const session = await this.cache.acquire(key, async () => {
      const clock = this.clock;
      const t0 = performance.now();
      const compiled = await compileNetwork(this.rt.cacheDir, kind, { ...src, origin: id }, { ...opts, precision: this.rt.precision, fp32Islands: this.rt.fp32Islands });
      const mb = weightsMB(src.weights);
      if (compiled.built) await clock?.ended({ phase: 'build', units: mb, key: kind, network: `${kind}:${id}` }, t0);
      this.slots.set(key, (compiled.info as { loraSlots?: LoraSlot[] } | undefined)?.loraSlots ?? []);
      return {
        estimateMB: SessionCache.modelMB(compiled.path) * FIRST_LOAD_ESTIMATE_FACTOR,
        create: async () => {
          const t1 = performance.now();
          // ControlNet residuals stay on the device: they only feed the residual sums and the UNet (onnx/device.ts)
          const session = await createSession(compiled.path, this.rt, { outputsOnDevice: kind === 'controlnet' });
          await clock?.ended({ phase: 'load', units: mb, key: kind, network: `${kind}:${id}` }, t1);
          return session;
        },
      };
    });
    return { key, session, loraSlots: this.slots.get(key) ?? [] };
  }

  /** The build and load work acquiring this network would do now (none when it is loaded). */
  pending(kind: NetworkKind, id: string, src: NetworkFiles, opts: CompileOptions = Networks.options(kind)): PlannedWork[] {
    if (this.cache.has(this.keyOf(kind, id, src, opts))) return [];
    const units = weightsMB(src.weights);
    const network = `${kind}:${id}`;
    const load: PlannedWork = { phase: 'load', units, key: kind, network };
    return isNetworkCompiled(this.rt.cacheDir, kind, { ...src, origin: id }, { ...opts, precision: this.rt.precision, fp32Islands: this.rt.fp32Islands }) ? [load] : [{ phase: 'build', units, key: kind, network }, load];
  }

  /** The compile options each kind is acquired with. */
  static options(kind: NetworkKind, tome?: TomeOptions): CompileOptions {
    if (kind === 'clip-text') return { lora: true };
    if (kind === 'unet') return { lora: true, unet: { controlnetInputs: true, tome: tome && { ...tome, switchable: true, mergeFns: tomeMergeFnsFedRand } } };
    return {};
  }

  release(net: LoadedNet): void {
    this.cache.release(net.key);
  }

  textEncoder(id: string, src: NetworkFiles): Promise<LoadedNet> {
    return this.acquire('clip-text', id, src, Networks.options('clip-text'));
  }

  /** The UNet, one graph for ToMe on and off (feed tome_ratio; with useRand also tome_rand, any seed). */
  unet(id: string, src: NetworkFiles, tome: TomeOptions): Promise<LoadedNet> {
    return this.acquire('unet', id, src, Networks.options('unet', tome));
  }

  controlnet(id: string, src: NetworkFiles): Promise<LoadedNet> {
    return this.acquire('controlnet', id, src);
  }

  vaeEncoder(id: string, src: NetworkFiles): Promise<LoadedNet> {
    return this.acquire('vae-encoder', id, src);
  }

  vaeDecoder(id: string, src: NetworkFiles): Promise<LoadedNet> {
    return this.acquire('vae-decoder', id, src);
  }
}
