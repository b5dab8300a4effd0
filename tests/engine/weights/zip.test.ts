import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { readZipDirectory, readZipEntry } from '../../../src/engine/weights/zip.ts';

interface Spec { name: string; data: Buffer; deflate?: boolean; zip64?: boolean }

/** A zip written by hand: zip64 entries put sizes and offset in the extra field, as torch does past 4 GB. */
function buildZip(specs: Spec[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const s of specs) {
    const body = s.deflate ? deflateRawSync(s.data) : s.data;
    const name = Buffer.from(s.name);
    const big = 0xffffffff;
    const lx = s.zip64 ? Buffer.alloc(20) : Buffer.alloc(0);
    if (s.zip64) {
      lx.writeUInt16LE(1, 0); lx.writeUInt16LE(16, 2);
      lx.writeBigUInt64LE(BigInt(s.data.length), 4); lx.writeBigUInt64LE(BigInt(body.length), 12);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(45, 4); local.writeUInt16LE(s.deflate ? 8 : 0, 8);
    local.writeUInt32LE(s.zip64 ? big : body.length, 18); local.writeUInt32LE(s.zip64 ? big : s.data.length, 22);
    local.writeUInt16LE(name.length, 26); local.writeUInt16LE(lx.length, 28);
    const cx = s.zip64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (s.zip64) {
      cx.writeUInt16LE(1, 0); cx.writeUInt16LE(24, 2);
      cx.writeBigUInt64LE(BigInt(s.data.length), 4); cx.writeBigUInt64LE(BigInt(body.length), 12); cx.writeBigUInt64LE(BigInt(offset), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(45, 4); c.writeUInt16LE(45, 6); c.writeUInt16LE(s.deflate ? 8 : 0, 10);
    c.writeUInt32LE(s.zip64 ? big : body.length, 20); c.writeUInt32LE(s.zip64 ? big : s.data.length, 24);
    c.writeUInt16LE(name.length, 28); c.writeUInt16LE(cx.length, 30); c.writeUInt32LE(s.zip64 ? big : offset, 42);
    central.push(c, name, cx);
    parts.push(local, name, lx, body);
    offset += 30 + name.length + lx.length + body.length;
  }
  const cd = Buffer.concat(central);
  const e64 = Buffer.alloc(56);
  e64.writeUInt32LE(0x06064b50, 0); e64.writeBigUInt64LE(44n, 4);
  e64.writeBigUInt64LE(BigInt(specs.length), 24); e64.writeBigUInt64LE(BigInt(specs.length), 32);
  e64.writeBigUInt64LE(BigInt(cd.length), 40); e64.writeBigUInt64LE(BigInt(offset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(offset + cd.length), 8); loc.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(0xffff, 8); eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12); eocd.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, cd, e64, loc, eocd]);
}

test('reads zip64 records and stored + deflated entries by offset', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'zip-')), 'a.zip');
  const pkl = Buffer.from('pickle bytes '.repeat(50));
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));
  writeFileSync(path, buildZip([{ name: 'archive/data.pkl', data: pkl, deflate: true }, { name: 'archive/data/0', data, zip64: true }]));
  const entries = await readZipDirectory(path);
  assert.deepEqual([...entries.keys()], ['archive/data.pkl', 'archive/data/0']);
  const stored = entries.get('archive/data/0')!;
  assert.equal(stored.size, 300);
  assert.equal(stored.method, 0);
  assert.deepEqual(Buffer.from(await readZipEntry(path, stored)), data);
  assert.deepEqual(Buffer.from(await readZipEntry(path, entries.get('archive/data.pkl')!)), pkl);
});

test('a non-zip file is reported', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'zip-')), 'x.bin');
  writeFileSync(path, Buffer.alloc(100, 7));
  await assert.rejects(readZipDirectory(path), /not a zip archive/);
});
