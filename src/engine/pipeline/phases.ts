// The phases of a generation, timed: what the engine reports for logs, /metrics and the eta. A request first
// announces its plan (each phase it will run with its amount of work in that phase's unit), then reports each
// phase as it ends with its seconds. The eta (worker/eta.ts) learns seconds per unit of each phase from these
// reports. Units (see PHASE_UNITS): hash, build and load, MB of weights; translate and enhance, one text;
// encode, one prompt encoding;
// vae_encode and annotate, input megapixels; step, megapixel-passes of one denoising step (stepUnits);
// decode, safety_check and upscale, megapixels of the decoded images.
import type { WeightSource } from '../weights/types.ts';

export const PHASES = ['hash', 'translate', 'enhance', 'build', 'load', 'encode', 'vae_encode', 'annotate', 'step', 'decode', 'safety_check', 'upscale'] as const;
export type Phase = (typeof PHASES)[number];

/** The unit each phase's work is counted in (what one `units` of a PlannedWork means). Changing one: bump
 *  PHASE_UNITS_VERSION (jobs/phase-rates.ts), so that rates kept in a DATA_DIR are not read in the new unit. */
export const PHASE_UNITS: Record<Phase, string> = {
  hash: 'MB of weight files hashed',
  translate: 'one text translated (the prompt or the negative prompt; multi_lingual)',
  enhance: 'one prompt continued (enhance_prompt, at most 64 new tokens)',
  build: 'MB of the network\'s weights',
  load: 'MB of the network\'s weights',
  encode: 'one prompt encoding (negative and positive prompt, every sample)',
  vae_encode: 'megapixels of the image the VAE encoder reads',
  annotate: 'megapixels of the image the annotator reads',
  step: 'megapixel-passes: output pixels × (UNet batch + ControlNets × their batch) / 1e6, per step',
  decode: 'megapixels decoded (width × height × samples)',
  safety_check: 'megapixels checked (width × height × samples)',
  upscale: 'megapixels read by the upscaler (width × height × samples)',
};

/**
 * The work of one denoising step, in megapixel-passes: the UNet runs on `samples` rows (twice with CFG) and
 * each ControlNet on as many (on the conditional rows only in guess mode). Output pixels stand for latent pixels
 * (latent = output / vae_scale_factor², fixed per model), so a queued request's work is known without its model.
 * diffusers' StableDiffusionControlNetPipeline.__call__ batches the same way (torch.cat([latents] * 2) for CFG;
 * guess mode feeds the ControlNets the conditional half).
 */
export function stepUnits(s: { width: number; height: number; samples: number; cfg: boolean; controls: number; guessMode: boolean }): number {
  const unetRows = s.samples * (s.cfg ? 2 : 1);
  const controlRows = s.guessMode && s.cfg ? s.samples : unetRows;
  return (s.width * s.height * (unetRows + s.controls * controlRows)) / 1e6;
}

/** What times a phase (PhaseClock): the extras' stages take one without depending on the whole clock. */
export interface PhaseTimer {
  time<T>(work: PlannedWork, fn: () => Promise<T>): Promise<T>;
}

/** One planned piece of work. `key` tells apart rates that differ (the network kind of a build or load, the upscale factor). */
export interface PlannedWork {
  phase: Phase;
  units: number;
  key?: string;
  /** The network it concerns (build, load), for logs. */
  network?: string;
}

export interface WorkPlan {
  model: string;
  width: number;
  height: number;
  work: PlannedWork[];
}

/** One finished phase: its seconds and work (same units as the plan). */
export interface PhaseEvent extends PlannedWork {
  seconds: number;
  model: string;
  width: number;
  height: number;
}

/**
 * Test setting only: extra milliseconds the engine sleeps per unit of a phase, so that a test on the tiny
 * models sees the time structure of a large model (ENGINE_TEST_DELAYS is never read in production code paths
 * unless set; it is not documented as a user setting).
 */
export type TestDelays = Partial<Record<Phase, number>>;

/** MB of a weight source's tensors as stored. */
export function weightsMB(src: WeightSource): number {
  const bytes: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1 };
  let total = 0;
  for (const k of src.keys()) {
    const i = src.info(k);
    if (i) total += i.shape.reduce((a, b) => a * b, 1) * (bytes[i.dtype] ?? 4);
  }
  return total / 2 ** 20;
}

/** Times phases of one request and reports them; sleeps the test delays, if any, inside the timed span. */
export class PhaseClock {
  constructor(
    private readonly labels: { model: string; width: number; height: number },
    private readonly sink?: (e: PhaseEvent) => void,
    private readonly delays?: TestDelays,
  ) {}

  /** Sleeps the test delay of `units` of phase (nothing unless a test set delays). */
  async delay(phase: Phase, units: number): Promise<void> {
    const ms = (this.delays?.[phase] ?? 0) * units;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  /** Reports a phase that started at t0 (performance.now() ms) and ends now. */
  report(work: PlannedWork, t0: number): void {
    this.sink?.({ ...work, ...this.labels, seconds: (performance.now() - t0) / 1000 });
  }

  /** Reports a phase that started at t0 and ends now, after the test delay if any. */
  async ended(work: PlannedWork, t0: number): Promise<void> {
    await this.delay(work.phase, work.units);
    this.report(work, t0);
  }

  /** Runs fn as one phase of `units` work and reports its duration. */
  async time<T>(work: PlannedWork, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await fn();
    await this.ended(work, t0);
    return out;
  }
}
