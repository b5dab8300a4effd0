// A request's work plan, before it runs, in the order the pipeline runs it: the text encoder's build and load,
// the prompt encoding, each ControlNet's build and load (then its annotator), the UNet's, the VAE decoder's, the
// VAE encoder's and the init image's encoding, the denoising steps, the decode, the safety check and upscale.
// A network already loaded plans nothing; one compiled before plans its load only. The eta multiplies this
// plan by the seconds per unit measured on this server (worker/eta.ts).
import type { SdModel } from '../weights/open.ts';
import type { ModelFiles, Json } from './model-files.ts';
import { Networks, type NetworkFiles } from './networks.ts';
import type { PlannedWork, WorkPlan } from './phases.ts';
import type { GenerateOptions } from './types.ts';
import type { TomeOptions } from '../models/unet.ts';
import { requestWork, type RequestShape } from './work.ts';

export interface PlanContext {
  nets: Networks;
  files: ModelFiles;
  model: SdModel;
  vaeFiles: { config: Json; weights: NetworkFiles['weights'] };
  vaeId: string;
  tome: TomeOptions;
}

/** The work-deciding facts of engine options. */
export function shapeOfOptions(o: GenerateOptions, inpaintUnet = false): RequestShape {
  return {
    width: o.width, height: o.height, samples: o.samples, steps: o.steps, guidanceScale: o.guidanceScale, strength: o.strength,
    scheduler: o.scheduler, useKarrasSigmas: o.useKarrasSigmas, algorithmType: o.algorithmType, hasInitImage: !!o.initImage,
    hasMaskImage: !!o.maskImage, controls: o.controls.map((c) => c.type), autoHint: o.autoHint, guessMode: o.guessMode, tomesd: o.tomesd,
    safetyChecker: o.safetyChecker, upscale: o.upscale, inpaintUnet,
  };
}

/** The work `o` will do, in phases.ts units, in the order it runs (the hash of new weight files comes before). */
export async function planOf(o: GenerateOptions, c: PlanContext, inpaintUnet: boolean): Promise<WorkPlan> {
  const w = requestWork(shapeOfOptions(o, inpaintUnet), c.model.configs.scheduler);
  const work: PlannedWork[] = [];
  work.push(...c.nets.pending('clip-text', o.modelId, { config: c.model.configs.textEncoder, weights: c.model.textEncoder }), w.encode);
  for (const [i, unit] of o.controls.entries()) {
    const id = unit.modelId ?? unit.type;
    work.push(...c.nets.pending('controlnet', id, await c.files.controlnet(id, unit.type)));
    if (w.annotate[i]) work.push(w.annotate[i]!);
  }
  work.push(...c.nets.pending('unet', o.modelId, { config: c.model.configs.unet, weights: c.model.unet }, Networks.options('unet', c.tome)));
  work.push(...c.nets.pending('vae-decoder', c.vaeId, c.vaeFiles));
  if (w.vaeEncode.length) work.push(...c.nets.pending('vae-encoder', c.vaeId, c.vaeFiles), ...w.vaeEncode);
  work.push(...w.steps, w.decode, ...w.after);
  return { model: o.modelId, width: o.width, height: o.height, work };
}
