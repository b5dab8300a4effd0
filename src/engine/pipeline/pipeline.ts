// The generation pipeline: diffusers' StableDiffusionControlNet{,Img2Img,Inpaint}Pipeline in one loop, with
// several ControlNets, LoRAs, a custom VAE, clip skip and ToMe. Every random draw comes from one seeded
// TorchGenerator in diffusers' order, so a seed gives diffusers' picture.
import { annotate, annotatorNote, AnnotatorMissingError } from '../annotators/index.ts';
import { inpaintCondition, inpaintPreview } from '../annotators/inpaint.ts';
import { EngineError, modelMissing } from '../errors.ts';
import { combineLoras, loraFeeds, type LoraFeeds } from '../lora/combine.ts';
import { LoraCache } from '../lora/load.ts';
import { clipMaxSkip } from '../models/clip-text.ts';
import { controlnetScales } from '../models/controlnet.ts';
import { TOME_RAND_INPUT, TOME_RATIO_INPUT, tomeRandTable } from '../models/tome.ts';
import { assertProviderAvailable, ort, parseProvider, type RuntimeOptions } from '../onnx/session.ts';
import { TorchGenerator } from '../random/torch-generator.ts';
import { createScheduler, ddimInvertThenRegenerate, img2imgStart, supportsAlgorithmType, supportsKarrasSigmas } from '../schedulers/index.ts';
import { cacheDir, modelPath, modelsDir } from '../store.ts';
import type { EngineConfig, EngineStats } from '../host/protocol.ts';
import { binaryMask, decodedToRgb, encodePng, maskToLatent, resizeRgb, toChw } from './images.ts';
import { ModelFiles, type Json } from './model-files.ts';
import { Networks, type LoadedNet } from './networks.ts';
import { encodePrompts } from './prompt.ts';
import { controlResiduals, type ControlRun } from './controls.ts';
import { decodeLatents } from './decode.ts';
import { defaultMemoryBudgetMB, processRssMB } from './memory.ts';
import { blendByMask, cat, divide, gaussianSample, guidance, repeat, scale } from './tensor-math.ts';
import type { ControlNetType, GenerateHooks, GenerateOptions, GenerateResult, HintRequest, RgbImage } from './types.ts';
import { PhaseClock, testDelaysFromEnv, type TestDelays } from './phases.ts';
import { planOf } from './plan.ts';


/** tomesd.apply_patch defaults (ratio 0.5, max_downsample 1, sx = sy = 2), with its random dst choice seeded. */
const TOME = { ratio: 0.5, maxDownsample: 1, sx: 2, sy: 2, useRand: true, seed: 0 };  // seed: fed per request (tome_rand)

export type Hooks = GenerateHooks;


const tensor = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);

export class Pipeline {
  private readonly loraCache = new LoraCache();
  private readonly files: ModelFiles;

  /** Tests only: a slowed engine (see phases.ts TestDelays). */
  private testDelays?: TestDelays;

  private constructor(private readonly rt: RuntimeOptions, private readonly nets: Networks, private readonly dataDir: string, private readonly tome: typeof TOME) {
    this.files = new ModelFiles(dataDir, rt.cacheDir);
  }

  static async create(config: EngineConfig): Promise<Pipeline> {
    const provider = parseProvider(config.provider);
    const rt: RuntimeOptions = { provider, threads: config.threads ?? 0, cacheDir: cacheDir(config.dataDir), allowSpinning: config.allowSpinning ?? process.env.ENGINE_ALLOW_SPINNING === '1',
      cpuMemArena: config.cpuMemArena ?? process.env.ENGINE_CPU_MEM_ARENA !== '0' };
    await assertProviderAvailable(provider, rt.cacheDir);
    const p = new Pipeline(rt, new Networks(rt, { budgetMB: config.memoryBudgetMB ?? defaultMemoryBudgetMB() }), config.dataDir, { ...TOME, useRand: config.tomeUseRand ?? TOME.useRand });
    p.testDelays = config.testDelays ?? testDelaysFromEnv();
    return p;
  }

  stats(): EngineStats {
    return { provider: this.rt.provider, loaded: this.nets.cache.loaded(), memoryBudgetMB: this.nets.cache.budgetMB, rssMB: Math.round(processRssMB()), evictions: this.nets.cache.evictionCount() };
  }

  /** The hint map of each type, as auto_hint computes it (inpaint: the masked init image, masked pixels black). */
  async hint(req: HintRequest): Promise<Buffer[]> {
    const image = await resizeRgb(req.image, req.width, req.height);
    const mask = req.mask && (await resizeRgb(req.mask, req.width, req.height));
    const out: Buffer[] = [];
    for (const [i, type] of req.types.entries()) {
      if (type === 'inpaint') {
        out.push(await encodePng(mask ? inpaintPreview(image, mask) : image));
        continue;
      }
      out.push(await encodePng(await this.annotateOrMissing(type, image, { width: req.width, height: req.height, mask, seed: req.seed + i })));
    }
    return out;
  }

  private async annotateOrMissing(type: ControlNetType, image: RgbImage, o: { width: number; height: number; mask?: RgbImage; seed: number }): Promise<RgbImage> {
    try {
      return await annotate(type, image, { ...o, modelsDir: modelsDir(this.dataDir) });
    } catch (e) {
      if (e instanceof AnnotatorMissingError) throw modelMissing(`the ${type} annotator (auto_hint)`, e.file);
      throw e;
    }
  }

  /** Generates and encodes the PNGs the API returns. */
  async generate(o: GenerateOptions, hooks: Hooks = {}): Promise<GenerateResult> {
    const started = performance.now();
    const raw = await this.generateRaw(o, hooks);
    const images = decodedToRgb(raw.pixels, o.samples, o.width, o.height);
    // No safety checker is wired yet, so nothing is flagged, and meta says safety_checker "unavailable".
    const nsfw = images.map(() => false);
    return { images: await Promise.all(images.map(encodePng)), nsfw, applied: raw.applied, seconds: (performance.now() - started) / 1000 };
  }

  /** The decoded images before quantization: [samples, 3, H, W], the VAE's output (about [-1, 1]). */
  async generateRaw(o: GenerateOptions, hooks: Hooks = {}): Promise<{ pixels: Float32Array; applied: Record<string, unknown> }> {
    const held: LoadedNet[] = [];
    const hold = async (p: Promise<LoadedNet>): Promise<LoadedNet> => {
      const n = await p;
      held.push(n);
      return n;
    };
    const clock = new PhaseClock({ model: o.modelId, width: o.width, height: o.height }, hooks.onPhase, this.testDelays);
    this.nets.clock = clock;
    try {
      return await this.run(o, hooks, hold, clock);
    } finally {
      this.nets.clock = undefined;
      for (const n of held) this.nets.release(n);
    }
  }

  private async run(o: GenerateOptions, hooks: Hooks, hold: (p: Promise<LoadedNet>) => Promise<LoadedNet>, clock: PhaseClock): Promise<{ pixels: Float32Array; applied: Record<string, unknown> }> {
    const applied: Record<string, unknown> = {};
    if (o.upscale) throw modelMissing('upscaler', modelPath('upscaler', 'default', this.dataDir));
    const model = await clock.time({ phase: 'hash', units: 1 }, () => this.files.base(o.modelId));
    const vaeFiles = o.vae ? await this.files.vae(o.vae) : { config: model.configs.vae, weights: model.vae };
    const vaeId = o.vae ? `vae:${o.vae}` : o.modelId;
    const W = o.width, H = o.height;
    // diffusers' vae_scale_factor: 2 ** (len(block_out_channels) - 1), 8 for SD
    const vf = 2 ** (((vaeFiles.config.block_out_channels as number[] | undefined)?.length ?? 4) - 1);
    if (W % vf || H % vf) throw new EngineError('bad_input', `width and height must be multiples of ${vf} for this model`, 'width');
    const lw = W / vf, lh = H / vf;
    const cfg = o.guidanceScale > 1;
    const gen = new TorchGenerator(o.seed);
    if (hooks.onPlan) hooks.onPlan(await planOf(o, { nets: this.nets, files: this.files, model, vaeFiles, vaeId, tome: this.tome }));

    // LoRAs: one combined branch set, fed to the text encoder and UNet graphs as inputs (no rebuild).
    const layersPerBlock = model.configs.unet.layers_per_block ?? 2;
    const loras = await Promise.all(o.loras.map(async (l) => ({
      parsed: await this.loraCache.get(this.files.lora(l.id), { layersPerBlock }), strength: l.strength,
    })));
    const combined = combineLoras(loras);
    const ignored = loras.flatMap((l, i) => l.parsed.ignored.map((x) => `${o.loras[i]!.id}: ${x.key} (${x.reason})`));
    if (ignored.length) applied.lora_ignored = ignored.slice(0, 20);

    // Text
    const maxSkip = clipMaxSkip(model.configs.textEncoder);
    if (o.clipSkip - 1 > maxSkip) throw new EngineError('bad_input', `clip_skip must be at most ${maxSkip + 1} for model ${o.modelId}`, 'clip_skip');
    const text = await hold(this.nets.textEncoder(o.modelId, { config: model.configs.textEncoder, weights: model.textEncoder }));
    const textLora = loraFeeds(text.loraSlots, combined);
    const embeds = await clock.time({ phase: 'encode', units: 1 }, () => encodePrompts(model.tokenizer, async (ids, rows, skip) => {
      const out = await text.session.run({
        input_ids: new ort.Tensor('int64', ids, [rows, ids.length / rows]),
        skip: new ort.Tensor('int64', BigInt64Array.of(BigInt(skip)), []),
        ...feedsOf(textLora),
      });
      const hs = out.hidden_states!;
      return { data: hs.data as Float32Array, dim: hs.dims[2]! };
    }, o.prompt, o.negativePrompt, o.samples, cfg, o.clipSkip - 1));
    const ehs = tensor(embeds.data, [embeds.batch, embeds.seq, embeds.dim]);
    const ehsCond = cfg ? tensor(embeds.data.subarray(embeds.data.length / 2), [o.samples, embeds.seq, embeds.dim]) : ehs;

    // ControlNets and their hints
    const controls: ControlRun[] = [];
    const maskImg = o.maskImage ? await resizeRgb(o.maskImage, W, H) : undefined;
    const initImg = o.initImage ? await resizeRgb(o.initImage, W, H) : undefined;
    for (const [i, unit] of o.controls.entries()) {
      const files = await this.files.controlnet(unit.modelId ?? unit.type, unit.type);
      const net = await hold(this.nets.controlnet(unit.modelId ?? unit.type, files));
      let image = await resizeRgb(unit.image, W, H);
      let hint: Float32Array;
      if (unit.type === 'inpaint' && maskImg) {
        hint = inpaintCondition(initImg ?? image, maskImg);
      } else {
        if (o.autoHint) {
          image = await this.annotateOrMissing(unit.type, image, { width: W, height: H, mask: maskImg, seed: o.seed + i });
          const note = annotatorNote(unit.type, modelsDir(this.dataDir));
          if (note) applied[`auto_hint_${unit.type}`] = note;
        }
        hint = toChw(image, '0,1');
      }
      controls.push({ net, config: files.config, cond: tensor(hint, [1, 3, H, W]), scales: tensor(new Float32Array(0), [0]) });
    }
    const guessMode = o.guessMode || controls[0]?.config.global_pool_conditions === true;
    const ctrlBatch = cfg && !guessMode ? 2 * o.samples : o.samples;
    for (const [i, c] of controls.entries()) {
      c.cond = tensor(repeat(c.cond.data as Float32Array, ctrlBatch), [ctrlBatch, 3, H, W]);
      const scales = controlnetScales(c.config, o.controls[i]!.scale, guessMode);
      c.scales = tensor(scales, [scales.length]);
    }

    // Scheduler and the starting latents (txt2img, img2img or inpaint, as diffusers orders the draws)
    const sched = createScheduler(o.scheduler, model.configs.scheduler, { useKarrasSigmas: o.useKarrasSigmas, algorithmType: o.algorithmType });
    applied.use_karras_sigmas = o.useKarrasSigmas ? (supportsKarrasSigmas(o.scheduler) ? 'yes' : 'ignored') : 'no';
    applied.algorithm_type = o.algorithmType === 'none' ? 'none' : supportsAlgorithmType(o.scheduler) ? o.algorithmType : 'ignored';
    sched.setTimesteps(o.steps);
    const inversion = o.scheduler === 'DDIMInverseScheduler';
    if (inversion && !initImg) throw new EngineError('bad_input', 'scheduler DDIMInverseScheduler needs init_image (it inverts that image, then regenerates it)', 'scheduler');
    const mode = inversion ? 'ddim_inversion' : maskImg && initImg ? 'inpaint' : initImg && o.strength < 1 ? 'img2img' : 'txt2img';
    let timesteps = sched.timesteps;
    if (mode === 'img2img' || mode === 'inpaint') {
      try {
        timesteps = img2imgStart(sched, o.steps, o.strength).timesteps;
      } catch (e) {
        throw new EngineError('bad_input', `strength ${o.strength} with num_inference_steps ${o.steps}: ${(e as Error).message}`, 'strength');
      }
    }
    const latentShape = [o.samples, 4, lh, lw];
    const vaeScale: number = vaeFiles.config.scaling_factor ?? 0.18215;
    let latents: Float32Array;
    let inpaint: { imageLatents: Float32Array; noise: Float32Array; mask: Float32Array } | undefined;
    if (mode === 'txt2img') {
      latents = scale(gen.randn(latentShape), sched.initNoiseSigma);
    } else {
      const enc = await hold(this.nets.vaeEncoder(vaeId, vaeFiles));
      const encode = async (img: Float32Array): Promise<Float32Array> => {
        const out = await enc.session.run({ sample: tensor(img, [1, 3, H, W]) });
        const mean = out.mean!.data as Float32Array;
        return scale(gaussianSample(mean, out.std!.data as Float32Array, gen.randn([1, 4, lh, lw])), vaeScale);
      };
      const imageLatents = repeat(await encode(toChw(initImg!, '-1,1')), o.samples);
      const noise = gen.randn(latentShape);
      if (mode === 'ddim_inversion') {
        latents = imageLatents; // inverted from the clean latents; the drawn noise only keeps draws in order
      } else if (mode === 'img2img') {
        latents = sched.addNoise(imageLatents, noise, timesteps[0]!);
      } else {
        latents = o.strength === 1 ? scale(noise, sched.initNoiseSigma) : sched.addNoise(imageLatents, noise, timesteps[0]!);
        // diffusers also encodes the masked image (used only by 9-channel inpaint UNets): its draw is taken
        // here so that later draws line up with diffusers'.
        gen.randn([1, 4, lh, lw]);
        inpaint = { imageLatents, noise, mask: maskToLatent(binaryMask(maskImg!), W, H, lw, lh) };
      }
    }

    // Denoising loop
    // One UNet graph for ToMe on and off: the ratio is an input (0 = off), so tomesd never loads another graph.
    const unet = await hold(this.nets.unet(o.modelId, { config: model.configs.unet, weights: model.unet }, this.tome));
    const unetLoraFeeds = loraFeeds(unet.loraSlots, combined);
    const unetExtra = feedsOf(unetLoraFeeds);
    unetExtra[TOME_RATIO_INPUT] = new ort.Tensor('float64', Float64Array.of(o.tomesd ? this.tome.ratio : 0), []);
    if (this.tome.useRand) {
      // tomesd's random destination choice, drawn from the request's seed for the full-resolution grid (unread when off)
      const cells = o.tomesd ? Math.max(1, Math.floor(lh / this.tome.sy) * Math.floor(lw / this.tome.sx)) : 1;
      unetExtra[TOME_RAND_INPUT] = new ort.Tensor('int64', o.tomesd ? tomeRandTable(o.seed, this.tome.sx, this.tome.sy, cells) : new BigInt64Array(1), [cells]);
    }
    // a LoRA weight that matched neither network's slots was not applied: say so rather than pretend
    const unmatched = unetLoraFeeds.unused.filter((k) => !textLora.feeds.has(`${k}.lora_down`));
    if (unmatched.length) applied.lora_unmatched = unmatched.slice(0, 20);
    const t0 = performance.now();
    const stepWork = { phase: 'step' as const, key: `c${controls.length}` };
    let stepStart = t0;
    const progress = (step: number, total: number): void => {
      clock.report({ ...stepWork, units: (lh * lw * 64 * o.samples * (cfg ? 2 : 1)) / 1e6 }, stepStart);
      stepStart = performance.now();
      if (hooks.signal?.aborted) throw new EngineError('cancelled', 'cancelled');
      hooks.onProgress?.({ step, totalSteps: total, elapsed: (performance.now() - t0) / 1000 });
    };

    /** The guided noise prediction for latents at t: CFG over [negative, prompt], ControlNets summed. */
    const predict = async (x: Float32Array, t: number, withCfg: boolean, scaleInput: (v: Float32Array) => Float32Array): Promise<Float32Array> => {
      const B = withCfg ? 2 * o.samples : o.samples;
      await clock.delay('step', (lh * lw * 64 * B) / 1e6);
      const promptEmbeds = withCfg ? ehs : ehsCond;
      const latIn = scaleInput(withCfg ? cat(x, x) : x);
      const ctrlIn = guessMode && withCfg ? scaleInput(x) : latIn;
      const residuals = await controlResiduals(controls, ctrlIn, [lh, lw], t, guessMode && withCfg ? ehsCond : promptEmbeds, guessMode && withCfg);
      const out = await unet.session.run({
        sample: tensor(latIn, [B, 4, lh, lw]),
        timestep: tensor(new Float32Array(B).fill(t), [B]),
        encoder_hidden_states: promptEmbeds,
        ...residuals,
        ...unetExtra,
      });
      const pred = out.out_sample!.data as Float32Array;
      return withCfg ? guidance(pred, o.guidanceScale) : pred;
    };

    if (mode === 'ddim_inversion') {
      // Inversion runs without CFG (guidance breaks the DDIM ODE's reversibility), regeneration with it.
      latents = await ddimInvertThenRegenerate(
        (x, t, phase) => predict(x, t, phase === 'generate' && cfg, (v) => v),
        latents, model.configs.scheduler, o.steps, o.strength, progress,
      );
    } else {
      for (const [i, t] of timesteps.entries()) {
        const noisePred = await predict(latents, t, cfg, (v) => sched.scaleModelInput(v, t));
        latents = sched.step(noisePred, t, latents, { generator: gen, batchSize: o.samples });
        if (inpaint) {
          const proper = i < timesteps.length - 1 ? sched.addNoise(inpaint.imageLatents, inpaint.noise, timesteps[i + 1]!) : inpaint.imageLatents;
          latents = blendByMask(proper, latents, inpaint.mask);
        }
        progress(i + 1, timesteps.length);
      }
    }

    // Decode
    const dec = await hold(this.nets.vaeDecoder(vaeId, vaeFiles));
    const pixels = await clock.time({ phase: 'decode', units: (W * H * o.samples) / 1e6 },
      () => decodeLatents(dec, divide(latents, vaeScale), [o.samples, 4, lh, lw], vf, vaeFiles.config));
    applied.safety_checker = o.safetyChecker ? 'unavailable' : 'no';
    applied.enhance_prompt = o.enhancePrompt ? 'unavailable' : 'no';
    applied.multi_lingual = o.multiLingual ? 'unavailable' : 'no';
    applied.prompt = o.prompt;
    applied.tomesd = o.tomesd ? 'yes' : 'no';
    applied.guess_mode = guessMode ? 'yes' : 'no';
    applied.mode = mode;
    applied.steps_run = mode === 'ddim_inversion' ? 2 * Math.min(Math.trunc(o.steps * o.strength), o.steps) : timesteps.length;
    return { pixels, applied };
  }
}

function feedsOf(l: LoraFeeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of l.feeds) out[name] = tensor(t.data, t.dims);
  return out;
}
