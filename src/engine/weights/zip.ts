// Minimal zip reader for PyTorch archives: reads the central directory (zip64 included) and returns each
// entry's data position, so tensors stored uncompressed can be read straight from the file by offset.
import { inflateRawSync } from 'node:zlib';
import { open, stat } from 'node:fs/promises';
import { readRange } from './file-range.ts';

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  compressedSize: number;
  size: number;
  /** Absolute offset of the entry's (possibly compressed) data. */
  dataOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('zip offset too large');
  return Number(v);
}

export async function readZipDirectory(path: string): Promise<Map<string, ZipEntry>> {
  const size = (await stat(path)).size;
  const tailLen = Math.min(size, 65557 + 20);
  const tail = Buffer.from(await readRange(path, size - tailLen, tailLen));
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${path}: not a zip archive (no end of central directory)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === EOCD64_LOCATOR) {
    const rec = Buffer.from(await readRange(path, u64(tail, eocd - 20 + 8), 56));
    if (rec.readUInt32LE(0) !== EOCD64) throw new Error(`${path}: bad zip64 end of central directory`);
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  const cd = Buffer.from(await readRange(path, cdOffset, cdSize));
  const entries = new Map<string, ZipEntry>();
  const fh = await open(path, 'r');
  try {
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (cd.readUInt32LE(p) !== CENTRAL) throw new Error(`${path}: corrupt zip central directory`);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let uncompressed = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field: the 0xFFFFFFFF fields, in order, as 8-byte values.
      for (let e = p + 46 + nameLen; e < p + 46 + nameLen + extraLen; ) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 1) {
          let q = e + 4;
          if (uncompressed === 0xffffffff) (uncompressed = u64(cd, q)), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = u64(cd, q)), (q += 8);
          if (localOffset === 0xffffffff) localOffset = u64(cd, q);
        }
        e += 4 + len;
      }
      const local = Buffer.alloc(30);
      await fh.read(local, 0, 30, localOffset);
      if (local.readUInt32LE(0) !== LOCAL) throw new Error(`${path}: corrupt zip entry ${name}`);
      const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      entries.set(name, { name, method, compressedSize, size: uncompressed, dataOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
  } finally {
    await fh.close();
  }
  return entries;
}

/** A whole entry's content (for small entries such as data.pkl). */
export async function readZipEntry(path: string, e: ZipEntry): Promise<Uint8Array> {
  const raw = await readRange(path, e.dataOffset, e.compressedSize);
  if (e.method === 0) return raw;
  if (e.method === 8) return new Uint8Array(inflateRawSync(raw));
  throw new Error(`${path}: zip entry ${e.name} uses unsupported compression method ${e.method}`);
}
