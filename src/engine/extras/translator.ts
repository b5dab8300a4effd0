// multi_lingual: a MarianMT translator (the Helsinki-NLP opus-mt-{src}-en family, CC-BY-4.0) in the models folder
// as translator/opus-mt-<src>-en (or the many-to-English opus-mt-mul-en), built by our graph builder
// (models/marian.ts) and run with greedy decoding and a key/value cache. Which translator a prompt uses follows
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
}

/** The longest translation we decode (tokens, start token included), whatever the model's max_length says. */
export const MAX_TRANSLATION_TOKENS = 256;

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

  /** The encoder's last_hidden_state [1, S, D] of input ids (tests compare it with transformers'). */
  async encode(inputIds: number[]): Promise<Float32Array> {
    const enc = await this.encoder.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, inputIds.length]) });
    return enc.last_hidden_state!.data as Float32Array;
  }

  /**
   * Translates a prompt: tokenized (input truncated to the model's positions, </s> kept), generated greedily,
   * decoded without special tokens.
   */
  async translate(text: string, maxLength?: number): Promise<Translation> {
    let inputIds = this.tokenizer.encode(text);
    if (inputIds.length > this.dims.maxPositions) inputIds = [...inputIds.slice(0, this.dims.maxPositions - 1), this.tokenizer.eosId];
    const generatedIds = await this.generate(inputIds, maxLength);
    return { text: this.tokenizer.decode(generatedIds), inputIds, generatedIds };
  }

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

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
