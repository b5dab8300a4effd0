// Prompt → text embeddings as diffusers' encode_prompt does (padding to 77, CFG pairs), extended A1111-style
// for prompts over 77 tokens: 75-token chunks, each wrapped in bos/eos and encoded alone, concatenated on the
// sequence axis; the negative prompt is padded with empty chunks to the same length.
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { cat } from './tensor-math.ts';

export interface TextEmbeds {
  /** [batch, seq, dim]: negatives first when cfg (diffusers' torch.cat([negative, positive])). */
  data: Float32Array;
  batch: number;
  seq: number;
  dim: number;
}

/** Runs the text encoder on n rows of 77 ids, taking the hidden state `skip` layers before the last; [n, 77, dim]. */
export type TextEncoderRun = (ids: BigInt64Array, rows: number, skip: number) => Promise<{ data: Float32Array; dim: number }>;

/**
 * clipSkip is diffusers' (0 = last layer). As in diffusers' encode_prompt, it applies to the prompt only: the
 * negative prompt always takes the last layer.
 */
export async function encodePrompts(
  tok: ClipTokenizer, run: TextEncoderRun, prompt: string, negative: string, samples: number, cfg: boolean, clipSkip = 0,
): Promise<TextEmbeds> {
  const pos = tok.encodeChunks(prompt);
  const neg = cfg ? tok.encodeChunks(negative) : [];
  const chunks = Math.max(pos.length, neg.length);
  const empty = tok.encodeChunks('')[0]!;
  const pad = (c: number[][]): number[][] => [...c, ...Array.from({ length: chunks - c.length }, () => empty)];
  const L = empty.length;
  const encode = (rows: number[][], skip: number) => run(BigInt64Array.from(rows.flat().map((v) => BigInt(v))), rows.length, skip);
  const posOut = await encode(pad(pos), clipSkip);
  const dim = posOut.dim;
  const data = cfg ? cat((await encode(pad(neg), 0)).data, posOut.data) : posOut.data;
  // [groups*chunks, L, dim] → per group [chunks*L, dim], then repeated `samples` times (num_images_per_prompt)
  const groups = cfg ? 2 : 1;
  const seq = chunks * L;
  const per = seq * dim;
  const out = new Float32Array(groups * samples * per);
  for (let gi = 0; gi < groups; gi++) {
    const src = data.subarray(gi * per, (gi + 1) * per);
    for (let s = 0; s < samples; s++) out.set(src, (gi * samples + s) * per);
  }
  return { data: out, batch: groups * samples, seq, dim };
}
