// Prompt weighting as A1111-style front ends write it, computed the way diffusers' community long-prompt-weighting
// pipeline does (examples/community/lpw_stable_diffusion.py: parse_prompt_attention, get_prompts_with_weights,
// get_weighted_text_embeddings): `(word)` ×1.1, `((word))` ×1.21, `(word:1.3)` ×1.3, `[word]` ÷1.1, `\(` `\)`
// `\[` `\]` `\\` literal characters, unbalanced brackets closed at the end. Each weighted piece is tokenized on
// its own, every token's embedding is multiplied by its weight, and the whole prompt's embedding is then
// rescaled to its unweighted mean. `BREAK` (A1111: the word in capitals, outside brackets) ends the current
// 75-token chunk: the rest of it is padded and the text goes on in a new chunk.
import type { ClipTokenizer } from './clip-tokenizer.ts';

/** One parsed piece: its text and weight. `BREAK` pieces carry weight -1 (A1111's marker). */
export type WeightedText = [text: string, weight: number];

const RE_ATTENTION = /\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()[\]:]+|:/g;
const RE_BREAK = /\s*\bBREAK\b\s*/;
const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/**
 * parse_prompt_attention of the lpw pipeline, with A1111's BREAK: pieces of text and their weights, runs of equal
 * weight merged. parsePromptAttention('a (((house:1.3)) [on]') → [['a ', 1], ['house', 1.573], [' ', 1.1], ['on', 1]].
 */
export function parsePromptAttention(text: string): WeightedText[] {
  const res: WeightedText[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyRange = (start: number, m: number) => {
    for (let p = start; p < res.length; p++) res[p]![1] *= m;
  };
  for (const match of text.matchAll(RE_ATTENTION)) {
    const t = match[0];
    const weight = match[1];
    if (t.startsWith('\\')) res.push([t.slice(1), 1]);
    else if (t === '(') round.push(res.length);
    else if (t === '[') square.push(res.length);
    else if (weight !== undefined && round.length > 0) multiplyRange(round.pop()!, Number.parseFloat(weight));
    else if (t === ')' && round.length > 0) multiplyRange(round.pop()!, ROUND);
    else if (t === ']' && square.length > 0) multiplyRange(square.pop()!, SQUARE);
    else {
      t.split(RE_BREAK).forEach((part, i) => {
        if (i > 0) res.push(['BREAK', -1]);
        res.push([part, 1]);
      });
    }
  }
  for (const pos of round) multiplyRange(pos, ROUND);
  for (const pos of square) multiplyRange(pos, SQUARE);
  if (res.length === 0) return [['', 1]];
  for (let i = 0; i + 1 < res.length;) {
    if (res[i]![1] === res[i + 1]![1]) {
      res[i]![0] += res[i + 1]![0];
      res.splice(i + 1, 1);
    } else i++;
  }
  return res;
}

export interface WeightedChunks {
  /** Chunks of maxLength ids, each bos … eos then padding (as ClipTokenizer.encodeChunks lays them out). */
  ids: number[][];
  /** The weight of each position of each chunk (1 for bos, eos and padding). */
  weights: number[][];
}

/**
 * The prompt as weighted chunks: each piece tokenized alone (get_prompts_with_weights), its tokens given its
 * weight, cut into chunks of maxLength - 2 tokens; BREAK closes the current chunk (padded) and opens a new one.
 */
export function weightedChunks(tok: ClipTokenizer, text: string): WeightedChunks {
  const size = tok.maxLength - 2;
  const bodies: { ids: number[]; weights: number[] }[] = [];
  let cur = { ids: [] as number[], weights: [] as number[] };
  for (const [piece, weight] of parsePromptAttention(text)) {
    if (piece === 'BREAK' && weight === -1) {
      bodies.push(cur);
      cur = { ids: [], weights: [] };
      continue;
    }
    for (const id of tok.encode(piece)) {
      if (cur.ids.length === size) {
        bodies.push(cur);
        cur = { ids: [], weights: [] };
      }
      cur.ids.push(id);
      cur.weights.push(weight);
    }
  }
  if (cur.ids.length > 0 || bodies.length === 0) bodies.push(cur);
  const ids: number[][] = [];
  const weights: number[][] = [];
  for (const b of bodies) {
    // A1111 pads a chunk closed by BREAK with the end token; ClipTokenizer's layout (eos, then its pad token)
    // is the same for SD 1.x, whose pad token is the end token.
    const row = [tok.bosId, ...b.ids, tok.eosId];
    const w = [1, ...b.weights, 1];
    while (row.length < tok.maxLength) {
      row.push(tok.padId);
      w.push(1);
    }
    ids.push(row);
    weights.push(w);
  }
  return { ids, weights };
}

/**
 * get_weighted_text_embeddings' weighting of one prompt's embedding [seq, dim] (seq = chunks × maxLength, in
 * place): every position × its weight, then the whole × (mean before / mean after), the means over all of
 * [seq, dim] in float32 as torch takes them. A weighting that leaves a zero mean is not rescaled.
 */
export function applyTokenWeights(embedding: Float32Array, weights: ArrayLike<number>, dim: number): void {
  if (weights.length * dim !== embedding.length) throw new Error(`applyTokenWeights: ${weights.length} weights for ${embedding.length / dim} positions`);
  let before = 0;
  for (let i = 0; i < embedding.length; i++) before += embedding[i]!;
  let after = 0;
  for (let p = 0; p < weights.length; p++) {
    const w = Math.fround(weights[p]!);
    for (let d = p * dim; d < (p + 1) * dim; d++) {
      embedding[d] = embedding[d]! * w;
      after += embedding[d]!;
    }
  }
  const meanBefore = Math.fround(before / embedding.length);
  const meanAfter = Math.fround(after / embedding.length);
  if (meanAfter === 0) return;
  const ratio = Math.fround(meanBefore / meanAfter);
  for (let i = 0; i < embedding.length; i++) embedding[i] = embedding[i]! * ratio;
}
