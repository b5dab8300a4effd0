// The engine's one public call: plain, already-validated options in, images out.
// api/ and worker/ depend on these types only; nothing here knows HTTP, queues or storage.
import type { PhaseEvent, WorkPlan } from './phases.ts';
export type { Phase, PhaseEvent, PlannedWork, WorkPlan } from './phases.ts';

export const CONTROLNET_TYPES = [
  'canny', 'depth', 'hed', 'mlsd', 'normal', 'openpose', 'scribble', 'segmentation',
  'inpaint', 'softedge', 'lineart', 'shuffle', 'tile', 'face_detector', 'qrcode',
] as const;
export type ControlNetType = (typeof CONTROLNET_TYPES)[number];

export const SCHEDULER_NAMES = [
  'DDPMScheduler', 'DDIMScheduler', 'PNDMScheduler', 'LMSDiscreteScheduler', 'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler', 'DPMSolverMultistepScheduler', 'HeunDiscreteScheduler',
  'KDPM2DiscreteScheduler', 'DPMSolverSinglestepScheduler', 'KDPM2AncestralDiscreteScheduler',
  'UniPCMultistepScheduler', 'DDIMInverseScheduler', 'DEISMultistepScheduler', 'IPNDMScheduler',
  'KarrasVeScheduler', 'ScoreSdeVeScheduler', 'LCMScheduler',
] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

export const ALGORITHM_TYPES = ['none', 'dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++', 'dpmsolver+++'] as const;
export type AlgorithmType = (typeof ALGORITHM_TYPES)[number];

/** How an image the safety checker flags is replaced (SPEC: safety_checker_type). */
export const SAFETY_CHECKER_TYPES = ['blur', 'sensitive_content_text', 'pixelate', 'black'] as const;
export type SafetyCheckerType = (typeof SAFETY_CHECKER_TYPES)[number];

/** An RGB image already decoded: HWC uint8, 3 channels. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // length width*height*3
}

export interface ControlUnit {
  type: ControlNetType;
  /** ControlNet model id in the models folder; defaults to the type's default id. */
  modelId?: string;
  /** The hint (after the annotator when autoHint), or the annotator input when autoHint. */
  image: RgbImage;
  scale: number;
}

export interface LoraRef {
  id: string;
  strength: number;
}

export interface GenerateOptions {
  modelId: string;
  prompt: string;
  negativePrompt: string;
  controls: ControlUnit[];
  autoHint: boolean;
  guessMode: boolean;
  initImage?: RgbImage;
  maskImage?: RgbImage;
  width: number;
  height: number;
  samples: number;
  scheduler: SchedulerName;
  steps: number;
  guidanceScale: number;
  strength: number;
  seed: number;
  tomesd: boolean;
  useKarrasSigmas: boolean;
  algorithmType: AlgorithmType;
  vae?: string | null;
  loras: LoraRef[];
  clipSkip: number;
  safetyChecker: boolean;
  /** How flagged images are replaced; default sensitive_content_text. */
  safetyCheckerType?: SafetyCheckerType;
  enhancePrompt: boolean;
  multiLingual: boolean;
  /** Upscale factor of each output: 1 (none), 2, or 3. */
  upscale: 1 | 2 | 3;
  /** Read the prompts' weighting syntax ((word:1.3), [word], BREAK); the request field prompt_weighting. Default false here (plain text). */
  promptWeighting?: boolean;
}

export interface ProgressEvent {
  step: number;
  totalSteps: number;
  /** seconds spent in the denoising loop so far */
  elapsed: number;
}

/** The four ways the pipeline runs, as diffusers' pipelines name them (DDIM inversion: invert init_image, regenerate). */
export type PipelineMode = 'txt2img' | 'img2img' | 'inpaint' | 'ddim_inversion';

/** What an optional extra did: not asked for, asked for but unable to run (with why), or ran (with details). */
export type ExtraOutcome<Ran extends object = object> =
  | { status: 'off' }
  | { status: 'unavailable'; reason: string }
  | ({ status: 'ran' } & Ran);

/**
 * What the engine actually did for a request, in the engine's own terms. worker/meta.ts alone translates it into
 * the hosted API's meta names and "yes"/"no" strings; nothing here claims a step that did not run.
 */
export interface Applied {
  mode: PipelineMode;
  /** UNet evaluations of the denoising loop (DDIM inversion counts both passes). */
  stepsRun: number;
  /** The prompt actually encoded (after translation and enhancement, when those ran). */
  prompt: string;
  /** The negative prompt actually encoded (translated when multi_lingual ran on it; never enhanced). */
  negativePrompt: string;
  guessMode: boolean;
  tome: boolean;
  /** Karras sigmas: used, asked for but unsupported by the scheduler, or not asked for. */
  karrasSigmas: 'applied' | 'ignored' | 'off';
  /** The DPM-Solver algorithm used, 'ignored' when the scheduler has none, 'none' when not asked for. */
  algorithmType: AlgorithmType | 'ignored';
  /** LoRA keys not applied, each `<lora id>: <key> (<reason>)` (at most 20). */
  loraIgnored: string[];
  /** LoRA weights that matched no layer of the text encoder or UNet (at most 20). */
  loraUnmatched: string[];
  /** auto_hint notes per control type (e.g. the annotator model used or its fallback). */
  annotatorNotes: Partial<Record<ControlNetType, string>>;
  /** The checker that ran (its model id), how many images it flagged, and how they were replaced. */
  safetyChecker: ExtraOutcome<{ model: string; flagged: number; replacement: SafetyCheckerType }>;
  /** The upscaler that ran and its overall factor. */
  upscale: ExtraOutcome<{ model: string; factor: number }>;
  /** multi_lingual: language identification, then translation when the prompt is not English. */
  translation: ExtraOutcome<{ model: string; note: string }>;
  /** The prompt's language as identified (ISO 639-3, "und" when undetermined); absent when multi_lingual is off. */
  promptLanguage?: string;
  /** multi_lingual on a non-empty negative prompt (identified and translated on its own, as the prompt is); absent
   * when multi_lingual is off or the negative prompt is empty. */
  negativeTranslation?: ExtraOutcome<{ model: string; note: string }> & { language: string };
  /** enhance_prompt: the GPT-2 that continued the prompt and how it decoded (see extras/prompt-enhancer.ts). */
  promptEnhancement: ExtraOutcome<{ model: string; note: string }>;
  /** The prompts' weighting syntax ((word:1.3), [word], BREAK) was read (GenerateOptions.promptWeighting). */
  promptWeighting: boolean;
  /** Set when the model carries no tokenizer vocabulary and the bundled CLIP one was used. */
  tokenizerNote?: string;
}

export interface GenerateResult {
  /** PNG-encoded images, one per sample (upscaled when asked). */
  images: Buffer[];
  nsfw: boolean[];
  /** What was actually applied (worker/meta.ts maps it to the response's meta). */
  applied: Applied;
  seconds: number;
}

/** The hint maps auto_hint would feed each ControlNet type, on their own (users ask to see them). */
export interface HintRequest {
  types: ControlNetType[];
  image: RgbImage;
  mask?: RgbImage;
  width: number;
  height: number;
  seed: number;
}

/** What a caller may watch while a generation runs (see phases.ts for the plan and phase events). */
export interface GenerateHooks {
  onProgress?: (p: ProgressEvent) => void;
  /** The work the request will do, announced once before it starts. */
  onPlan?: (plan: WorkPlan) => void;
  /** Each phase as it ends, with its seconds. */
  onPhase?: (e: PhaseEvent) => void;
  signal?: AbortSignal;
}

export interface Engine {
  /** One PNG per requested type, at width x height. */
  hint(req: HintRequest): Promise<Buffer[]>;
  generate(opts: GenerateOptions, hooks?: GenerateHooks): Promise<GenerateResult>;
  close(): Promise<void>;
}
