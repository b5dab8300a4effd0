// The S3 output store against a real S3-compatible server that checks signatures (SeaweedFS's S3 gateway), and
// its presigned links against botocore's presigner (the reference SigV4 implementation).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { S3Store } from '../../src/storage/s3.ts';
import { presignGet } from '../../src/storage/sigv4.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

let s3: TestS3;
before(async () => { s3 = await startS3('store-test'); });
after(async () => { await s3.stop(); });

const settings = () => ({ endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });

test('put and read through signed requests; the bucket is created at init; unknown names are undefined', async () => {
  const store = new S3Store(settings());
  await store.init();
  await store.init(); // idempotent
  // Servers of a pool starting together create one bucket; each of them must start.
  await Promise.all([1, 2, 3].map(() => new S3Store({ ...settings(), bucket: 'created-together' }).init()));
  await store.put('job-0.png', Buffer.from('png bytes'), false);
  await store.put('job-1.png', Buffer.from('temp bytes'), true);
  assert.equal((await store.read('job-0.png', false))!.toString(), 'png bytes');
  assert.equal(await store.read('nothing-0.png', false), undefined);
  assert.equal(await store.read('../x.png', false), undefined);
  assert.equal(store.link('http://server', 'job-0.png', { temp: false }), 'http://server/outputs/job-0.png', 'served through any server');
  await assert.rejects(store.put('../evil.png', Buffer.from('x'), false), /invalid output name/);
});

test('a wrong secret is refused by the server (signatures are checked)', async () => {
  const wrong = new S3Store({ ...settings(), secretAccessKey: `${s3.secretAccessKey}x` });
  await assert.rejects(wrong.init(), /HTTP 403/, 'a HEAD answer has no body: the status says it');
  await assert.rejects(wrong.put('job-9.png', Buffer.from('x'), false), /SignatureDoesNotMatch/);
  const unknown = new S3Store({ ...settings(), accessKeyId: 'AKIANOTAKEY000000000' });
  await assert.rejects(unknown.put('job-9.png', Buffer.from('x'), false), /InvalidAccessKeyId|InvalidClientTokenId|403/);
});

test('temp links: presigned GET URLs valid 24 h, identical to botocore\'s, the same whenever computed', () => {
  const createdAt = 1_790_000_000_000;
  const store = new S3Store(settings(), { ttlMs: 24 * 3600 * 1000 });
  const link = store.link('http://server', 'f00-0.png', { temp: true, expiresAt: createdAt + 24 * 3600 * 1000 });
  assert.equal(link, store.link('http://other-server', 'f00-0.png', { temp: true, expiresAt: createdAt + 24 * 3600 * 1000 }),
    'future_links computed at acceptance equal the final links, on any server');
  assert.match(link, /X-Amz-Expires=86400&/);
  const ref = execFileSync(s3.python, ['tools/s3/presign.py', `${s3.endpoint}/${s3.bucket}/temp/f00-0.png`, s3.accessKeyId, s3.secretAccessKey,
    s3.region, String(createdAt / 1000), '86400'], { encoding: 'utf8' }).trim();
  assert.equal(link, ref);
  // Another secret signs differently.
  const other = presignGet({ ...settings(), secretAccessKey: 'other' }, { origin: s3.endpoint, host: new URL(s3.endpoint).host,
    path: `/${s3.bucket}/temp/f00-0.png`, signedAt: createdAt, expiresSeconds: 86400 });
  assert.notEqual(other, link);
});

test('temp links are verified by the S3 server: ours is served; a changed signature, another secret or an expired link is refused', async () => {
  const store = new S3Store(settings());
  await store.init();
  await store.put('presigned-0.png', Buffer.from('temp image bytes'), true);
  const link = store.link('http://server', 'presigned-0.png', { temp: true });
  const ok = await fetch(link);
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal(Buffer.from(await ok.arrayBuffer()).toString(), 'temp image bytes');
  const sig = /X-Amz-Signature=([0-9a-f]{64})$/.exec(link)![1]!;
  const flipped = `${sig.slice(0, 63)}${sig[63] === '0' ? '1' : '0'}`;
  const refused = async (url: string, code: string, what: string) => {
    const r = await fetch(url);
    assert.equal(r.status, 403, what);
    assert.match(await r.text(), new RegExp(`<Code>${code}</Code>`), what);
  };
  await refused(link.replace(sig, flipped), 'SignatureDoesNotMatch', 'one hex digit of the signature changed');
  await refused(new S3Store({ ...settings(), secretAccessKey: `${s3.secretAccessKey}x` }).link('http://server', 'presigned-0.png', { temp: true }),
    'SignatureDoesNotMatch', 'signed with another secret');
  await refused(link.replace('presigned-0.png', 'presigned-1.png'), 'SignatureDoesNotMatch', 'the link of one object opens no other');
  // Signed three days ago for one hour (the TTL the link carries is what the server enforces).
  const old = new S3Store(settings(), { now: () => Date.now() - 3 * 86400_000, ttlMs: 3600_000 });
  await refused(old.link('http://server', 'presigned-0.png', { temp: true }), 'AccessDenied', 'expired');
});
