// How an image the safety checker flagged is replaced (SPEC: safety_checker_type): blurred, pixelated, black, or
// (the default) a plain grey image saying the content was withheld, drawn with a built-in 5×7 bitmap font so that
// no system font is needed.
import sharp from 'sharp';
import type { RgbImage, SafetyCheckerType } from '../pipeline/types.ts';

const GLYPHS: Record<string, string[]> = {
  C: ['01110', '10001', '10000', '10000', '10000', '10001', '01110'],
  O: ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  E: ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
  W: ['10001', '10001', '10001', '10101', '10101', '11011', '10001'],
  I: ['01110', '00100', '00100', '00100', '00100', '00100', '01110'],
  H: ['10001', '10001', '10001', '11111', '10001', '10001', '10001'],
  L: ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
  D: ['11110', '10001', '10001', '10001', '10001', '10001', '11110'],
  ' ': ['00000', '00000', '00000', '00000', '00000', '00000', '00000'],
};

/** The text of the default replacement. */
export const WITHHELD_TEXT = ['CONTENT', 'WITHHELD'];

/** A grey image of width × height with WITHHELD_TEXT in white, centred, as large as fits. */
export function withheldImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3).fill(64);
  const cols = Math.max(...WITHHELD_TEXT.map((l) => l.length)) * 6 - 1;
  const rows = WITHHELD_TEXT.length * 9 - 2;
  const px = Math.max(1, Math.floor(Math.min((width * 0.8) / cols, (height * 0.6) / rows)));
  const y0 = Math.floor((height - rows * px) / 2);
  WITHHELD_TEXT.forEach((line, li) => {
    const x0 = Math.floor((width - (line.length * 6 - 1) * px) / 2);
    [...line].forEach((ch, ci) => {
      GLYPHS[ch]!.forEach((row, gy) => {
        for (let gx = 0; gx < 5; gx++) {
          if (row[gx] !== '1') continue;
          for (let dy = 0; dy < px; dy++) for (let dx = 0; dx < px; dx++) {
            const x = x0 + (ci * 6 + gx) * px + dx, y = y0 + (li * 9 + gy) * px + dy;
            if (x >= 0 && y >= 0 && x < width && y < height) data.fill(235, (y * width + x) * 3, (y * width + x) * 3 + 3);
          }
        }
      });
    });
  });
  return { width, height, data };
}

const raw = (img: RgbImage) => ({ raw: { width: img.width, height: img.height, channels: 3 as const } });

/** The replacement of a flagged image, the same size: see SafetyCheckerType. */
export async function replaceFlagged(img: RgbImage, how: SafetyCheckerType): Promise<RgbImage> {
  const { width, height } = img;
  switch (how) {
    case 'black':
      return { width, height, data: new Uint8Array(width * height * 3) };
    case 'sensitive_content_text':
      return withheldImage(width, height);
    case 'blur': {
      // a Gaussian of sigma 1/20 of the larger side: shapes stay vaguely visible, details do not
      const data = await sharp(img.data, raw(img)).blur(Math.max(width, height) / 20).raw().toBuffer();
      return { width, height, data: new Uint8Array(data) };
    }
    case 'pixelate': {
      // blocks of 1/16 of the larger side (at least 8 px)
      const block = Math.max(8, Math.round(Math.max(width, height) / 16));
      const small = await sharp(img.data, raw(img)).resize(Math.max(1, Math.round(width / block)), Math.max(1, Math.round(height / block)), { fit: 'fill', kernel: 'cubic' }).raw().toBuffer();
      const data = await sharp(small, { raw: { width: Math.max(1, Math.round(width / block)), height: Math.max(1, Math.round(height / block)), channels: 3 } })
        .resize(width, height, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
      return { width, height, data: new Uint8Array(data) };
    }
  }
}
