// The generation pipeline: diffusers' StableDiffusionControlNet{,Img2Img,Inpaint}Pipeline as named stages
// (checkInputs, preparePrompt, encodePrompt, prepareImage, prepareControlImages, prepareLatents / encodeImage,
// denoise, decode), each mode a short composition of them, then safetyCheck and upscale. Several ControlNets,
// LoRAs, a custom VAE, clip skip and ToMe. Every random draw comes from one seeded TorchGenerator in diffusers'
// order, so a seed gives diffusers' picture. What ran is returned as a typed Applied (worker/meta.ts maps it).
import { statSync } from 'node:fs';
import { annotate, annotatorNote, AnnotatorMissingError } from '../annotators/index.ts';
import { inpaintCondition, inpaintPreview } from '../annotators/inpaint.ts';
import { configureAnnotatorSessions } from '../annotators/neural/session.ts';
import { EngineError } from '../errors.ts';
import { checkerFiles, ClipSafetyChecker } from '../extras/clip-safety-checker.ts';
import { PromptTranslators } from '../extras/prompt-translation.ts';
import { isFlagged, NsfwClassifier } from '../extras/nsfw-classifier.ts';
import { replaceFlagged } from '../extras/replace.ts';
import { esrganSlim, REAL_ESRGAN_IDS, resizeTo, rrdbNet, upscaleTiled, type UpscaleNet } from '../extras/upscaler.ts';
import type { EngineConfig, EngineStats } from '../host/protocol.ts';
import { combineLoras, loraFeeds, type LoraFeeds } from '../lora/combine.ts';
import { LoraCache } from '../lora/load.ts';
import { clipMaxSkip } from '../models/clip-text.ts';
import { controlnetScales } from '../models/controlnet.ts';
import { TOME_RAND_INPUT, TOME_RATIO_INPUT, tomeRandTable } from '../models/tome.ts';
import type { VaeConfigJson } from '../models/vae.ts';
import { assertProviderAvailable, ort, parseProvider, type RuntimeOptions } from '../onnx/session.ts';
import { defaultFp32Islands, parsePrecision } from '../onnx/precision.ts';
import { DeviceIO, DeviceOps, type TransferCount } from '../onnx/device.ts';
import { TorchGenerator } from '../random/torch-generator.ts';
import { createScheduler, ddimInvertThenRegenerate, denoisingMode, img2imgStart, stepPlanProblem, supportsAlgorithmType, supportsKarrasSigmas, type Scheduler } from '../schedulers/index.ts';
import { cacheDir, defaultModelsDir } from '../store.ts';
import type { SdModel } from '../weights/open.ts';
import { controlResiduals, zeroResiduals, type ControlRun } from './controls.ts';
import { decodeLatents } from './decode.ts';
import { binaryMask, decodedToRgb, encodePng, maskToLatent, resizeRgb, toChw } from './images.ts';
import { asUserFile, ModelFiles } from './model-files.ts';
import { Networks, type LoadedNet, type NetworkFiles } from './networks.ts';
import { encodePrompts } from './prompt.ts';
import { PromptEnhancers } from './prompt-enhancement.ts';
import { INPAINT_UNET_CHANNELS, inpaintUnetExtra, maskedImage, withInpaintChannels, type InpaintUnetExtra } from './inpaint-unet.ts';
import { parseUNetConfig } from '../models/unet-config.ts';
import { defaultMemoryBudgetMB, processRssMB, weightFilesMB } from './memory.ts';
import { PhaseClock, stepUnits, type PlannedWork, type TestDelays } from './phases.ts';
import { planOf } from './plan.ts';
import { stepKey } from './work.ts';
import { blendByMask, cat, divide, gaussianSample, guidance, repeat, scale } from './tensor-math.ts';
import type { Applied, ControlNetType, GenerateHooks, GenerateOptions, GenerateResult, HintRequest, PipelineMode, ProgressEvent, RgbImage } from './types.ts';

/** tomesd.apply_patch defaults (ratio 0.5, max_downsample 1, sx = sy = 2), with its random dst choice seeded. */
const TOME = { ratio: 0.5, maxDownsample: 1, sx: 2, sy: 2, useRand: true, seed: 0 };  // seed: fed per request (tome_rand)

export type Hooks = GenerateHooks;


const tensor = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);

/** Host↔device bytes of the last generation's denoising loop, per step (what a GPU copies; onnx/device.ts). */
export interface StepTransfers {
  steps: number;
  hostToDevicePerStep: number;
  deviceToHostPerStep: number;
  /** Uploads before the loop: text embeddings, hints, scales, LoRA feeds (once per generation). */
  setupHostToDevice: number;
}

export class Pipeline {
  private readonly loraCache = new LoraCache();
  private readonly files: ModelFiles;
  private readonly deviceOps: DeviceOps;
  /** Tests only: a slowed engine (see phases.ts TestDelays). */
  private testDelays?: TestDelays;
  /** The transfer count of the last generation's denoising loop (bench/ and tests read it). */
  lastTransfers: StepTransfers | undefined;

  private readonly modelsDir: string;
  /** enhance_prompt's installed GPT-2, loaded on first use. */
  private readonly enhancers: PromptEnhancers;
  /** multi_lingual's translators (models/translator/opus-mt-*), loaded on first use. */
  private readonly translators: PromptTranslators;

  private constructor(private readonly rt: RuntimeOptions, private readonly nets: Networks, private readonly config: EngineConfig, private readonly tome: typeof TOME) {
    this.modelsDir = config.modelsDir ?? defaultModelsDir(config.dataDir);
    this.files = new ModelFiles(this.modelsDir, rt.cacheDir);
    this.translators = new PromptTranslators(this.modelsDir, rt, nets.cache);
    this.deviceOps = new DeviceOps(rt);
    this.enhancers = new PromptEnhancers(this.modelsDir, rt, nets.cache);
  }

  /** Starts the engine on `config` (config.ts validated it); an unavailable provider fails here, loudly. */
  static async create(config: EngineConfig): Promise<Pipeline> {
    const provider = parseProvider(config.provider);
    const precision = parsePrecision(config.precision, provider);
    const rt: RuntimeOptions = {
      provider, threads: config.threads ?? 0, cacheDir: cacheDir(config.dataDir), allowSpinning: config.allowSpinning ?? false,
      // the provider decides which float16 kernels need float32 around them (WebGPU's Conv)
      precision, fp32Islands: defaultFp32Islands(provider, precision), cpuMemArena: config.cpuMemArena ?? false,
    };
    await assertProviderAvailable(provider, rt.cacheDir);
    configureAnnotatorSessions({ provider });
    const p = new Pipeline(rt, new Networks(rt, { budgetMB: config.memoryBudgetMB ?? defaultMemoryBudgetMB() }), config, { ...TOME, useRand: config.tomeUseRand ?? TOME.useRand });
    p.testDelays = config.testDelays;
    return p;
  }

  stats(): EngineStats {
    return { provider: this.rt.provider, precision: this.rt.precision, loaded: this.nets.cache.loaded(), memoryBudgetMB: this.nets.cache.budgetMB,
      rssMB: Math.round(processRssMB()), evictions: this.nets.cache.evictionCount() };
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
      return await annotate(type, image, { ...o, modelsDir: this.modelsDir });
    } catch (e) {
      // its message names the file relative to the models folder and where to get it
      if (e instanceof AnnotatorMissingError) throw new EngineError('model_missing', e.message, `auto_hint ${type}`);
      throw e;
    }
  }

  /** Generates and encodes the PNGs the API returns: the pipeline's stages, then safety check and upscale. */
  async generate(o: GenerateOptions, hooks: Hooks = {}): Promise<GenerateResult> {
    const started = performance.now();
    const raw = await this.generateRaw(o, hooks);
    const images = decodedToRgb(raw.pixels, o.samples, o.width, o.height);
    const clock = this.clockFor(o, hooks);
    const checked = await this.safetyCheck(o, images, clock);
    const upscaled = await this.upscale(o, checked.images, clock, hooks.signal);
    const applied: Applied = { ...raw.applied, safetyChecker: checked.outcome, upscale: upscaled.outcome };
    return { images: await Promise.all(upscaled.images.map(encodePng)), nsfw: checked.nsfw, applied, seconds: (performance.now() - started) / 1000 };
  }

  /** Times the phases of request `o` for hooks.onPhase (with the test delays, if any). */
  private clockFor(o: GenerateOptions, hooks: Hooks): PhaseClock {
    return new PhaseClock({ model: o.modelId, width: o.width, height: o.height }, hooks.onPhase, this.testDelays);
  }

  /** The decoded images before quantization: [samples, 3, H, W], the VAE's output (about [-1, 1]). */
  async generateRaw(o: GenerateOptions, hooks: Hooks = {}): Promise<{ pixels: Float32Array; applied: DenoiseApplied }> {
    const held: LoadedNet[] = [];
    const hold = async (p: Promise<LoadedNet>): Promise<LoadedNet> => {
      const n = await p;
      held.push(n);
      return n;
    };
    const io = new DeviceIO(this.deviceOps);
    const clock = this.clockFor(o, hooks);
    this.nets.clock = clock;
    try {
      return await this.run(o, hooks, hold, io, clock);
    } finally {
      this.nets.clock = undefined;
      io.dispose();
      for (const n of held) this.nets.release(n);
    }
  }

  /**
   * diffusers' __call__, as numbered stages: check inputs, encode the prompt, prepare the images and ControlNet
   * hints, the timesteps, then the mode's own latents-and-loop composition, then decode.
   */
  private async run(o: GenerateOptions, hooks: Hooks, hold: Hold, io: DeviceIO, clock: PhaseClock): Promise<{ pixels: Float32Array; applied: DenoiseApplied }> {
    const r = await this.checkInputs(o, hooks, hold, io, clock);
    const prompt = await this.preparePrompt(r);
    const embeds = await this.encodePrompt(r, prompt);
    const images = await this.prepareImage(r);
    const controls = await this.prepareControlImages(r, images);
    const sched = this.prepareScheduler(r);
    const unet = await this.prepareUnet(r, embeds, controls, sched);
    // The VAE decoder is loaded before the loop, as diffusers' pipeline holds every network from the start: a bad
    // VAE file fails the request before its steps run, and the job's tail is the decode alone (the eta's hardest
    // part to predict is then not a build or load). It is held to the end either way, so the peak is the same.
    const decoder = await r.hold(this.nets.vaeDecoder(r.vae.id, r.vae.files));
    const before = { ...io.count };
    let latents: Float32Array;
    let stepsRun: number;
    switch (r.mode) {
      case 'txt2img': ({ latents, stepsRun } = await this.txt2img(r, unet)); break;
      case 'img2img': ({ latents, stepsRun } = await this.img2img(r, unet, images)); break;
      case 'inpaint': ({ latents, stepsRun } = await this.inpaint(r, unet, images)); break;
      case 'ddim_inversion': ({ latents, stepsRun } = await this.ddimInversion(r, unet, images)); break;
    }
    this.lastTransfers = perStep(before, io.count, unet.runs);
    const pixels = await this.decode(r, latents, decoder);
    return { pixels, applied: { ...r.applied, ...prompt.applied, mode: r.mode, stepsRun, guessMode: controls.guessMode, promptWeighting: o.promptWeighting === true } };
  }

  // ---- modes: each a short composition of the stages ----

  /** Pure noise, the full schedule. */
  private async txt2img(r: RequestRun, u: UnetRun): Promise<{ latents: Float32Array; stepsRun: number }> {
    const latents = this.prepareLatents(r, u.sched);
    const timesteps = u.sched.timesteps;
    return { latents: await this.denoise(r, u, latents, timesteps), stepsRun: timesteps.length };
  }

  /** The init image's latents noised to the schedule's start at `strength`, the rest of the schedule. */
  private async img2img(r: RequestRun, u: UnetRun, images: PreparedImages): Promise<{ latents: Float32Array; stepsRun: number }> {
    const timesteps = this.img2imgTimesteps(r, u.sched);
    const imageLatents = await this.encodeImage(r, images.init!);
    const latents = u.sched.addNoise(imageLatents, r.gen.randn(r.latentShape), timesteps[0]!);
    return { latents: await this.denoise(r, u, latents, timesteps), stepsRun: timesteps.length };
  }

  /** img2img, with the unmasked area put back (re-noised to the next timestep) after every step. */
  private async inpaint(r: RequestRun, u: UnetRun, images: PreparedImages): Promise<{ latents: Float32Array; stepsRun: number }> {
    const timesteps = this.img2imgTimesteps(r, u.sched);
    // diffusers encodes the init image only when it needs it: a 9-channel UNet at strength 1 starts from noise.
    const imageLatents = r.inpaintUnet && r.o.strength === 1 ? new Float32Array(0) : await this.encodeImage(r, images.init!);
    const noise = r.gen.randn(r.latentShape);
    const latents = r.o.strength === 1 ? scale(noise, u.sched.initNoiseSigma) : u.sched.addNoise(imageLatents, noise, timesteps[0]!);
    // diffusers also encodes the masked image (prepare_mask_latents); 9-channel UNets take it with the mask, for
    // 4-channel ones only its draw is taken, so that later draws line up with diffusers'.
    const pixelMask = binaryMask(images.mask!);
    const mask = maskToLatent(pixelMask, r.W, r.H, r.lw, r.lh);
    if (r.inpaintUnet) {
      u.inpaintExtra = inpaintUnetExtra(mask, await this.encodeLatents(r, maskedImage(toChw(images.init!, '-1,1'), pixelMask)));
      return { latents: await this.denoise(r, u, latents, timesteps), stepsRun: timesteps.length };
    }
    r.gen.randn([1, 4, r.lh, r.lw]);
    const afterStep = (x: Float32Array, i: number): Float32Array => {
      const proper = i < timesteps.length - 1 ? u.sched.addNoise(imageLatents, noise, timesteps[i + 1]!) : imageLatents;
      return blendByMask(proper, x, mask);
    };
    return { latents: await this.denoise(r, u, latents, timesteps, afterStep), stepsRun: timesteps.length };
  }

  /** DDIM inversion of the init image's clean latents without CFG, then regeneration with it. */
  private async ddimInversion(r: RequestRun, u: UnetRun, images: PreparedImages): Promise<{ latents: Float32Array; stepsRun: number }> {
    const imageLatents = await this.encodeImage(r, images.init!);
    r.gen.randn(r.latentShape); // the noise draw of img2img's prepare_latents, kept so that draws stay in order
    const latents = await ddimInvertThenRegenerate(
      (x, t, phase) => this.predictNoise(r, u, x, t, phase === 'generate' && r.cfg, (v) => v),
      imageLatents, r.model.configs.scheduler, r.o.steps, r.o.strength, r.progress,
    );
    return { latents, stepsRun: 2 * Math.min(Math.trunc(r.o.steps * r.o.strength), r.o.steps) };
  }

  // ---- stages ----

  /** diffusers' check_inputs plus the request's fixed facts: model files, sizes, mode, generator. */
  private async checkInputs(o: GenerateOptions, hooks: Hooks, hold: Hold, io: DeviceIO, clock: PhaseClock): Promise<RequestRun> {
    // Opening a model hashes its weight files the first time they are seen (content-id.ts): that is the hash phase.
    const hashedBefore = this.files.hashedMB;
    const t0 = performance.now();
    const model = await this.files.base(o.modelId);
    const vaeFiles = o.vae ? await this.files.vae(o.vae) : { config: model.configs.vae, weights: model.vae };
    // diffusers' vae_scale_factor: 2 ** (len(block_out_channels) - 1), 8 for SD
    const vf = 2 ** (((vaeFiles.config.block_out_channels as number[] | undefined)?.length ?? 4) - 1);
    if (o.width % vf || o.height % vf) throw new EngineError('bad_input', `width and height must be multiples of ${vf} for this model`, 'width');
    const maxSkip = clipMaxSkip(model.configs.textEncoder);
    if (o.clipSkip - 1 > maxSkip) throw new EngineError('bad_input', `clip_skip must be at most ${maxSkip + 1} for model ${o.modelId}`, 'clip_skip');
    const inversion = o.scheduler === 'DDIMInverseScheduler';
    if (inversion && !o.initImage) throw new EngineError('bad_input', 'scheduler DDIMInverseScheduler needs init_image (it inverts that image, then regenerates it)', 'scheduler');
    const mode: PipelineMode = denoisingMode({ scheduler: o.scheduler, hasInitImage: !!o.initImage, hasMaskImage: !!o.maskImage, strength: o.strength });
    const plan = stepPlanProblem({ scheduler: o.scheduler, mode, steps: o.steps, strength: o.strength, useKarrasSigmas: o.useKarrasSigmas });
    if (plan) throw new EngineError('bad_input', plan.message, plan.field);
    const inpaintUnet = (model.configs.unet.in_channels ?? 4) === INPAINT_UNET_CHANNELS;
    if (inpaintUnet && mode !== 'inpaint') {
      throw new EngineError('bad_input', `model_id ${o.modelId} is an inpainting model (9-channel UNet): it needs init_image and mask_image`, 'mask_image');
    }
    const lw = o.width / vf, lh = o.height / vf;
    const vaeId = o.vae ? `vae:${o.vae}` : o.modelId;
    for (const unit of o.controls) await this.files.controlnet(unit.modelId ?? unit.type, unit.type);
    const hashed = this.files.hashedMB - hashedBefore;
    if (hashed > 0) await clock.ended({ phase: 'hash', units: hashed }, t0);
    if (hooks.onPlan) {
      const plan = await planOf(o, { nets: this.nets, files: this.files, model, vaeFiles, vaeId, tome: this.tome }, inpaintUnet);
      hooks.onPlan({ ...plan, work: [...this.promptWork(o), ...plan.work] });
    }
    const loopStart = performance.now();
    const step = { units: 0, start: undefined as number | undefined };
    return {
      o, hold, io, clock, model, mode, inpaintUnet, W: o.width, H: o.height, lw, lh, latentShape: [o.samples, 4, lh, lw], cfg: o.guidanceScale > 1,
      gen: new TorchGenerator(o.seed),
      signal: hooks.signal,
      vae: { files: vaeFiles, id: vaeId, factor: vf, scaling: vaeFiles.config.scaling_factor ?? 0.18215 },
      loras: await this.loadLoras(o, model),
      applied: {
        tome: o.tomesd, loraIgnored: [], loraUnmatched: [], annotatorNotes: {},
        karrasSigmas: o.useKarrasSigmas ? (supportsKarrasSigmas(o.scheduler) ? 'applied' : 'ignored') : 'off',
        algorithmType: o.algorithmType === 'none' ? 'none' : supportsAlgorithmType(o.scheduler) ? o.algorithmType : 'ignored',
      },
      stepRun: (units) => {
        step.start ??= performance.now();
        step.units += units;
      },
      progress: (n, total) => {
        // one step: from its first model evaluation to here (the scheduler's update included), its evaluations' work
        if (step.start !== undefined) clock.report({ phase: 'step', units: step.units, key: stepKey(o.tomesd) }, step.start);
        step.start = undefined;
        step.units = 0;
        if (hooks.signal?.aborted) throw new EngineError('cancelled', 'cancelled');
        hooks.onProgress?.({ step: n, totalSteps: total, elapsed: (performance.now() - loopStart) / 1000 });
      },
    };
  }

  /** The request's LoRAs as one combined branch set, fed to the text encoder and UNet graphs as inputs (no rebuild). */
  private async loadLoras(o: GenerateOptions, model: SdModel): Promise<RequestRun['loras']> {
    const layersPerBlock = model.configs.unet.layers_per_block ?? 2;
    const loras = await Promise.all(o.loras.map(async (l) => {
      const path = this.files.lora(l.id);
      return { parsed: await asUserFile(this.modelsDir, 'lora_model', path, () => this.loraCache.get(path, { layersPerBlock })), strength: l.strength };
    }));
    const ignored = loras.flatMap((l, i) => l.parsed.ignored.map((x) => `${o.loras[i]!.id}: ${x.key} (${x.reason})`));
    return { combined: combineLoras(loras), ignored: ignored.slice(0, 20) };
  }

  /** The prompt stage's planned work: each translation that will run (an installed translator for a text that is
   * not English), then the enhancement when an enhancer is installed. */
  private promptWork(o: GenerateOptions): PlannedWork[] {
    const work: PlannedWork[] = [];
    if (o.multiLingual) {
      for (const text of [o.prompt, o.negativePrompt]) if (text.trim() && this.translators.willTranslate(text)) work.push({ phase: 'translate', units: 1 });
    }
    if (this.enhancers.willRun(o)) work.push({ phase: 'enhance', units: 1 });
    return work;
  }

  /**
   * The prompt stage before encoding: translation (multi_lingual, of the prompt and, on its own, of a non-empty
   * negative prompt), then enhancement (enhance_prompt, the prompt only). Returns the texts to encode and what each
   * step did.
   */
  private async preparePrompt(r: RequestRun): Promise<{ text: string; negative: string; applied: Pick<Applied, 'prompt' | 'negativePrompt' | 'translation' | 'negativeTranslation' | 'promptEnhancement' | 'promptLanguage'> }> {
    const clock = r.clock;
    const translated = r.o.multiLingual ? await this.translators.translate(r.o.prompt, clock) : undefined;
    const translation: Applied['translation'] = translated?.outcome ?? { status: 'off' };
    const negative = r.o.multiLingual && r.o.negativePrompt.trim() ? await this.translators.translate(r.o.negativePrompt, clock) : undefined;
    const enhanced = await this.enhancers.run(translated?.text ?? r.o.prompt, r.o, r.signal, clock);
    const negativeText = negative?.text ?? r.o.negativePrompt;
    return {
      text: enhanced.text,
      negative: negativeText,
      applied: {
        prompt: enhanced.text, negativePrompt: negativeText, translation, promptLanguage: translated?.language, promptEnhancement: enhanced.outcome,
        ...(negative ? { negativeTranslation: { ...negative.outcome, language: negative.language } } : {}),
      },
    };
  }

  /** diffusers' encode_prompt: [negative; prompt] embeddings for CFG (clip skip, LoRA on the text encoder). */
  private async encodePrompt(r: RequestRun, prompt: { text: string; negative: string }): Promise<PromptEmbeds> {
    const { o, model } = r;
    const text = await r.hold(this.nets.textEncoder(o.modelId, { config: model.configs.textEncoder, weights: model.textEncoder }));
    const lora = loraFeedsFor(o, 'text encoder', () => loraFeeds(text.loraSlots, r.loras.combined));
    const embeds = await r.clock.time({ phase: 'encode', units: 1 }, () => encodePrompts(model.tokenizer, async (ids, rows, skip) => {
      const out = await text.session.run({
        input_ids: new ort.Tensor('int64', ids, [rows, ids.length / rows]),
        skip: new ort.Tensor('int64', BigInt64Array.of(BigInt(skip)), []),
        ...feedsOf(lora),
      });
      const hs = out.hidden_states!;
      return { data: hs.data as Float32Array, dim: hs.dims[2]! };
    }, prompt.text, prompt.negative, o.samples, r.cfg, o.clipSkip - 1, o.promptWeighting === true));
    if (model.tokenizer.source === 'bundled') r.applied.tokenizerNote = 'bundled clip-vit-large-patch14 (the model carries no tokenizer vocabulary)';
    // uploaded once; every ControlNet and UNet run of the loop reads them on the device
    const both = await r.io.toDevice(tensor(embeds.data, [embeds.batch, embeds.seq, embeds.dim]));
    const cond = r.cfg ? await r.io.toDevice(tensor(embeds.data.subarray(embeds.data.length / 2), [o.samples, embeds.seq, embeds.dim])) : both;
    return { both, cond, textLora: lora };
  }

  /** init_image and mask_image at the output size (diffusers' image_processor.preprocess, before the VAE). */
  private async prepareImage(r: RequestRun): Promise<PreparedImages> {
    return {
      init: r.o.initImage ? await resizeRgb(r.o.initImage, r.W, r.H) : undefined,
      mask: r.o.maskImage ? await resizeRgb(r.o.maskImage, r.W, r.H) : undefined,
    };
  }

  /** diffusers' prepare_image for every ControlNet: its hint (auto_hint's annotator first), batch and scales. */
  private async prepareControlImages(r: RequestRun, images: PreparedImages): Promise<PreparedControls> {
    const { o, W, H } = r;
    const controls: ControlRun[] = [];
    for (const [i, unit] of o.controls.entries()) {
      const files = await this.files.controlnet(unit.modelId ?? unit.type, unit.type);
      assertControlNetFits(files.config, r.model.configs.unet, unit.modelId ?? unit.type, o.modelId);
      const net = await r.hold(this.nets.controlnet(unit.modelId ?? unit.type, files));
      let image = await resizeRgb(unit.image, W, H);
      let hint: Float32Array;
      if (unit.type === 'inpaint' && images.mask) {
        hint = inpaintCondition(images.init ?? image, images.mask);
      } else {
        if (o.autoHint) {
          const input = image;
          image = await r.clock.time({ phase: 'annotate', units: (W * H) / 1e6, key: unit.type },
            () => this.annotateOrMissing(unit.type, input, { width: W, height: H, mask: images.mask, seed: o.seed + i }));
          const note = annotatorNote(unit.type, this.modelsDir);
          if (note) r.applied.annotatorNotes[unit.type] = note;
        }
        hint = toChw(image, '0,1');
      }
      controls.push({ net, config: files.config, cond: tensor(hint, [1, 3, H, W]), scales: tensor(new Float32Array(0), [0]) });
    }
    const guessMode = o.guessMode || controls[0]?.config.global_pool_conditions === true;
    const batch = r.cfg && !guessMode ? 2 * o.samples : o.samples;
    for (const [i, c] of controls.entries()) {
      c.condHost = repeat(c.cond.data as Float32Array, batch);
      c.cond = await r.io.toDevice(tensor(c.condHost, [batch, 3, H, W]));
      const scales = controlnetScales(c.config, o.controls[i]!.scale, guessMode);
      c.scales = await r.io.toDevice(tensor(scales, [scales.length]));
    }
    return { controls, guessMode };
  }

  /** The scheduler from the model's scheduler_config.json and the request's overrides, set to the step count. */
  private prepareScheduler(r: RequestRun): Scheduler {
    const sched = createScheduler(r.o.scheduler, r.model.configs.scheduler, { useKarrasSigmas: r.o.useKarrasSigmas, algorithmType: r.o.algorithmType });
    sched.setTimesteps(r.o.steps);
    return sched;
  }

  /** diffusers' get_timesteps for img2img and inpaint: the schedule's tail that `strength` keeps. */
  private img2imgTimesteps(r: RequestRun, sched: Scheduler): number[] {
    try {
      return img2imgStart(sched, r.o.steps, r.o.strength).timesteps;
    } catch (e) {
      throw new EngineError('bad_input', `strength ${r.o.strength} with num_inference_steps ${r.o.steps}: ${(e as Error).message}`, 'strength');
    }
  }

  /** diffusers' prepare_latents for txt2img: seeded noise scaled by the scheduler's initial sigma. */
  private prepareLatents(r: RequestRun, sched: Scheduler): Float32Array {
    return scale(r.gen.randn(r.latentShape), sched.initNoiseSigma);
  }

  /** The VAE encoder's sampled latents of an image, scaled, repeated for the samples (one generator draw). */
  private async encodeImage(r: RequestRun, image: RgbImage): Promise<Float32Array> {
    return repeat(await this.encodeLatents(r, toChw(image, '-1,1')), r.o.samples);
  }

  /** The VAE encoder's sampled, scaled latents [1, 4, lh, lw] of a [-1, 1] CHW image (one generator draw). */
  private async encodeLatents(r: RequestRun, chw: Float32Array): Promise<Float32Array> {
    const enc = await r.hold(this.nets.vaeEncoder(r.vae.id, r.vae.files));
    const out = await r.clock.time({ phase: 'vae_encode', units: (r.W * r.H) / 1e6 }, () => enc.session.run({ sample: tensor(chw, [1, 3, r.H, r.W]) }));
    const mean = out.mean!.data as Float32Array;
    return scale(gaussianSample(mean, out.std!.data as Float32Array, r.gen.randn([1, 4, r.lh, r.lw])), r.vae.scaling);
  }

  /** The UNet (LoRA, ToMe) with everything fed on every step except the latents and timestep. */
  private async prepareUnet(r: RequestRun, embeds: PromptEmbeds, controls: PreparedControls, sched: Scheduler): Promise<UnetRun> {
    const { o, model } = r;
    // One UNet graph for ToMe on and off: the ratio is an input (0 = off), so tomesd never loads another graph.
    const unet = await r.hold(this.nets.unet(o.modelId, { config: model.configs.unet, weights: model.unet }, this.tome));
    const lora = loraFeedsFor(o, 'UNet', () => loraFeeds(unet.loraSlots, r.loras.combined));
    const extra = await r.io.allToDevice(feedsOf(lora));
    extra[TOME_RATIO_INPUT] = new ort.Tensor('float64', Float64Array.of(o.tomesd ? this.tome.ratio : 0), []);
    if (this.tome.useRand) {
      // tomesd's random destination choice, drawn from the request's seed for the full-resolution grid (unread when off)
      const cells = o.tomesd ? Math.max(1, Math.floor(r.lh / this.tome.sy) * Math.floor(r.lw / this.tome.sx)) : 1;
      extra[TOME_RAND_INPUT] = new ort.Tensor('int64', o.tomesd ? tomeRandTable(o.seed, this.tome.sx, this.tome.sy, cells) : new BigInt64Array(1), [cells]);
    }
    // a LoRA weight that matched neither network's slots was not applied: say so rather than pretend
    r.applied.loraIgnored = r.loras.ignored;
    r.applied.loraUnmatched = lora.unused.filter((k) => !embeds.textLora.feeds.has(`${k}.lora_down`)).slice(0, 20);
    return { unet, arch: parseUNetConfig(model.configs.unet), extra, embeds, controls: controls.controls, guessMode: controls.guessMode, sched, zeros: new Map(), runs: 0 };
  }

  /** The guided noise prediction for latents at t: CFG over [negative, prompt], ControlNets summed. */
  private async predictNoise(r: RequestRun, u: UnetRun, x: Float32Array, t: number, withCfg: boolean, scaleInput: (v: Float32Array) => Float32Array): Promise<Float32Array> {
    const { io } = r;
    const B = withCfg ? 2 * r.o.samples : r.o.samples;
    const units = stepUnits({ width: r.W, height: r.H, samples: r.o.samples, cfg: withCfg, controls: u.controls.length, guessMode: u.guessMode });
    r.stepRun(units);
    await r.clock.delay('step', units);
    const promptEmbeds = withCfg ? u.embeds.both : u.embeds.cond;
    const latIn = scaleInput(withCfg ? cat(x, x) : x);
    const zeroUncond = u.guessMode && withCfg;
    // a 9-channel inpainting UNet takes [latents, mask, masked-image latents]; its ControlNets see the 4 latent channels
    const x9 = u.inpaintExtra;
    const sample = await io.toDevice(x9 ? tensor(withInpaintChannels(latIn, B, x9), [B, 4 + x9.channels, r.lh, r.lw]) : tensor(latIn, [B, 4, r.lh, r.lw]));
    const ctrlSample = zeroUncond ? await io.toDevice(tensor(scaleInput(x), [r.o.samples, 4, r.lh, r.lw]))
      : x9 ? await io.toDevice(tensor(latIn, [B, 4, r.lh, r.lw])) : sample;
    // no ControlNet (the sibling text2img / img2img / inpaint): zero residuals, uploaded once per batch size
    let zeros = u.controls.length === 0 ? u.zeros.get(B) : undefined;
    if (u.controls.length === 0 && !zeros) {
      zeros = await io.allToDevice(zeroResiduals(u.arch, B, [r.lh, r.lw]));
      u.zeros.set(B, zeros);
    }
    const residuals = zeros ?? await controlResiduals(u.controls, ctrlSample, t, zeroUncond ? u.embeds.cond : promptEmbeds, zeroUncond, io);
    const out = await io.run(u.unet.session, {
      sample,
      timestep: tensor(new Float32Array(B).fill(t), [B]),
      encoder_hidden_states: promptEmbeds,
      ...residuals,
      ...u.extra,
    });
    io.disposeAll([...new Set([sample, ctrlSample]), ...(zeros ? [] : Object.values(residuals))]);
    u.runs++;
    const pred = out.out_sample!.data as Float32Array;
    return withCfg ? guidance(pred, r.o.guidanceScale) : pred;
  }

  /** The denoising loop over `timesteps`; `afterStep` post-processes the latents of step i (inpaint's blend). */
  private async denoise(r: RequestRun, u: UnetRun, start: Float32Array, timesteps: number[], afterStep?: (x: Float32Array, i: number) => Float32Array): Promise<Float32Array> {
    let latents = start;
    for (const [i, t] of timesteps.entries()) {
      const noisePred = await this.predictNoise(r, u, latents, t, r.cfg, (v) => u.sched.scaleModelInput(v, t));
      latents = u.sched.step(noisePred, t, latents, { generator: r.gen, batchSize: r.o.samples });
      if (afterStep) latents = afterStep(latents, i);
      r.progress(i + 1, timesteps.length);
    }
    return latents;
  }

  /** The VAE decoder on the final latents (tiled for large images): [samples, 3, H, W] in about [-1, 1]. */
  private async decode(r: RequestRun, latents: Float32Array, dec: LoadedNet): Promise<Float32Array> {
    return r.clock.time({ phase: 'decode', units: (r.W * r.H * r.o.samples) / 1e6 },
      () => decodeLatents(dec, divide(latents, r.vae.scaling), [r.o.samples, 4, r.lh, r.lw], r.vae.factor, r.vae.files.config, this.config.vaeTileAbovePixels));
  }

  /**
   * diffusers' run_safety_checker on the decoded images: the base model's own StableDiffusionSafetyChecker when
   * its folder has safety_checker/ and feature_extractor/, else the embedded nsfwjs MobileNetV2 classifier.
   * Flagged images are replaced as safetyCheckerType says (default: a plain image saying the content was withheld).
   */
  private async safetyCheck(o: GenerateOptions, images: RgbImage[], clock: PhaseClock): Promise<{ images: RgbImage[]; nsfw: boolean[]; outcome: Applied['safetyChecker'] }> {
    if (!o.safetyChecker) return { images, nsfw: images.map(() => false), outcome: { status: 'off' } };
    // the phase is the check itself (loading the checker, once while it stays in memory, is not part of it)
    const { nsfw, model } = await this.withSafetyChecker(o.modelId, async (checker) => ({
      model: checker.model,
      nsfw: await clock.time({ phase: 'safety_check', units: (o.width * o.height * o.samples) / 1e6 },
        async () => checker instanceof NsfwClassifier ? (await checker.classify(images)).map(isFlagged) : checker.check(images)),
    }));
    const replacement = o.safetyCheckerType ?? 'sensitive_content_text';
    const out = await Promise.all(images.map((im, i) => (nsfw[i] ? replaceFlagged(im, replacement) : im)));
    return { images: out, nsfw, outcome: { status: 'ran', model, flagged: nsfw.filter(Boolean).length, replacement } };
  }

  /**
   * Runs fn with the checker for a base model, kept in memory under the engine's budget (SessionCache.useResource):
   * the model's own (safety_checker/ + feature_extractor/), else an installed standalone one
   * (models/safety_checker/default), else the embedded nsfwjs classifier.
   */
  private withSafetyChecker<T>(modelId: string, fn: (c: NsfwClassifier | ClipSafetyChecker) => Promise<T>): Promise<T> {
    const base = this.files.path('base', modelId);
    const standalone = this.files.path('safety_checker', 'default');
    const own = base && statSync(base).isDirectory() ? checkerFiles(base) : undefined;
    const installed = !own && standalone && statSync(standalone).isDirectory() ? checkerFiles(standalone) : undefined;
    const files = own ?? installed;
    const model = own ? `${modelId}/safety_checker (diffusers StableDiffusionSafetyChecker)` : 'safety_checker/default (diffusers StableDiffusionSafetyChecker)';
    return this.nets.cache.useResource<NsfwClassifier | ClipSafetyChecker, T>(`extra:safety_checker:${files?.dir ?? 'embedded:nsfwjs'}`, async () => ({
      // twice its weight files, as a network's first estimate (nsfwjs: ~3 MB of uint8 weights in float32)
      estimateMB: files ? 2 * weightFilesMB(files.dir) : 40,
      create: () => (files ? asUserFile(this.modelsDir, 'safety_checker', files.dir, () => ClipSafetyChecker.load(files, model, this.rt)) : NsfwClassifier.load(this.rt)),
    }), fn);
  }

  /**
   * The upscale stage (after the safety check): an installed Real-ESRGAN (x2plus for ×2; x4plus then a Lanczos
   * resize for ×2 or ×3), else the embedded esrgan-slim ×2 / ×3, in tiles. Output: exactly factor × the size.
   */
  private async upscale(o: GenerateOptions, images: RgbImage[], clock: PhaseClock, signal?: AbortSignal): Promise<{ images: RgbImage[]; outcome: Applied['upscale'] }> {
    if (o.upscale === 1) return { images, outcome: { status: 'off' } };
    const factor = o.upscale;
    const installed = REAL_ESRGAN_IDS[factor].map((id) => ({ id, path: this.files.upscaler(id) })).find((x) => x.path);
    const key = `extra:upscaler:${installed ? `${installed.id}:${installed.path}` : `esrgan-slim-x${factor}`}`;
    const out: RgbImage[] = [];
    // kept in memory under the engine's budget (SessionCache.useResource); the phase is the upscaling itself
    // (loading the upscaler, once while it stays in memory, is not part of it)
    const model = await this.nets.cache.useResource<UpscaleNet, string>(key, async () => ({
      // twice its weights (esrgan-slim: well under 1 MB)
      estimateMB: installed ? 2 * statSync(installed.path!).size / 2 ** 20 : 20,
      create: () => (installed
        ? asUserFile(this.modelsDir, 'upscale', installed.path!, () => rrdbNet(installed.path!, installed.id, this.rt))
        : esrganSlim(factor, this.rt)),
    }), async (n) => {
      await clock.time({ phase: 'upscale', units: (o.width * o.height * o.samples) / 1e6, key: `x${factor}` }, async () => {
        for (const im of images) {
          const up = await upscaleTiled(n, im, signal);
          out.push(n.scale === factor ? up : await resizeTo(up, im.width * factor, im.height * factor));
        }
      });
      return n.scale === factor ? n.model : `${n.model} ×${n.scale}, then Lanczos to ×${factor}`;
    });
    return { images: out, outcome: { status: 'ran', model, factor } };
  }
}


/** What the stages up to decoding applied (the safety check and upscale come after). */
export type DenoiseApplied = Omit<Applied, 'safetyChecker' | 'upscale'>;

type Hold = (p: Promise<LoadedNet>) => Promise<LoadedNet>;

/** One request's fixed facts and state shared by the stages. */
interface RequestRun {
  o: GenerateOptions;
  hold: Hold;
  /** Host↔device copies of this generation (onnx/device.ts). */
  io: DeviceIO;
  /** Times each phase for the eta, logs and metrics (phases.ts). */
  clock: PhaseClock;
  /** The model's UNet takes 9 channels (an SD inpainting model): only inpaint mode can run it. */
  inpaintUnet: boolean;
  model: SdModel;
  mode: PipelineMode;
  W: number;
  H: number;
  /** latent width and height (pixels / VAE scale factor) */
  lw: number;
  lh: number;
  latentShape: number[];
  cfg: boolean;
  gen: TorchGenerator;
  /** The request's abort signal (the stages that loop check it). */
  signal?: AbortSignal;
  vae: { files: NetworkFiles & { config: VaeConfigJson }; id: string; factor: number; scaling: number };
  loras: { combined: ReturnType<typeof combineLoras>; ignored: string[] };
  /** Filled in by the stages as they run. */
  applied: Pick<Applied, 'tome' | 'karrasSigmas' | 'algorithmType' | 'loraIgnored' | 'loraUnmatched' | 'annotatorNotes' | 'tokenizerNote'>;
  /** A model evaluation of the current step starts, with its work (phases.ts stepUnits). */
  stepRun: (units: number) => void;
  /** Reports a finished step; throws EngineError('cancelled') once the request was aborted. */
  progress: (step: number, total: number) => void;
}

interface PromptEmbeds {
  /** [2·samples, seq, dim] with CFG ([negative; prompt]), else the same as cond. */
  both: ort.Tensor;
  /** [samples, seq, dim]: the prompt's half. */
  cond: ort.Tensor;
  textLora: LoraFeeds;
}

interface PreparedImages {
  init?: RgbImage;
  mask?: RgbImage;
}

interface PreparedControls {
  controls: ControlRun[];
  guessMode: boolean;
}

interface UnetRun {
  unet: LoadedNet;
  /** The UNet's architecture (the zero ControlNet residuals of a request without ControlNets take its shapes). */
  arch: ReturnType<typeof parseUNetConfig>;
  /** LoRA and ToMe feeds, the same on every step */
  extra: Record<string, ort.Tensor>;
  embeds: PromptEmbeds;
  controls: ControlRun[];
  guessMode: boolean;
  sched: Scheduler;
  /** Zero ControlNet residuals (requests without a ControlNet), by batch size, on the device. */
  zeros: Map<number, Record<string, ort.Tensor>>;
  /** The extra channels of a 9-channel inpainting UNet (set by the inpaint mode). */
  inpaintExtra?: InpaintUnetExtra;
  /** UNet evaluations so far (the transfer count's per-step divisor). */
  runs: number;
}

function perStep(before: TransferCount, after: TransferCount, steps: number): StepTransfers {
  const n = Math.max(1, steps);
  return {
    steps, setupHostToDevice: before.hostToDevice,
    hostToDevicePerStep: (after.hostToDevice - before.hostToDevice) / n, deviceToHostPerStep: (after.deviceToHost - before.deviceToHost) / n,
  };
}

function feedsOf(l: LoraFeeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of l.feeds) out[name] = tensor(t.data, t.dims);
  return out;
}

/**
 * A ControlNet runs beside the UNet on the same text embeddings: one trained for another text width (an SD 1.5
 * ControlNet, 768, with an SD 2.x model, 1024) cannot. Throws EngineError bad_input naming controlnet_model.
 */
function assertControlNetFits(control: { cross_attention_dim: number | number[] }, unet: { cross_attention_dim: number | number[] }, controlId: string, modelId: string): void {
  const width = (d: number | number[]) => (Array.isArray(d) ? d[0]! : d);
  const c = width(control.cross_attention_dim);
  const u = width(unet.cross_attention_dim);
  if (c !== u) {
    const family = (d: number) => (d === 768 ? ' (SD 1.x)' : d === 1024 ? ' (SD 2.x)' : '');
    throw new EngineError('bad_input', `controlnet_model: ${controlId} takes ${c}-wide text embeddings${family(c)} but model_id ${modelId} gives ${u}-wide ones${family(u)}; use a ControlNet made for that base model`, 'controlnet_model');
  }
}

/**
 * The LoRA feeds of one network; a LoRA whose layer widths do not fit the base model (one made for SD 1.x used with
 * an SD 2.x model) is the request's mistake: EngineError bad_input naming lora_model, not an internal error.
 */
function loraFeedsFor(o: GenerateOptions, network: string, feeds: () => LoraFeeds): LoraFeeds {
  try {
    return feeds();
  } catch (e) {
    const ids = o.loras.map((l) => l.id).join(', ');
    throw new EngineError('bad_input', `lora_model: ${ids} does not fit model_id ${o.modelId}'s ${network} (a LoRA for another base model?): ${(e as Error).message}`, 'lora_model');
  }
}

