import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';

test('IPNDM (no add_noise in diffusers) gets the noising of its own parametrisation for img2img', () => {
  const s = createScheduler('IPNDMScheduler', {});
  s.setTimesteps(30);
  const start = img2imgStart(s, 30, 0.55);
  const x0 = Float32Array.from([1, -1, 0.5]);
  const noise = Float32Array.from([0, 0, 0]);
  const noisy = s.addNoise(x0, noise, start.latentTimestep);
  // pure signal part scaled by alpha_i in (0, 1); alpha^2 + sigma^4... alpha = sqrt(1 - beta^2)
  const ratio = noisy[0]! / x0[0]!;
  assert.ok(ratio > 0 && ratio < 1);
  assert.ok(Math.abs(noisy[1]! / x0[1]! - ratio) < 1e-7);
  const pure = s.addNoise(new Float32Array(3), Float32Array.from([1, 1, 1]), start.latentTimestep);
  assert.ok(pure[0]! > 0 && pure[0]! < 1);
});
