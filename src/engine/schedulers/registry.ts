// The 18 schedulers by diffusers class name, created from a model's scheduler_config.json plus request
// options the way `Cls.from_config(config, **overrides)` does.
import type { AlgorithmType, SchedulerName } from '../pipeline/types.ts';
import { resolveConfig } from './common.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';
import { DDPM_DEFAULTS, DDPMScheduler } from './ddpm.ts';
import { DDIM_DEFAULTS, DDIMScheduler } from './ddim.ts';
import { PNDM_DEFAULTS, PNDMScheduler } from './pndm.ts';
import { LMS_DEFAULTS, LMSDiscreteScheduler } from './lms.ts';
import { EULER_DEFAULTS, EulerDiscreteScheduler } from './euler.ts';
import { EULER_ANCESTRAL_DEFAULTS, EulerAncestralDiscreteScheduler } from './euler-ancestral.ts';
import { DPM_MULTISTEP_DEFAULTS, DPMSolverMultistepScheduler } from './dpmsolver-multistep.ts';
import { HEUN_DEFAULTS, HeunDiscreteScheduler } from './heun.ts';
import { KDPM2_DEFAULTS, KDPM2AncestralDiscreteScheduler, KDPM2DiscreteScheduler } from './kdpm2.ts';
import { DPM_SINGLESTEP_DEFAULTS, DPMSolverSinglestepScheduler } from './dpmsolver-singlestep.ts';
import { UNIPC_DEFAULTS, UniPCMultistepScheduler } from './unipc.ts';
import { DDIM_INVERSE_DEFAULTS, DDIMInverseScheduler } from './ddim-inverse.ts';
import { DEIS_DEFAULTS, DEISMultistepScheduler } from './deis.ts';
import { IPNDM_DEFAULTS, IPNDMScheduler } from './ipndm.ts';
import { KARRAS_VE_DEFAULTS, KarrasVeScheduler } from './karras-ve.ts';
import { SCORE_SDE_VE_DEFAULTS, ScoreSdeVeScheduler } from './score-sde-ve.ts';
import { LCM_DEFAULTS, LCMScheduler } from './lcm.ts';

interface Entry {
  defaults: SchedulerConfig;
  create(config: SchedulerConfig): Scheduler;
}

const REGISTRY: Record<SchedulerName, Entry> = {
  DDPMScheduler: { defaults: DDPM_DEFAULTS, create: (c) => new DDPMScheduler(c) },
  DDIMScheduler: { defaults: DDIM_DEFAULTS, create: (c) => new DDIMScheduler(c) },
  PNDMScheduler: { defaults: PNDM_DEFAULTS, create: (c) => new PNDMScheduler(c) },
  LMSDiscreteScheduler: { defaults: LMS_DEFAULTS, create: (c) => new LMSDiscreteScheduler(c) },
  EulerDiscreteScheduler: { defaults: EULER_DEFAULTS, create: (c) => new EulerDiscreteScheduler(c) },
  EulerAncestralDiscreteScheduler: { defaults: EULER_ANCESTRAL_DEFAULTS, create: (c) => new EulerAncestralDiscreteScheduler(c) },
  DPMSolverMultistepScheduler: { defaults: DPM_MULTISTEP_DEFAULTS, create: (c) => new DPMSolverMultistepScheduler(c) },
  HeunDiscreteScheduler: { defaults: HEUN_DEFAULTS, create: (c) => new HeunDiscreteScheduler(c) },
  KDPM2DiscreteScheduler: { defaults: KDPM2_DEFAULTS, create: (c) => new KDPM2DiscreteScheduler(c) },
  DPMSolverSinglestepScheduler: { defaults: DPM_SINGLESTEP_DEFAULTS, create: (c) => new DPMSolverSinglestepScheduler(c) },
  KDPM2AncestralDiscreteScheduler: { defaults: KDPM2_DEFAULTS, create: (c) => new KDPM2AncestralDiscreteScheduler(c) },
  UniPCMultistepScheduler: { defaults: UNIPC_DEFAULTS, create: (c) => new UniPCMultistepScheduler(c) },
  DDIMInverseScheduler: { defaults: DDIM_INVERSE_DEFAULTS, create: (c) => new DDIMInverseScheduler(c) },
  DEISMultistepScheduler: { defaults: DEIS_DEFAULTS, create: (c) => new DEISMultistepScheduler(c) },
  IPNDMScheduler: { defaults: IPNDM_DEFAULTS, create: (c) => new IPNDMScheduler(c) },
  KarrasVeScheduler: { defaults: KARRAS_VE_DEFAULTS, create: (c) => new KarrasVeScheduler(c) },
  ScoreSdeVeScheduler: { defaults: SCORE_SDE_VE_DEFAULTS, create: (c) => new ScoreSdeVeScheduler(c) },
  LCMScheduler: { defaults: LCM_DEFAULTS, create: (c) => new LCMScheduler(c) },
};

/** The classes whose diffusers __init__ has use_karras_sigmas; elsewhere the API reports it as ignored. */
const KARRAS_CAPABLE: ReadonlySet<SchedulerName> = new Set<SchedulerName>([
  'LMSDiscreteScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler', 'HeunDiscreteScheduler',
  'KDPM2DiscreteScheduler', 'DPMSolverSinglestepScheduler', 'KDPM2AncestralDiscreteScheduler',
  'UniPCMultistepScheduler', 'DEISMultistepScheduler',
]);

export function supportsKarrasSigmas(name: SchedulerName): boolean {
  return KARRAS_CAPABLE.has(name);
}

/** algorithm_type applies to DPMSolverMultistepScheduler only (the API reports it ignored elsewhere). */
export function supportsAlgorithmType(name: SchedulerName): boolean {
  return name === 'DPMSolverMultistepScheduler';
}

export interface SchedulerRequestOptions {
  useKarrasSigmas?: boolean;
  algorithmType?: AlgorithmType;
  /** Extra from_config keyword overrides (e.g. prediction_type for a v-prediction model). */
  overrides?: SchedulerConfig;
}

/**
 * The from_config overrides a request produces. 'dpmsolver+++' means 'sde-dpmsolver++' and 'none' keeps the
 * class default. diffusers rejects final_sigmas_type 'zero' (its default) for the first-order-data-free
 * variants 'dpmsolver' and 'sde-dpmsolver'; for those we ask for 'sigma_min' (what its error message
 * recommends) unless the model's config sets final_sigmas_type itself, in which case diffusers' error stands.
 */
export function requestOverrides(name: SchedulerName, given: SchedulerConfig, opts: SchedulerRequestOptions): SchedulerConfig {
  const out: SchedulerConfig = { ...(opts.overrides ?? {}) };
  if (opts.useKarrasSigmas !== undefined && supportsKarrasSigmas(name)) out.use_karras_sigmas = opts.useKarrasSigmas;
  if (supportsAlgorithmType(name) && opts.algorithmType && opts.algorithmType !== 'none') {
    const algo = opts.algorithmType === 'dpmsolver+++' ? 'sde-dpmsolver++' : opts.algorithmType;
    out.algorithm_type = algo;
    if ((algo === 'dpmsolver' || algo === 'sde-dpmsolver') && given.final_sigmas_type === undefined && out.final_sigmas_type === undefined) {
      out.final_sigmas_type = 'sigma_min';
    }
  }
  return out;
}

/** Resolves `name.from_config(config, **overrides)` without building the scheduler. */
export function resolveSchedulerConfig(name: SchedulerName, config: SchedulerConfig, opts: SchedulerRequestOptions = {}): SchedulerConfig {
  const entry = REGISTRY[name];
  if (!entry) throw new Error(`unknown scheduler ${String(name)}`);
  return resolveConfig(entry.defaults, config, requestOverrides(name, config, opts));
}

export function createScheduler(name: SchedulerName, config: SchedulerConfig, opts: SchedulerRequestOptions = {}): Scheduler {
  return REGISTRY[name].create(resolveSchedulerConfig(name, config, opts));
}
