// The annotators on real architectures: networks exported by tools/oracle/annotator_export.py (random weights,
// no checkpoints needed) and compared with controlnet_aux's own detectors run on the same weights. The models
// are 90 MB, so they are not fixtures: run the export first, then this test with ANNOTATOR_EXPORT_DIR set:
//   tools/oracle/annotator_export.py /tmp/exported --random --compare /tmp/exported/aux.json
//   ANNOTATOR_EXPORT_DIR=/tmp/exported node scripts/run-tests.mjs annotators/exported
// Without the variable the test is reported as skipped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { annotate, releaseAnnotatorSessions } from '../../../src/engine/annotators/index.ts';
import { countOver, equalFraction, firstChannel } from './agreement.ts';

const dir = process.env.ANNOTATOR_EXPORT_DIR;
after(() => releaseAnnotatorSessions());

for (const type of ['hed', 'softedge', 'lineart', 'mlsd'] as const) {
  test(`${type} on the exported network equals controlnet_aux's detector`, { skip: dir ? false : 'ANNOTATOR_EXPORT_DIR not set' }, async () => {
    const ref = JSON.parse(readFileSync(join(dir!, 'aux.json'), 'utf8'));
    const img = { width: 64, height: 64, data: Uint8Array.from(ref.image as number[]) };
    const out = firstChannel((await annotate(type, img, { width: 64, height: 64, modelsDir: dir! })).data);
    const expected = Uint8Array.from(ref[type] as number[]);
    const frac = equalFraction(out, expected);
    console.log(`${type}: ${(frac * 100).toFixed(2)}% equal, ${countOver(out, expected, 1)} pixels differ by more than 1`);
    assert.equal(frac, 1);
  });
}
