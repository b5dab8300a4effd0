// A job's models beyond its base (the pool routes on the whole set).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstMissing, needsKey, needsOf } from '../../src/jobs/model-set.ts';

test('a request\'s model set: sorted and deduplicated, one key per set, the first missing model in the reported order', () => {
  const a = needsOf({ vae: 'v1', lora_model: ['b', 'a', 'b'], controlnet_model: ['depth', 'canny'] });
  assert.deepEqual(a, { vae: ['v1'], lora: ['a', 'b'], controlnet: ['canny', 'depth'] });
  assert.equal(needsKey(a), needsKey(needsOf({ vae: 'v1', lora_model: ['a', 'b'], controlnet_model: ['canny', 'depth'] })), 'order does not matter');
  assert.notEqual(needsKey(a), needsKey(needsOf({ vae: 'v1', lora_model: ['a'], controlnet_model: ['canny', 'depth'] })));
  // A LoRA named like a ControlNet type is another set.
  assert.notEqual(needsKey(needsOf({ lora_model: ['canny'], controlnet_model: [] })), needsKey(needsOf({ lora_model: [], controlnet_model: ['canny'] })));
  assert.equal(needsKey(needsOf({ lora_model: [], controlnet_model: [] })), '', 'nothing beyond the base: the base model\'s queue');
  assert.match(needsKey(a), /^[0-9a-f]{12}$/);
  assert.equal(firstMissing({ vae: ['v1'], lora: ['a', 'b'], controlnet: ['canny', 'depth'] }, a), undefined);
  assert.deepEqual(firstMissing({ vae: [], lora: [], controlnet: [] }, a), { kind: 'vae', id: 'v1' }, 'vae, then LoRAs, then ControlNets');
  assert.deepEqual(firstMissing({ vae: ['v1'], lora: ['a', 'b'], controlnet: ['canny'] }, a), { kind: 'controlnet', id: 'depth' });
});
