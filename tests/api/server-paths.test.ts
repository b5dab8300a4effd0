// Reported: an annotator that is not installed got a 422 whose message held the server's absolute data path.
// No message to a client (an HTTP answer, a job's failure as fetch and webhooks show it, meta) holds a server
// path; model files are named relative to the models folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './harness.ts';
import { clientMessage } from '../../src/client-message.ts';
import { failureOf } from '../../src/worker/worker.ts';
import type { Applied } from '../../src/engine/pipeline/types.ts';
import { EngineError } from '../../src/engine/errors.ts';
import { buildMeta } from '../../src/worker/meta.ts';
import { parseRequest } from '../../src/request/schema.ts';

let t: TestApp;
before(async () => { t = await startTestApp(); });
after(async () => { await t.close(); });

test('the reported case: auto_hint for a missing annotator names the file relative to the models folder', async () => {
  const res = await t.post('/api/v6/images/controlnet', { key: t.key, controlnet_model: 'depth', auto_hint: 'yes', control_image: 'aGVsbG8=' });
  assert.equal(res.status, 422);
  assert.match(res.body.message, /annotator\/midas\/dpt_hybrid-midas-501f0c75\.pt in the models folder/);
  assert.ok(!res.body.message.includes(t.dataDir), res.body.message);
  assert.ok(!/(^|\s)\//.test(res.body.message), `no absolute path: ${res.body.message}`);
});

test('messages built anywhere lose server paths: models folder → relative names, other server folders → <server>', () => {
  const models = t.app.ctx.config.modelsDir;
  const cases: [string, RegExp][] = [
    [`${models}/base/bad.safetensors: not an SD single-file checkpoint`, /^base\/bad\.safetensors: not an SD/],
    [`cannot read ${t.dataDir}/cache/x.json: ENOENT`, /^cannot read <server>\/cache\/x\.json: ENOENT$/],
    [`ENOENT: no such file or directory, open '${process.cwd()}/assets/tokenizer/vocab.json'`, /open '<server>\/assets\/tokenizer\/vocab\.json'/],
    [`the models folder is ${models}`, /^the models folder is the models folder$/],
  ];
  for (const [msg, want] of cases) {
    const out = clientMessage(msg);
    assert.match(out, want);
    assert.ok(!out.includes(t.dataDir) && !out.includes(process.cwd()), out);
  }
  // URLs that merely contain the same words are left alone
  assert.equal(clientMessage('init_image could not be fetched: http://example.com/tmp/x.png'), 'init_image could not be fetched: http://example.com/tmp/x.png');
});

test('a job failure (fetch answer and webhook) and meta notes carry no server path', () => {
  const models = t.app.ctx.config.modelsDir;
  for (const e of [new Error(`${models}/base/x.ckpt: truncated`), new EngineError('bad_model_file', `model_id x (${models}/base/x.ckpt) cannot be used`)]) {
    const f = failureOf(e);
    assert.ok(!f.message.includes(t.dataDir), f.message);
    assert.match(f.message, /base\/x\.ckpt/);
  }
  assert.equal(failureOf(new EngineError('bad_model_file', 'x')).status, 422);
  const applied: Applied = {
    mode: 'txt2img', stepsRun: 1, prompt: 'p', negativePrompt: '', guessMode: false, tome: false, karrasSigmas: 'off', algorithmType: 'none',
    loraIgnored: [`${models}/lora/a: k`], loraUnmatched: [], annotatorNotes: { canny: `read ${models}/annotator/x.onnx` },
    safetyChecker: { status: 'off' }, upscale: { status: 'off' }, translation: { status: 'off' }, promptEnhancement: { status: 'off' }, promptWeighting: false,
  };
  const meta = buildMeta(parseRequest({ controlnet_model: 'canny', control_image: 'aGVsbG8=' }), 'p', applied);
  assert.equal(meta.auto_hint_canny, 'read annotator/x.onnx');
  assert.deepEqual(meta.lora_ignored, ['lora/a: k']);
  // the user's own text is echoed as sent
  const echoed = buildMeta(parseRequest({ controlnet_model: 'canny', control_image: 'aGVsbG8=' }), 'p', { ...applied, prompt: `a sign saying ${models}/x` });
  assert.equal(echoed.prompt, `a sign saying ${models}/x`);
});
