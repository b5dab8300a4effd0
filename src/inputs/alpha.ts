// Transparency in request images, resolved before any annotator or encoder sees them (they all take RGB):
// - a hint (control_image, or init_image used as a hint) and an init image are composited over white, as
//   ControlNet's HWC3 does (lllyasviel/ControlNet-v1-1-nightly annotator/util.py) and as A1111 flattens
//   img2img inputs (images.flatten with its default background "#ffffff"). Line art exported as black strokes
//   on a transparent background thus stays black strokes on white;
// - a mask whose alpha is not fully opaque is its alpha channel (opaque = repaint), as A1111's
//   create_binary_mask reads it; a fully opaque mask is its colours (luma), as before.
// Inputs are HWC RGBA uint8 as sharp decodes them (palette transparency and grey + alpha already expanded).

/** What a request image is used for; it decides what transparency means. */
export type ImageRole = 'hint' | 'init' | 'mask';

/** The role of a request field: mask_image is a mask, init_image an init image, anything else a hint. */
export function roleOfField(field: string): ImageRole {
  return field === 'mask_image' ? 'mask' : field === 'init_image' ? 'init' : 'hint';
}

/**
 * RGBA → RGB over white with HWC3's float32 arithmetic: y = color * a + 255 * (1 - a), a = alpha / 255,
 * clipped to [0, 255] and truncated (numpy astype(uint8)). Fully opaque pixels are unchanged.
 */
export function compositeOverWhite(rgba: Uint8Array): Uint8Array {
  const n = rgba.length / 4;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = Math.fround(rgba[4 * i + 3]! / 255);
    const back = Math.fround(255 * Math.fround(1 - a));
    for (let c = 0; c < 3; c++) {
      const y = Math.fround(Math.fround(rgba[4 * i + c]! * a) + back);
      out[3 * i + c] = y <= 0 ? 0 : y >= 255 ? 255 : Math.trunc(y);
    }
  }
  return out;
}

/** RGBA mask → RGB: the alpha channel (grey) when any pixel is not fully opaque, else the colours. */
export function maskFromRgba(rgba: Uint8Array): Uint8Array {
  const n = rgba.length / 4;
  let opaque = true;
  for (let i = 0; i < n && opaque; i++) opaque = rgba[4 * i + 3] === 255;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = opaque ? rgba[4 * i + c]! : rgba[4 * i + 3]!;
  }
  return out;
}

/** RGBA → the RGB the role's consumers expect (see the header). */
export function resolveAlpha(rgba: Uint8Array, role: ImageRole): Uint8Array {
  return role === 'mask' ? maskFromRgba(rgba) : compositeOverWhite(rgba);
}
