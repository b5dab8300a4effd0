// Prompt → text embeddings as diffusers' encode_prompt does (padding to 77, CFG pairs), extended A1111-style
// for prompts over 77 tokens: 75-token chunks, each wrapped in bos/eos and encoded alone, concatenated on the
// sequence axis; the negative prompt is padded with empty chunks to the same length.
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { cat } from './tensor-math.ts';
import { applyTokenWeights, weightedChunks } from '../text/prompt-weighting.ts';

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
 * negative prompt always takes the last layer. With `weighting`, both prompts are read with the weighting syntax
 * (text/prompt-weighting.ts, the lpw pipeline's get_weighted_text_embeddings); without it they are plain text.
 */
export async function encodePrompts(
  tok: ClipTokenizer, run: TextEncoderRun, prompt: string, negative: string, samples: number, cfg: boolean, clipSkip = 0,
  weighting = false,
): Promise<TextEmbeds> {
  const read = (text: string) => (weighting ? weightedChunks(tok, text) : { ids: tok.encodeChunks(text), weights: undefined });
  const pos = read(prompt);
  const neg = cfg ? read(negative) : { ids: [], weights: undefined };
  const chunks = Math.max(pos.ids.length, neg.ids.length);
  const empty = tok.encodeChunks('')[0]!;
  const pad = (c: number[][]): number[][] => [...c, ...Array.from({ length: chunks - c.length }, () => empty)];
  const L = empty.length;
  const encode = async (part: { ids: number[][]; weights?: number[][] }, skip: number) => {
    const rows = pad(part.ids);
    const out = await run(BigInt64Array.from(rows.flat().map((v) => BigInt(v))), rows.length, skip);
    // padding chunks weigh 1 everywhere
    if (part.weights) applyTokenWeights(out.data, [...part.weights.flat(), ...Array<number>((chunks - part.ids.length) * L).fill(1)], out.dim);
    return out;
  };
  const posOut = await encode(pos, clipSkip);
  const dim = posOut.dim;
  const data = cfg ? cat((await encode(neg, 0)).data, posOut.data) : posOut.data;
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
