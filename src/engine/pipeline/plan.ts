// A request's work plan, before it runs: the networks it will build and load (none when already loaded), one
// prompt encoding, its denoising steps (as the scheduler will run them) and its decode. The eta multiplies this
// plan by measured throughput (worker/eta.ts).
import { createScheduler, img2imgStart } from '../schedulers/index.ts';
import type { SdModel } from '../weights/open.ts';
import type { ModelFiles, Json } from './model-files.ts';
import { Networks, type NetworkFiles } from './networks.ts';
import type { PlannedWork, WorkPlan } from './phases.ts';
import type { GenerateOptions } from './types.ts';
import type { TomeOptions } from '../models/unet.ts';

export interface PlanContext {
  nets: Networks;
  files: ModelFiles;
  model: SdModel;
  vaeFiles: { config: Json; weights: NetworkFiles['weights'] };
  vaeId: string;
  tome: TomeOptions;
}

/** Denoising steps the request runs (img2img and inversion run fewer or more than num_inference_steps). */
export function plannedSteps(o: GenerateOptions, schedulerConfig: Record<string, unknown>): number {
  const inversion = o.scheduler === 'DDIMInverseScheduler';
  const partial = !!o.initImage && (!!o.maskImage || o.strength < 1);
  const sched = createScheduler(o.scheduler, schedulerConfig as never, { useKarrasSigmas: o.useKarrasSigmas, algorithmType: o.algorithmType });
  sched.setTimesteps(o.steps);
  if (inversion) return 2 * Math.min(Math.trunc(o.steps * o.strength), o.steps);
  if (!partial) return sched.timesteps.length;
  try {
    return img2imgStart(sched, o.steps, o.strength).timesteps.length;
  } catch {
    return 0; // the run rejects this strength itself
  }
}

/** The work `o` will do, in phases.ts units, in the order it runs. */
export async function planOf(o: GenerateOptions, c: PlanContext): Promise<WorkPlan> {
  const work: PlannedWork[] = [];
  const cfg = o.guidanceScale > 1;
  work.push(...c.nets.pending('clip-text', o.modelId, { config: c.model.configs.textEncoder, weights: c.model.textEncoder }), { phase: 'encode', units: 1 });
  for (const unit of o.controls) {
    const id = unit.modelId ?? unit.type;
    work.push(...c.nets.pending('controlnet', id, await c.files.controlnet(id, unit.type)));
  }
  if (o.initImage && (o.maskImage || o.strength < 1 || o.scheduler === 'DDIMInverseScheduler')) work.push(...c.nets.pending('vae-encoder', c.vaeId, c.vaeFiles));
  work.push(...c.nets.pending('unet', o.modelId, { config: c.model.configs.unet, weights: c.model.unet }, Networks.options('unet', c.tome)));
  const vf = 2 ** (((c.vaeFiles.config.block_out_channels as number[] | undefined)?.length ?? 4) - 1);
  const latentPixels = (o.width / vf) * (o.height / vf);
  const steps = plannedSteps(o, c.model.configs.scheduler);
  const perStep = (latentPixels * 64 * o.samples * (cfg ? 2 : 1)) / 1e6;
  for (let i = 0; i < steps; i++) work.push({ phase: 'step', units: perStep, key: `c${o.controls.length}` });
  work.push(...c.nets.pending('vae-decoder', c.vaeId, c.vaeFiles), { phase: 'decode', units: (o.width * o.height * o.samples) / 1e6 });
  return { model: o.modelId, width: o.width, height: o.height, work };
}
