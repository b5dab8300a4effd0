// Each engine phase in the logs and in /metrics (controlnet_phase_seconds by phase, model and size), the eta of a
// running job from its plan, and one log line per HTTP request (a fetch poll logs once), on a real server with
// the real engine on the tiny demo models.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { createApp } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';
import { tinyPngBase64 } from './harness.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'cn-phases-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('phases are logged and measured by model and size; a fetch logs one line', async () => {
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  const lines: any[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const cfg = loadConfig({}, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, waitWindowMs: 0, rateLimitPerMinute: 10_000 });
  const app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'info' }, sink) });
  try {
    const key = app.ctx.keys.create().key;
    const url = await app.listen();
    const post = async (path: string, body: unknown) => (await fetch(path.startsWith('http') ? path : url + path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    })).json() as Promise<any>;
    const img = await tinyPngBase64();
    const r = await post('/api/v6/images/controlnet', { key, controlnet_model: 'canny', width: '64', height: '64', num_inference_steps: '3', prompt: 'a house', init_image: img, seed: 3 });
    assert.equal(r.status, 'processing', JSON.stringify(r));
    let f: any;
    let fetches = 0;
    for (let i = 0; i < 600; i++) {
      const before = lines.length;
      f = await post(r.fetch_result, { key });
      fetches++;
      await new Promise((res) => setTimeout(res, 20)); // the log line is written on response
      const mine = lines.slice(before).filter((l) => l.msg === 'request' || /request/.test(l.msg ?? ''));
      assert.equal(mine.length, 1, `one log line per fetch: ${JSON.stringify(mine)}`);
      if (f.status === 'success') break;
      assert.ok(typeof f.eta === 'number' && f.eta > 0, `eta ${f.eta}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(f.status, 'success', JSON.stringify(f));
    assert.ok(fetches >= 1);
    const phases = lines.filter((l) => l.msg === 'phase').map((l) => l.phase);
    for (const p of ['hash', 'build', 'load', 'encode', 'step', 'decode']) assert.ok(phases.includes(p), `a ${p} log line (got ${phases.join(', ')})`);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const p of ['hash', 'encode', 'step', 'decode']) {
      assert.match(metrics, new RegExp(`controlnet_phase_seconds_count\\{phase="${p}",model="tiny-demo",size="64x64"\\} [1-9]`), p);
    }
    assert.match(metrics, /controlnet_phase_seconds_count\{phase="build",model="unet:tiny-demo",size="64x64"\} 1/);
    assert.match(metrics, /controlnet_phase_seconds_count\{phase="load",model="controlnet:canny",size="64x64"\} 1/);
    const steps = lines.find((l) => l.msg === 'phase' && l.phase === 'step')?.steps;
    assert.ok(metrics.includes(`controlnet_phase_seconds_count{phase="step",model="tiny-demo",size="64x64"} ${steps}`), `one observation per step (${steps})`);
  } finally {
    await app.close();
  }
});
