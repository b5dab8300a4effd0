// QR code hint (monster-labs control_v1p_sd15_qrcode_monster): the image as black and white modules.
// The gray threshold is Otsu's (cv2.THRESH_OTSU), which separates a code's dark and light modules even on
// a tinted or photographed image.
import type { RgbImage } from '../pipeline/types.ts';
import { grayToRgb, luma } from './image.ts';

/** Otsu's threshold of a uint8 image, ported from OpenCV's getThreshVal_Otsu_8u: pixels <= t are dark. */
export function otsuThreshold(gray: Uint8Array): number {
  const FLT_EPSILON = 1.1920928955078125e-7;
  const hist = new Float64Array(256);
  for (const v of gray) hist[v]!++;
  const scale = 1 / gray.length;
  let mu = 0;
  for (let i = 0; i < 256; i++) mu += i * hist[i]!;
  mu *= scale;
  let mu1 = 0, q1 = 0, maxSigma = 0, best = 0;
  for (let i = 0; i < 256; i++) {
    const p = hist[i]! * scale;
    mu1 *= q1;
    q1 += p;
    const q2 = 1 - q1;
    if (Math.min(q1, q2) < FLT_EPSILON || Math.max(q1, q2) > 1 - FLT_EPSILON) continue;
    mu1 = (mu1 + i * p) / q1;
    const mu2 = (mu - q1 * mu1) / q2;
    const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > maxSigma) {
      maxSigma = sigma;
      best = i;
    }
  }
  return best;
}

export function qrcode(img: RgbImage): RgbImage {
  const gray = luma(img);
  const t = otsuThreshold(gray);
  for (let i = 0; i < gray.length; i++) gray[i] = gray[i]! > t ? 255 : 0;
  return grayToRgb(gray, img.width, img.height);
}
