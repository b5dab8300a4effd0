// multi_lingual: a MarianMT translator (the Helsinki-NLP opus-mt-{src}-en family, CC-BY-4.0) in the models folder
// as translator/opus-mt-<src>-en (or the many-to-English opus-mt-mul-en), built by our graph builder
// (models/marian.ts) and decoded as transformers' generate() does with the model's generation config (beam search, or
// greedy) over a key/value cache. Which translator a prompt uses follows
// from the language franc identified (ISO 639-3, extras/language.ts) through opus-mt.ts.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildMarian, marianDims, type MarianConfigJson, type MarianDims } from '../models/marian.ts';
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import { MarianTokenizer } from '../text/marian-tokenizer.ts';
import { openComponentFolder } from '../weights/open.ts';

export { MULTILINGUAL_TRANSLATOR_ID, OPUS_MT_SOURCE, translatorIdsFor } from './opus-mt.ts';

/** What decoding uses from generation_config.json (or config.json, as older repositories carry it). */
export interface MarianGeneration {
  decoderStartTokenId: number;
  eosTokenId: number;
  /** Tokens never generated (bad_words_ids; Marian lists its <pad>), each a token sequence. */
  badWordsIds: number[][];
  forcedEosTokenId?: number;
  /** The longest output in tokens, the decoder start token included (transformers' max_length). */
  maxLength: number;
  /** Beams of the model's beam search (num_beams, at most MAX_BEAMS; 1: greedy). opus-mt asks for 4 to 6. */
  numBeams: number;
  /** Beam search: hypothesis scores are divided by length ** lengthPenalty (length_penalty, default 1). */
  lengthPenalty: number;
  /** Beam search: early_stopping (true, false or "never"; default false). */
  earlyStopping: boolean | 'never';
  /** log-softmax again after the logits processors (renormalize_logits; only beam scores depend on it). */
  renormalizeLogits: boolean;
}

/** The longest translation we decode (tokens, start token included), whatever the model's max_length says. */
export const MAX_TRANSLATION_TOKENS = 256;
/** The most beams we run, whatever the model's num_beams says (opus-mt asks for 4 to 6). */
export const MAX_BEAMS = 8;

export interface Translation {
  text: string;
  inputIds: number[];
  /** generate()'s sequence: the decoder start token, the generated tokens, </s> when reached. */
  generatedIds: number[];
}

export class MarianTranslator {
  private constructor(
    /** The model id (its folder name under translator/). */
    readonly model: string,
    readonly tokenizer: MarianTokenizer,
    private readonly dims: MarianDims,
    readonly generation: MarianGeneration,
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
  ) {}

  /**
   * Loads a translator folder (config.json, model.safetensors or pytorch_model.bin, source.spm, target.spm,
   * vocab.json, optional generation_config.json and tokenizer_config.json); the two graphs are built once into the
   * compiled-model cache. Throws naming the file or field it cannot use.
   */
  static async load(dir: string, model: string, rt: RuntimeOptions): Promise<MarianTranslator> {
    if (!existsSync(join(dir, 'config.json'))) throw new Error('the translator has no config.json');
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as MarianConfigJson;
    if (config.model_type !== undefined && config.model_type !== 'marian') throw new Error(`config.json model_type is "${String(config.model_type)}", not "marian"`);
    const dims = marianDims(config);
    const gen = existsSync(join(dir, 'generation_config.json'))
      ? { ...config, ...(JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as MarianConfigJson) } : config;
    const pad = config.pad_token_id ?? 58100;
    const generation: MarianGeneration = {
      decoderStartTokenId: gen.decoder_start_token_id ?? pad, eosTokenId: gen.eos_token_id ?? 0,
      badWordsIds: gen.bad_words_ids ?? [], forcedEosTokenId: gen.forced_eos_token_id ?? undefined, maxLength: gen.max_length ?? 512,
      numBeams: typeof gen.num_beams === 'number' && gen.num_beams >= 1 ? Math.min(Math.floor(gen.num_beams), MAX_BEAMS) : 1,
      lengthPenalty: typeof gen.length_penalty === 'number' ? gen.length_penalty : 1,
      earlyStopping: gen.early_stopping === true || gen.early_stopping === 'never' ? gen.early_stopping : false,
      renormalizeLogits: gen.renormalize_logits === true,
    };
    const tokenizer = await MarianTokenizer.load(dir);
    const src = await openComponentFolder(dir);
    const key = { config, weights: src.fingerprint() };
    // one build serves both graphs (it checks that every weight is used by one of them)
    let built: ReturnType<typeof buildMarian> | undefined;
    const graphs = (): ReturnType<typeof buildMarian> => (built ??= buildMarian(config, src));
    const encoder = await compiledModel(rt.cacheDir, { kind: 'marian-encoder', ...key }, () => graphs().encoder);
    const decoder = await compiledModel(rt.cacheDir, { kind: 'marian-decoder-step', ...key }, () => graphs().decoder);
    return new MarianTranslator(model, tokenizer, dims, generation, await createSession(encoder.path, rt), await createSession(decoder.path, rt));
  }

  /**
   * transformers' generate() with num_beams=1, do_sample=False (greedy): the encoder once, then one decoder step
   * per token with the cache, bad_words_ids suppressed, </s> forced at maxLength − 1 (forced_eos_token_id), until
   * </s> or maxLength tokens. The first maximum wins a tie, as torch.argmax.
   */
  async generate(inputIds: number[], maxLength = Math.min(this.generation.maxLength, MAX_TRANSLATION_TOKENS)): Promise<number[]> {
    const gen = this.generation;
    const ids = [gen.decoderStartTokenId];
    const steps = this.steps(inputIds);
    try {
      while (ids.length < maxLength) {
        const logits = (await steps.next(ids[ids.length - 1]!)).slice();
        suppressBadWords(logits, ids, gen.badWordsIds);
        if (gen.forcedEosTokenId !== undefined && ids.length === maxLength - 1) {
          logits.fill(-Infinity);
          logits[gen.forcedEosTokenId] = 0;
        }
        const next = argmax(logits);
        ids.push(next);
        if (next === gen.eosTokenId) break;
      }
    } finally {
      steps.dispose();
    }
    return ids;
  }

  /**
   * The raw logits [V] the decoder gives after each token of `decoderIds` (the first being the start token), one
   * cached step per token: what a teacher-forced pass of the whole sequence gives at each position.
   */
  async stepLogits(inputIds: number[], decoderIds: number[]): Promise<Float32Array[]> {
    const steps = this.steps(inputIds);
    const out: Float32Array[] = [];
    for (const t of decoderIds) out.push((await steps.next(t)).slice());
    steps.dispose();
    return out;
  }

  /** The encoder run once, then a decoder step per token fed, each reading and extending the key/value cache. */
  private steps(inputIds: number[]): { next(token: number): Promise<Float32Array>; dispose(): void } {
    const { dims } = this;
    const hd = dims.d / dims.decoderHeads;
    let feeds: Promise<Record<string, ort.Tensor>> | undefined;
    const start = async (): Promise<Record<string, ort.Tensor>> => {
      const enc = await this.encoder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, inputIds.length]) });
      const f: Record<string, ort.Tensor> = {};
      for (let i = 0; i < dims.decoderLayers; i++) {
        f[`cross_key_${i}`] = enc[`cross_key_${i}`]!;
        f[`cross_value_${i}`] = enc[`cross_value_${i}`]!;
        f[`past_key_${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, dims.decoderHeads, 0, hd]);
        f[`past_value_${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, dims.decoderHeads, 0, hd]);
      }
      return f;
    };
    return {
      next: async (token) => {
        const f = await (feeds ??= start());
        const out = await this.decoder.run({ ...f, input_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]) });
        for (let i = 0; i < dims.decoderLayers; i++) {
          f[`past_key_${i}`] = out[`present_key_${i}`]!;
          f[`past_value_${i}`] = out[`present_value_${i}`]!;
        }
        return out.logits!.data as Float32Array;
      },
      dispose: () => { feeds = undefined; },
    };
  }

  /**
   * transformers 5's _beam_search (do_sample=False, one sequence returned) with the key/value cache: the beams run
   * as one batch; each step takes log_softmax of the logits, the logits processors (bad_words_ids, forced </s> at
   * maxLength − 1, renormalization when asked), adds each beam's score, keeps the best 2·numBeams continuations
   * (float32 sums as torch), moves finished ones (</s> or maxLength) into the numBeams best hypotheses, scored
   * sum / length ** lengthPenalty, continues with the best numBeams unfinished ones (the cache reordered to them),
   * and stops as transformers does (early_stopping's heuristic, or nothing left to continue). Returns the best
   * hypothesis: the start token, its tokens, </s> when it ended so.
   */
  async beamSearch(inputIds: number[], numBeams: number, maxLength = Math.min(this.generation.maxLength, MAX_TRANSLATION_TOKENS)): Promise<number[]> {
    const { dims, generation: gen } = this;
    const K = numBeams, keep = 2 * K, V = dims.vocab, f = Math.fround, NEG = -1e9;
    const hd = dims.d / dims.decoderHeads, H = dims.decoderHeads;
    const enc = await this.encoder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, inputIds.length]) });
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < dims.decoderLayers; i++) {
      for (const kind of ['key', 'value']) {
        const t = enc[`cross_${kind}_${i}`]!;
        feeds[`cross_${kind}_${i}`] = new ort.Tensor('float32', repeatRows(t.data as Float32Array, K), [K, ...t.dims.slice(1)]);
        feeds[`past_${kind}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [K, H, 0, hd]);
      }
    }
    let running = Array.from({ length: K }, () => [gen.decoderStartTokenId]);
    let runningScores: number[] = Array.from({ length: K }, (_, b) => (b === 0 ? 0 : NEG));
    let finished = Array.from({ length: K }, () => ({ seq: [gen.decoderStartTokenId], score: NEG, done: false }));
    let improvable = true;
    const penalty = (len: number): number => f(len ** gen.lengthPenalty);
    for (let curLen = 1; ;) {
      const out = await this.decoder.run({ ...feeds, input_ids: new ort.Tensor('int64', BigInt64Array.from(running.map((s) => BigInt(s[s.length - 1]!))), [K, 1]) });
      const logits = out.logits!.data as Float32Array;
      const acc = new Float32Array(K * V);
      for (let b = 0; b < K; b++) {
        let lp = logSoftmax(logits.subarray(b * V, (b + 1) * V));
        suppressBadWords(lp, running[b]!, gen.badWordsIds);
        if (gen.forcedEosTokenId !== undefined && curLen === maxLength - 1) {
          lp.fill(-Infinity);
          lp[gen.forcedEosTokenId] = 0;
        }
        if (gen.renormalizeLogits) lp = logSoftmax(lp);
        const score = runningScores[b]!, base = b * V;
        for (let v = 0; v < V; v++) acc[base + v] = lp[v]! + score; // stored as float32: torch's float32 sum
      }
      const cands = topK(acc, keep).map(({ index, value }, j) => {
        const beam = Math.floor(index / V), token = index % V;
        return { beam, seq: [...running[beam]!, token], logp: value, hits: token === gen.eosTokenId || curLen + 1 >= maxLength, top: j < K };
      });
      // the best numBeams unfinished continuations run on
      const next = topK(Float32Array.from(cands.map((c) => f(c.logp + (c.hits ? NEG : 0)))), K);
      const order = next.map((n) => cands[n.index]!);
      runningScores = next.map((n) => n.value);
      // finished hypotheses: the best numBeams of the old ones and the new (top numBeams candidates that hit)
      const allDone = finished.every((h) => h.done) && gen.earlyStopping === true;
      const newScores = cands.map((c) => {
        let x = f(c.logp / penalty(curLen));
        if (allDone) x = f(x + NEG);
        if (!improvable) x = f(x + NEG);
        if (!(c.hits && c.top)) x = f(x + NEG);
        return x;
      });
      const merged = [...finished, ...cands.map((c, j) => ({ seq: c.seq, score: newScores[j]!, done: c.hits && c.top }))];
      finished = topK(Float32Array.from(merged.map((m) => m.score)), K).map((t) => merged[t.index]!);
      // the cache follows the beams to their new order
      const sources = order.map((c) => c.beam);
      for (let i = 0; i < dims.decoderLayers; i++) {
        for (const kind of ['key', 'value']) {
          const t = out[`present_${kind}_${i}`]!;
          feeds[`past_${kind}_${i}`] = new ort.Tensor('float32', gatherRows(t.data as Float32Array, sources), t.dims as number[]);
        }
      }
      running = order.map((c) => c.seq);
      curLen++;
      // _check_early_stop_heuristic: can the best running beam still beat the worst kept hypothesis?
      const hypotheticalLength = gen.earlyStopping === 'never' && gen.lengthPenalty > 0 ? maxLength - 1 : curLen - 1;
      const best = f(runningScores[0]! / penalty(hypotheticalLength));
      const minFinished = Math.min(...finished.map((h) => h.score));
      improvable = improvable && finished.some((h) => best > (h.done ? minFinished : NEG));
      const openBeam = !(finished.every((h) => h.done) && gen.earlyStopping === true);
      if (!(improvable && openBeam && !cands.every((c) => c.hits))) return finished[0]!.seq;
    }
  }

  /** The encoder's last_hidden_state [1, S, D] of input ids (tests compare it with transformers'). */
  async encode(inputIds: number[]): Promise<Float32Array> {
    const enc = await this.encoder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, inputIds.length]) });
    return enc.last_hidden_state!.data as Float32Array;
  }

  /**
   * Translates a prompt: tokenized (input truncated to the model's positions, </s> kept), generated with the
   * model's beam search (generation_config.json num_beams; `numBeams` 1 = greedy), decoded without special tokens.
   */
  async translate(text: string, o: { numBeams?: number; maxLength?: number } = {}): Promise<Translation> {
    let inputIds = this.tokenizer.encode(text);
    if (inputIds.length > this.dims.maxPositions) inputIds = [...inputIds.slice(0, this.dims.maxPositions - 1), this.tokenizer.eosId];
    const beams = o.numBeams ?? this.generation.numBeams;
    const generatedIds = beams > 1 ? await this.beamSearch(inputIds, beams, o.maxLength) : await this.generate(inputIds, o.maxLength);
    return { text: this.tokenizer.decode(generatedIds), inputIds, generatedIds };
  }

  /** Frees both ONNX Runtime sessions. */
  async release(): Promise<void> {
    await this.encoder.release();
    await this.decoder.release();
  }
}

/** NoBadWordsLogitsProcessor: a banned sequence's last token is -inf where the sequence's prefix ends the ids. */
function suppressBadWords(logits: Float32Array, ids: number[], bad: number[][]): void {
  for (const seq of bad) {
    if (seq.length === 0) continue;
    const prefix = seq.slice(0, -1);
    if (prefix.length > ids.length) continue;
    if (prefix.every((t, i) => ids[ids.length - prefix.length + i] === t)) logits[seq[seq.length - 1]!] = -Infinity;
  }
}

/** torch's log_softmax in float32: x − max − log Σ exp(x − max). */
function logSoftmax(x: Float32Array): Float32Array {
  const n = x.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[i]! > max) max = x[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[i]! - max);
  const lse = Math.fround(Math.log(sum));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(x[i]! - max) - lse;
  return out;
}

/** The k largest values with their indices, largest first; equal values in index order (one pass, k small). */
function topK(v: Float32Array, k: number): { index: number; value: number }[] {
  const best: { index: number; value: number }[] = [];
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (best.length === k && !(x > best[k - 1]!.value)) continue;
    let at = best.length;
    while (at > 0 && x > best[at - 1]!.value) at--;
    best.splice(at, 0, { index: i, value: x });
    if (best.length > k) best.pop();
  }
  return best;
}

/** A [1, ...] tensor's data repeated n times along the batch axis. */
function repeatRows(data: Float32Array, n: number): Float32Array {
  const out = new Float32Array(data.length * n);
  for (let i = 0; i < n; i++) out.set(data, i * data.length);
  return out;
}

/** Rows (batch entries) of a [B, ...] tensor's data taken in the order `rows`. */
function gatherRows(data: Float32Array, rows: number[]): Float32Array {
  const size = data.length / rows.length;
  const out = new Float32Array(data.length);
  rows.forEach((r, i) => out.set(data.subarray(r * size, (r + 1) * size), i * size));
  return out;
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
