import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestApp, tinyPngBase64 } from './harness.ts';
import { startHub } from '../storage/hub-server.ts';
import { SCHEDULER_NAMES } from '../../src/engine/pipeline/types.ts';

test('enterprise endpoints: admin only; load/verify/list/delete models from a hub; queue, cache, system', async () => {
  const weights = randomBytes(50_000);
  const hub = await startHub({ 'acme/tiny-cn': [{ name: 'config.json', data: Buffer.from('{}') },
    { name: 'diffusion_pytorch_model.safetensors', data: weights, lfs: true }] });
  const t = await startTestApp({ config: { hfEndpoint: hub.url, allowPrivateHosts: ['127.0.0.1'], waitWindowMs: 500, maxQueuedPerKey: 100 } });
  try {
    const admin = (name: string, body: Record<string, unknown> = {}, prefix = '/api/v1/enterprise/') => t.post(prefix + name, { key: t.adminKey, ...body });
    // A normal key is refused everywhere here.
    const refused = await t.post('/api/v1/enterprise/system_details', { key: t.key });
    assert.equal(refused.status, 401);
    assert.match(refused.body.message, /needs an admin key/);

    const load = await admin('load_model', { model_id: 'lineart', url: 'acme/tiny-cn', model_type: 'controlnet' });
    assert.equal(load.status, 200, JSON.stringify(load.body));
    assert.equal(load.body.status, 'success');
    assert.equal(load.body.download.bytes, weights.length + 2);
    assert.ok(existsSync(join(t.app.ctx.config.modelsDir, 'controlnet', 'lineart', 'diffusion_pytorch_model.safetensors')));
    const verify = await admin('verify_model', { model_id: 'lineart', model_type: 'controlnet' }, '/api/v1/enterprise/images/');
    assert.equal(verify.body.installed, true);
    assert.equal((await admin('verify_model', { model_id: 'ghost' })).body.installed, false);
    const all = await admin('get_all_models');
    assert.ok(all.body.models.some((m: { model_id: string; model_type: string }) => m.model_id === 'lineart' && m.model_type === 'controlnet'));
    assert.ok(all.body.models.some((m: { model_id: string }) => m.model_id === 'sd-test'));

    const badLoad = await admin('load_model', { model_id: 'x', url: 'acme/missing' });
    assert.equal(badLoad.status, 400);
    assert.match(badLoad.body.message, /not found/);
    const badKind = await admin('load_model', { model_id: 'x', url: 'acme/tiny-cn', model_type: 'weird' });
    assert.equal(badKind.status, 400);
    assert.match(badKind.body.message, /model_type must be one of/);
    assert.match((await admin('load_model', { url: 'acme/tiny-cn' })).body.message, /model_id is required/);
    const vae = await admin('load_vae', { vae_id: 'my-vae', vae_url: 'acme/tiny-cn' });
    assert.equal(vae.body.status, 'success');

    assert.equal((await admin('delete_model', { model_id: 'lineart', model_type: 'controlnet' })).body.status, 'success');
    assert.equal((await admin('delete_model', { model_id: 'lineart', model_type: 'controlnet' })).status, 404);

    const img = await tinyPngBase64();
    const hooks: any[] = [];
    const receiver = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => { hooks.push(JSON.parse(b)); res.end(); });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    for (let i = 0; i < 3; i++) await t.post('/api/v5/controlnet', { key: t.key, controlnet_model: 'canny', init_image: img, webhook, track_id: i });
    const cleared = await admin('clear_queue');
    assert.equal(cleared.body.cancelled, 3);
    assert.equal((await t.app.ctx.queue.getJobCounts()).queued, 0);
    for (let i = 0; i < 100 && hooks.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    receiver.close();
    assert.deepEqual(hooks.map((h) => [h.status, h.track_id]).sort(), [['failed', 0], ['failed', 1], ['failed', 2]]);
    const cancelledFetch = await t.post(`/api/v6/images/fetch/${hooks[0].id}`, { key: t.key });
    assert.equal(cancelledFetch.status, 503);
    assert.match(cancelledFetch.body.message, /cleared by an administrator/);

    mkdirSync(join(t.dataDir, 'cache', 'onnx'), { recursive: true });
    writeFileSync(join(t.dataDir, 'cache', 'onnx', 'x.onnx'), Buffer.alloc(1234));
    const cache = await admin('clear_cache');
    assert.equal(cache.body.removed_bytes, 1234);
    assert.equal(existsSync(join(t.dataDir, 'cache')), false);

    const sys = await admin('system_details');
    assert.equal(sys.body.status, 'ok');
    assert.equal(sys.body.model_count, 0, 'no job ran: no model is loaded');
    assert.equal(sys.body.queue_time, 0);
    assert.equal(sys.body.pool.servers.length, 1);
    assert.equal(sys.body.pool.servers[0].alive, true);
    assert.ok(sys.body.pool.servers[0].installed_models.includes('sd-test'));
    assert.deepEqual(sys.body.queue, { queued: 0, running: 0 });
    assert.equal(sys.body.default_model_id, 'sd-test');
    assert.deepEqual((await admin('schedulers_list', {}, '/api/v1/enterprise/images/')).body.schedulers, [...SCHEDULER_NAMES]);
    assert.match((await admin('update', {}, '/api/v1/enterprise/images/')).body.message, /nothing was changed/);
    assert.match((await admin('update_server')).body.message, /nothing was changed/);
    assert.equal((await admin('restart_server')).body.status, 'success');
  } finally {
    await t.close();
    hub.close();
  }
});
