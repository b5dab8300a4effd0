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
  enhancePrompt: boolean;
  multiLingual: boolean;
  upscale: boolean;
}

export interface ProgressEvent {
  step: number;
  totalSteps: number;
  /** seconds spent in the denoising loop so far */
  elapsed: number;
}

export interface GenerateResult {
  /** PNG-encoded images, one per sample (upscaled when asked). */
  images: Buffer[];
  nsfw: boolean[];
  /** Settings as actually applied, plus notes of what was not (e.g. safety_checker: 'unavailable'). */
  applied: Record<string, unknown>;
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
