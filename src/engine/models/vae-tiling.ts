// diffusers AutoencoderKL.tiled_decode around any decoder call: overlapping latent tiles are decoded one by
// one, then each tile is blended with the tile above and to its left (linear ramps, in place, in the same
// order as diffusers) and cropped, which keeps memory bounded for large images.

export interface Tensor4 {
  data: Float32Array;
  dims: [number, number, number, number];
}

export interface TileSizes {
  tileSampleMinSize: number;
  tileLatentMinSize: number;
  overlapFactor: number;
}

/** diffusers decodes tiled when either latent side exceeds the tile size (with tiling enabled). */
export function needsTiling(latentDims: readonly number[], t: TileSizes): boolean {
  return latentDims[2]! > t.tileLatentMinSize || latentDims[3]! > t.tileLatentMinSize;
}

function crop(x: Tensor4, h0: number, h1: number, w0: number, w1: number): Tensor4 {
  const [b, c, H, W] = x.dims;
  const hh = Math.min(h1, H) - h0;
  const ww = Math.min(w1, W) - w0;
  const out = new Float32Array(b * c * hh * ww);
  for (let bc = 0; bc < b * c; bc++) {
    for (let y = 0; y < hh; y++) {
      const src = (bc * H + h0 + y) * W + w0;
      out.set(x.data.subarray(src, src + ww), (bc * hh + y) * ww);
    }
  }
  return { data: out, dims: [b, c, hh, ww] };
}

/** b[:, :, y, :] = a[:, :, -e + y, :] * (1 - y/e) + b[:, :, y, :] * (y/e), in place on b. */
function blendV(a: Tensor4, b: Tensor4, extent: number): void {
  const e = Math.min(a.dims[2], b.dims[2], extent);
  const [B, C, Ha, Wa] = a.dims;
  const [, , Hb, Wb] = b.dims;
  const W = Math.min(Wa, Wb);
  for (let bc = 0; bc < B * C; bc++) {
    for (let y = 0; y < e; y++) {
      const f = y / e;
      const ra = (bc * Ha + Ha - e + y) * Wa;
      const rb = (bc * Hb + y) * Wb;
      for (let x = 0; x < W; x++) b.data[rb + x] = a.data[ra + x]! * (1 - f) + b.data[rb + x]! * f;
    }
  }
}

/** b[:, :, :, x] = a[:, :, :, -e + x] * (1 - x/e) + b[:, :, :, x] * (x/e), in place on b. */
function blendH(a: Tensor4, b: Tensor4, extent: number): void {
  const e = Math.min(a.dims[3], b.dims[3], extent);
  const [B, C, Ha, Wa] = a.dims;
  const [, , Hb, Wb] = b.dims;
  const H = Math.min(Ha, Hb);
  for (let bc = 0; bc < B * C; bc++) {
    for (let y = 0; y < H; y++) {
      const ra = (bc * Ha + y) * Wa + Wa - e;
      const rb = (bc * Hb + y) * Wb;
      for (let x = 0; x < e; x++) {
        const f = x / e;
        b.data[rb + x] = a.data[ra + x]! * (1 - f) + b.data[rb + x]! * f;
      }
    }
  }
}

/** Concatenates tiles along width (axis 3) or height (axis 2). */
function cat(parts: Tensor4[], axis: 2 | 3): Tensor4 {
  const [B, C] = parts[0]!.dims;
  const H = axis === 2 ? parts.reduce((s, p) => s + p.dims[2], 0) : parts[0]!.dims[2];
  const W = axis === 3 ? parts.reduce((s, p) => s + p.dims[3], 0) : parts[0]!.dims[3];
  const out = new Float32Array(B * C * H * W);
  let off = 0;
  for (const p of parts) {
    const [, , h, w] = p.dims;
    for (let bc = 0; bc < B * C; bc++) {
      for (let y = 0; y < h; y++) {
        const dst = axis === 3 ? (bc * H + y) * W + off : (bc * H + off + y) * W;
        out.set(p.data.subarray((bc * h + y) * w, (bc * h + y + 1) * w), dst);
      }
    }
    off += axis === 3 ? w : h;
  }
  return { data: out, dims: [B, C, H, W] };
}

/** Decodes `latent` tile by tile with `decode` (the decoder graph, post_quant_conv included). */
export async function tiledDecode(latent: Tensor4, decode: (tile: Tensor4) => Promise<Tensor4>, t: TileSizes): Promise<Tensor4> {
  const overlap = Math.trunc(t.tileLatentMinSize * (1 - t.overlapFactor));
  const blendExtent = Math.trunc(t.tileSampleMinSize * t.overlapFactor);
  const rowLimit = t.tileSampleMinSize - blendExtent;
  const [, , H, W] = latent.dims;
  const rows: Tensor4[][] = [];
  for (let i = 0; i < H; i += overlap) {
    const row: Tensor4[] = [];
    for (let j = 0; j < W; j += overlap) {
      row.push(await decode(crop(latent, i, i + t.tileLatentMinSize, j, j + t.tileLatentMinSize)));
    }
    rows.push(row);
  }
  const resultRows = rows.map((row, i) => cat(row.map((tile, j) => {
    if (i > 0) blendV(rows[i - 1]![j]!, tile, blendExtent);
    if (j > 0) blendH(row[j - 1]!, tile, blendExtent);
    return crop(tile, 0, rowLimit, 0, rowLimit);
  }), 3));
  return cat(resultRows, 2);
}
