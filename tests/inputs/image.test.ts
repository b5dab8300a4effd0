import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { loadImage, InputError } from '../../src/inputs/image.ts';

const limits = { maxBytes: 1024 * 1024, maxPixels: 4096 * 4096 };

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A few hundred bytes claiming 60000 x 60000 pixels: the kind of file that exhausts memory when decoded. */
function pngBomb(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(60000, 0); ihdr.writeUInt32BE(60000, 4);
  ihdr[8] = 8; ihdr[9] = 0; // 8-bit greyscale
  const row = Buffer.alloc(60001); // one filter byte + one row; compresses to almost nothing
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(row)), chunk('IEND', Buffer.alloc(0))]);
}

const rejectsWith = (p: Promise<unknown>, status: number, msg: RegExp) => assert.rejects(p, (e: unknown) => {
  assert.ok(e instanceof InputError, String(e));
  assert.equal(e.statusCode, status);
  assert.match(e.message, msg);
  return true;
});

test('a decompression bomb is refused from its header (413)', async () => {
  const bomb = pngBomb();
  assert.ok(bomb.length < 1000);
  await rejectsWith(loadImage('init_image', bomb.toString('base64'), 64, 64, limits), 413, /init_image is 60000x60000 pixels, more than the limit/);
});

test('base64, data URLs, greyscale and RGBA inputs decode to RGB at the output size', async () => {
  const rgba = await sharp({ create: { width: 40, height: 30, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
  const grey = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 128, g: 128, b: 128 } } }).greyscale().jpeg().toBuffer();
  const a = await loadImage('control_image', rgba.toString('base64'), 64, 72, limits);
  assert.equal(a.width, 64); assert.equal(a.height, 72); assert.equal(a.data.length, 64 * 72 * 3);
  // half-transparent red is composited over white (tests/inputs/alpha.test.ts), not read as opaque red
  assert.deepEqual([...a.data.subarray(0, 3)], [255, 126, 126]); // HWC3: 255 * (1 - 128/255) in float32 truncates to 126
  const g = await loadImage('init_image', `data:image/jpeg;base64,${grey.toString('base64')}`, 64, 64, limits);
  assert.equal(g.data.length, 64 * 64 * 3);
  assert.ok(Math.abs(g.data[0]! - 128) <= 2 && g.data[0] === g.data[1] && g.data[1] === g.data[2]);
});

test('bad inputs: not base64, not an image, other schemes, too large', async () => {
  await rejectsWith(loadImage('init_image', 'not base64!!', 64, 64, limits), 400, /init_image must be an http\(s\) URL, a data URL or base64/);
  await rejectsWith(loadImage('init_image', Buffer.from('hello world').toString('base64'), 64, 64, limits), 400, /init_image is not a decodable image/);
  await rejectsWith(loadImage('mask_image', 'file:///etc/passwd', 64, 64, limits), 400, /scheme file is not allowed/);
  await rejectsWith(loadImage('init_image', 'data:image/png,rawtext', 64, 64, limits), 400, /must be base64-encoded/);
  await rejectsWith(loadImage('init_image', 'A'.repeat(2 * 1024 * 1024), 64, 64, limits), 413, /larger than/);
  await rejectsWith(loadImage('init_image', 'http://127.0.0.1:1/x.png', 64, 64, limits), 400, /not a public address/);
});

test('URLs go through the safe client: allowlisted host, HTTP errors, byte cap (413)', async () => {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 255, b: 0 } } }).png().toBuffer();
  const server = http.createServer((req, res) => {
    if (req.url === '/a.png') res.end(png);
    else if (req.url === '/huge') res.end(Buffer.alloc(limits.maxBytes + 10));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const l = { ...limits, fetch: { allow: ['127.0.0.1'] } };
  try {
    const img = await loadImage('init_image', `${base}/a.png`, 64, 64, l);
    assert.deepEqual([...img.data.subarray(0, 3)], [0, 255, 0]);
    await rejectsWith(loadImage('init_image', `${base}/nope`, 64, 64, l), 400, /HTTP 404/);
    await rejectsWith(loadImage('init_image', `${base}/huge`, 64, 64, l), 413, /larger than/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
