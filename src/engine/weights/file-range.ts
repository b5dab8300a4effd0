// Reads byte ranges of (possibly multi-GB) files without loading them whole.
import { open } from 'node:fs/promises';

/** Reads exactly `length` bytes at `position` into a fresh, 8-byte-aligned buffer. */
export async function readRange(path: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(length));
  const fh = await open(path, 'r');
  try {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(out, done, length - done, position + done);
      if (bytesRead === 0) throw new Error(`${path}: unexpected end of file at byte ${position + done}`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return out;
}
