import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';

const SD15 = { beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085, num_train_timesteps: 1000, steps_offset: 1 };

test('img2img start: t_start * order, remaining steps, begin index', () => {
  const heun = createScheduler('HeunDiscreteScheduler', SD15);
  heun.setTimesteps(30);
  const h = img2imgStart(heun, 30, 0.55);
  assert.equal(h.numSteps, 16);
  assert.deepEqual(h.timesteps, heun.timesteps.slice(14 * 2));
  const ddim = createScheduler('DDIMScheduler', SD15);
  ddim.setTimesteps(30);
  const d = img2imgStart(ddim, 30, 1);
  assert.equal(d.timesteps.length, 30);
  assert.equal(d.latentTimestep, ddim.timesteps[0]);
});

test('img2img rejects a strength that leaves no steps', () => {
  const s = createScheduler('EulerDiscreteScheduler', SD15);
  s.setTimesteps(10);
  assert.throws(() => img2imgStart(s, 10, 0.05), /number of pipeline steps is 0/);
  assert.throws(() => img2imgStart(s, 10, 1.5), RangeError);
});
