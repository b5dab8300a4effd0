import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { i64, scalarI64, sessionFor, tinyConfig, tinyWeights } from './support.ts';

const TOL = 1e-4;

test('CLIP text encoder equals transformers for clip skip 0, 1, 2', async () => {
  const fx = loadFixture('tiny/clip_fwd');
  const src = await tinyWeights('sd15/text_encoder', 'model.safetensors');
  const { graph } = buildClipText(tinyConfig('sd15/text_encoder'), src);
  const s = await sessionFor(graph);
  for (const k of [0, 1, 2]) {
    const out = await s.run({ input_ids: i64(fx, 'input_ids'), skip: scalarI64(k) });
    const err = maxAbsDiff(out.hidden_states!.data as Float32Array, fx.f32(`skip${k}`));
    assert.ok(err <= TOL, `skip ${k}: max abs err ${err}`);
  }
});
