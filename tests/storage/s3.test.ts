// The S3 output store against a real S3-compatible server that checks signatures (moto, authentication on), and
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
