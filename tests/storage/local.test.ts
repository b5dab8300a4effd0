import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore } from '../../src/storage/local.ts';

const DAY = 24 * 3600 * 1000;

function linkQuery(link: string): { name: string; expires?: string; signature?: string } {
  const u = new URL(link);
  return { name: u.pathname.split('/').pop()!, expires: u.searchParams.get('expires') ?? undefined, signature: u.searchParams.get('signature') ?? undefined };
}

test('temporary links work for 24 h, then answer nothing; tampering fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-store-'));
  let now = 1_000_000;
  const store = new LocalStore(dir, 'secret', () => now);
  await store.init();
  try {
    await store.put('abc-0.png', Buffer.from('png!'), true);
    const link = store.link('http://h', 'abc-0.png', { temp: true, expiresAt: now + DAY });
    assert.match(link, /^http:\/\/h\/outputs\/temp\/abc-0\.png\?expires=\d+&signature=/);
    const q = linkQuery(link);
    assert.equal((await store.read(q.name, true, q))?.toString(), 'png!');
    assert.equal(await store.read(q.name, true, { ...q, expires: String(Number(q.expires) + 1) }), undefined, 'changed expiry');
    assert.equal(await store.read(q.name, true, { ...q, signature: q.signature!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }), undefined);
    assert.equal(await store.read(q.name, true, {}), undefined, 'no signature');
    assert.equal(await store.read(q.name, false), undefined, 'temp files are not on the permanent path');
    now += DAY - 1;
    assert.ok(await store.read(q.name, true, q), 'still valid just before 24 h');
    now += 2;
    assert.equal(await store.read(q.name, true, q), undefined, 'expired');
    // The sweep deletes files whose links have expired.
    utimesSync(join(dir, 'outputs', 'temp', 'abc-0.png'), new Date(0), new Date(0));
    assert.equal(await store.sweep(DAY), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('permanent outputs and name checks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-store-'));
  const store = new LocalStore(dir, 's');
  await store.init();
  try {
    await store.put('x-1.png', Buffer.from('1'), false);
    assert.equal(store.link('http://h', 'x-1.png', { temp: false }), 'http://h/outputs/x-1.png');
    assert.equal((await store.read('x-1.png', false))?.toString(), '1');
    assert.equal(await store.read('../controlnet.db', false), undefined);
    await assert.rejects(store.put('../evil.png', Buffer.from('1'), false), /invalid output name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
