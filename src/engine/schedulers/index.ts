// Public surface of the schedulers for the pipeline and the API.
export type { Scheduler, SchedulerConfig, StepOptions } from './types.ts';
export {
  createScheduler, requestOverrides, resolveSchedulerConfig, supportsAlgorithmType, supportsKarrasSigmas,
  type SchedulerRequestOptions,
} from './registry.ts';
export { img2imgStart, type Img2ImgStart } from './img2img.ts';
export { ddimInvertThenRegenerate, type EpsModel } from './ddim-inverse.ts';
export { denoisingMode, minimumSteps, stepPlanProblem, stepsRun, type DenoisingMode, type StepPlan } from './step-plan.ts';
