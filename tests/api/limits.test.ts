import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64 } from './harness.ts';
import { RateLimiter } from '../../src/api/rate-limit.ts';

test('per-key rate limit → 429 with retry_after; other keys unaffected', async () => {
  const t = await startTestApp({ config: { rateLimitPerMinute: 3, waitWindowMs: 0 } });
  try {
    const img = await tinyPngBase64();
    const body = (key: string) => ({ key, controlnet_model: 'canny', init_image: img });
    for (let i = 0; i < 3; i++) assert.equal((await t.post('/api/v5/controlnet', body(t.key))).status, 200);
    const r = await t.post('/api/v5/controlnet', body(t.key));
    assert.equal(r.status, 429);
    assert.equal(r.body.status, 'error');
    assert.match(r.body.message, /rate limit exceeded: 3 requests per minute/);
    assert.equal(r.body.retry_after, 20);
    assert.equal(r.headers.get('retry-after'), '20');
    assert.equal((await t.post('/api/v5/controlnet', body(t.adminKey))).status, 200);
  } finally {
    await t.close();
  }
});

test('queued-request cap per key → 429; queue capacity → 503', async () => {
  const t = await startTestApp({ config: { maxQueuedPerKey: 2, maxQueueDepth: 3, waitWindowMs: 0 } });
  try {
    const img = await tinyPngBase64();
    const body = (key: string) => ({ key, controlnet_model: 'canny', init_image: img });
    assert.equal((await t.post('/api/v5/controlnet', body(t.key))).status, 200);
    assert.equal((await t.post('/api/v5/controlnet', body(t.key))).status, 200);
    const capped = await t.post('/api/v5/controlnet', body(t.key));
    assert.equal(capped.status, 429);
    assert.match(capped.body.message, /too many unfinished requests for this key \(limit 2\)/);
    assert.ok(capped.body.retry_after > 0);
    assert.equal((await t.post('/api/v5/controlnet', body(t.adminKey))).status, 200);
    const full = await t.post('/api/v5/controlnet', body(t.adminKey));
    assert.equal(full.status, 503);
    assert.match(full.body.message, /at capacity/);
  } finally {
    await t.close();
  }
});

test('token bucket refills with time', () => {
  let now = 0;
  const l = new RateLimiter(60, () => now);
  for (let i = 0; i < 60; i++) assert.equal(l.takeSync(1), 0);
  assert.equal(l.takeSync(1), 1);
  now += 1000;
  assert.equal(l.takeSync(1), 0);
  assert.ok(l.takeSync(1) > 0);
});
