// Reported: DDIMInverseScheduler with strength 0 (or 1 step at the default strength) answered 200 with zero
// denoising steps; IPNDMScheduler with 1 step returned a uniform grey image. Every scheduler × mode plan that
// runs no step, or fewer steps than the scheduler needs for a real image, is refused with a 400 naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';
import { denoisingMode, minimumSteps, stepPlanProblem, stepsRun, type DenoisingMode } from '../../../src/engine/schedulers/step-plan.ts';
import { SCHEDULER_NAMES, type SchedulerName } from '../../../src/engine/pipeline/types.ts';
import { TorchGenerator } from '../../../src/engine/random/torch-generator.ts';
import { CONTROLNET_ENDPOINT, parseRequest } from '../../../src/request/schema.ts';
import { idealGaussianDenoiser, meanStd } from './ideal-denoiser.ts';

// SD 1.x's scheduler_config.json (runwayml/stable-diffusion-v1-5)
const SD15 = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000, steps_offset: 1, clip_sample: false, set_alpha_to_one: false };
const DATA_STD = 0.5;

/** Mean and std of what `name` samples in `n` steps from data N(mu, 0.5²) with its exact denoiser. */
function sample(name: SchedulerName, n: number, mu: number, karras: boolean): { mean: number; std: number } {
  const s = createScheduler(name, SD15, { useKarrasSigmas: karras });
  s.setTimesteps(n);
  const gen = new TorchGenerator(1);
  const eps = idealGaussianDenoiser(SD15, mu, DATA_STD);
  let x: Float32Array = gen.randn([2048]).map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(eps(s.scaleModelInput(x, t), t), t, x, { generator: gen });
  return meanStd(x);
}

/** The criterion MINIMUM_STEPS was measured with: the output follows the model, and the noise is not amplified. */
function realImage(name: SchedulerName, n: number, karras: boolean): boolean {
  const follow = (k: number) => sample(name, k, 0.5, karras).mean - sample(name, k, -0.5, karras).mean;
  return follow(n) >= 0.5 * follow(30) && sample(name, n, 0.5, karras).std <= 4 * DATA_STD;
}

for (const name of SCHEDULER_NAMES.filter((n) => n !== 'DDIMInverseScheduler')) {
  test(`${name}: its minimum step count gives a real image (and every count above it); one fewer does not`, () => {
    for (const karras of [false, true]) {
      const min = minimumSteps(name, karras);
      for (const n of [min, min + 1, min + 2, min + 4, 20, 50]) assert.ok(realImage(name, n, karras), `${n} steps (karras ${karras})`);
      if (min > 1) assert.ok(!realImage(name, min - 1, karras), `${min - 1} steps should not be a real image (karras ${karras})`);
    }
  });
}

test('the reported cases get a 400 naming the field: 1-step IPNDM, strength-0 and 1-step DDIM inversion', () => {
  const img = 'aGVsbG8=';
  const base = { controlnet_model: 'canny', control_image: img };
  assert.throws(() => parseRequest({ ...base, scheduler: 'IPNDMScheduler', num_inference_steps: 1 }),
    /num_inference_steps must be at least 2 for IPNDMScheduler/);
  assert.throws(() => parseRequest({ ...base, init_image: img, scheduler: 'DDIMInverseScheduler', strength: 0 }), /strength 0 with num_inference_steps 30 runs 0/);
  assert.throws(() => parseRequest({ ...base, init_image: img, scheduler: 'DDIMInverseScheduler', num_inference_steps: 1 }), /num_inference_steps must be at least 2/);
  assert.throws(() => parseRequest({ ...base, init_image: img, scheduler: 'DDIMInverseScheduler', num_inference_steps: 3 }), /strength 0\.55 with num_inference_steps 3 runs 1 DDIM inversion step/);
  assert.throws(() => parseRequest({ ...base, init_image: img, scheduler: 'DDIMScheduler', strength: 0 }), /strength 0 with num_inference_steps 30 runs 0 img2img steps/);
  // the same bodies are fine for the hint endpoints, which denoise nothing
  assert.doesNotThrow(() => parseRequest({ ...base, init_image: img, scheduler: 'DDIMInverseScheduler', strength: 0 }, CONTROLNET_ENDPOINT, { denoising: false }));
  assert.doesNotThrow(() => parseRequest({ ...base, scheduler: 'IPNDMScheduler', num_inference_steps: 2 }));
});

test('every scheduler × mode × steps × strength: refused exactly when no step (or too few) would run; the count is the engine\'s', () => {
  const inputs: [boolean, boolean][] = [[false, false], [true, false], [true, true]];
  const seen = new Set<DenoisingMode>();
  for (const name of SCHEDULER_NAMES) {
    for (const [init, mask] of inputs) {
      for (const steps of [1, 2, 3, 4, 7, 10, 30]) {
        for (const strength of [0, 0.05, 0.1, 0.3, 0.55, 0.99, 1]) {
          const mode = denoisingMode({ scheduler: name, hasInitImage: init, hasMaskImage: mask, strength });
          seen.add(mode);
          const run = stepsRun(mode, steps, strength);
          if ((mode === 'img2img' || mode === 'inpaint') && steps >= minimumSteps(name, false)) {
            // the count the pipeline's img2imgStart gives (it throws exactly when none would run)
            const s = createScheduler(name === 'DDIMInverseScheduler' ? 'DDIMScheduler' : name, SD15);
            s.setTimesteps(steps);
            let engine = 0;
            try { engine = img2imgStart(s, steps, strength).numSteps; } catch { engine = 0; }
            assert.equal(run, engine, `${name} ${mode} ${steps} × ${strength}`);
          }
          const problem = stepPlanProblem({ scheduler: name, mode, steps, strength, useKarrasSigmas: false });
          const min = minimumSteps(name, false);
          const tooFew = steps < min || (mode !== 'txt2img' && run < (mode === 'ddim_inversion' ? min : 1));
          assert.equal(problem !== undefined, tooFew, `${name} ${mode} ${steps} × ${strength}: ${problem?.message}`);
          if (problem) assert.equal(problem.field, steps < min ? 'num_inference_steps' : 'strength');
        }
      }
    }
  }
  assert.equal(seen.size, 4, 'all four modes covered');
});
