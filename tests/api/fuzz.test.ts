// 200 fuzzed bodies (seeded, reproducible) against generate, fetch and enterprise endpoints: none may get a 500,
// every answer must be one of the SPEC's bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64 } from './harness.ts';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELDS = ['model_id', 'controlnet_model', 'controlnet_type', 'auto_hint', 'guess_mode', 'prompt', 'negative_prompt', 'init_image',
  'control_image', 'mask_image', 'width', 'height', 'samples', 'scheduler', 'num_inference_steps', 'guidance_scale',
  'controlnet_conditioning_scale', 'strength', 'seed', 'tomesd', 'use_karras_sigmas', 'algorithm_type', 'vae', 'lora_model', 'lora_strength',
  'clip_skip', 'safety_checker', 'enhance_prompt', 'multi_lingual', 'upscale', 'base64', 'temp', 'webhook', 'track_id', '__proto__', 'constructor'];

test('200 fuzzed bodies: no 500, only SPEC bodies', async () => {
  const t = await startTestApp({ config: { waitWindowMs: 0, maxQueuedPerKey: 10_000, maxQueueDepth: 10_000 } });
  const img = await tinyPngBase64();
  const r = rng(1234);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const values = (): unknown[] => [
    null, true, false, 0, -1, 1e308, -1e308, 0.5, 512, '512', '512.0', ' 64 ', '1e3', 'NaN', 'Infinity', '-0', '', ' ', 'yes', 'no', 'YES',
    'canny', 'canny,depth', 'canny,,depth', ',', 'canny,openpose,foo', ['canny'], [], [1, 2], {}, { a: { b: [] } }, 'x'.repeat(5000),
    'http://127.0.0.1/x.png', 'https://example.invalid/x.png', 'data:image/png;base64,', `data:image/png;base64,${img}`, img, 'file:///etc/passwd',
    '\u0000\u202e\ud83d\ude00', '../../etc/passwd', 'UniPCMultistepScheduler', 'dpmsolver+++', 2 ** 32, 2 ** 53, '0x10', '1,2,3', '0.5,0.5',
  ];
  const statuses = new Map<number, number>();
  try {
    for (let i = 0; i < 200; i++) {
      let body: string;
      const mode = r();
      if (mode < 0.08) {
        body = pick(['', '{', '[]', 'null', '42', '"s"', '{"key":', '\u0000', '{"a":1}}', 'true']);
      } else {
        const o: Record<string, unknown> = {};
        if (r() < 0.8) o.key = r() < 0.9 ? t.key : pick(values());
        if (r() < 0.7) o.controlnet_model = r() < 0.6 ? 'canny' : pick(values());
        if (r() < 0.7) o.init_image = r() < 0.6 ? img : pick(values());
        const n = Math.floor(r() * 8);
        for (let k = 0; k < n; k++) o[pick(FIELDS)] = pick(values());
        body = JSON.stringify(o);
      }
      const path = pick(['/api/v6/images/controlnet', '/api/v5/controlnet', '/api/v1/enterprise/images/controlnet',
        `/api/v6/images/fetch/${pick(['1', '0', 'abc', '99999999999999999999', '-1'])}`, '/api/v6/images/fetch', '/api/v1/enterprise/verify_model',
        '/api/v1/enterprise/load_model', '/api/v1/enterprise/delete_model']);
      const headers: Record<string, string> = { 'content-type': pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded']) };
      if (path.includes('enterprise/') && !path.includes('controlnet')) body = body.replace(t.key, t.adminKey);
      const res = await fetch(t.url + path, { method: 'POST', headers, body });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.notEqual(res.status, 500, `#${i} ${path} ${body.slice(0, 300)} → ${text.slice(0, 300)}`);
      const json = JSON.parse(text);
      assert.ok(['error', 'processing', 'success'].includes(json.status), text.slice(0, 200));
      if (json.status === 'error') assert.equal(typeof json.message, 'string');
      if (res.status !== 200) assert.equal(json.status, 'error');
    }
    assert.ok((statuses.get(400) ?? 0) > 20, `a good share is refused: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) > 10, `some are accepted: ${JSON.stringify([...statuses])}`);
  } finally {
    await t.close();
  }
});
