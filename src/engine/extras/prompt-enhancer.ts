// enhance_prompt: a GPT-2 prompt-expansion model (MagicPrompt-Stable-Diffusion's kind) continues the user's
// prompt. Its folder is a transformers GPT2LMHeadModel as saved by save_pretrained (config.json, model.safetensors
// or pytorch_model.bin, tokenizer.json or vocab.json + merges.txt), built by our builder (models/gpt2.ts) with a
// KV cache, so each new token costs one single-position pass over the cached keys and values.
// The enhanced prompt is the original prompt followed by the generated continuation up to the first newline or
// end-of-text token, trailing whitespace removed: what MagicPrompt's demo (transformers' text-generation pipeline,
// which returns prompt + continuation, one prompt per line) gives, without its cleanup of URL-like words.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors.ts';
import { buildGpt2, gpt2Dims, type Gpt2ConfigJson, type Gpt2Dims } from '../models/gpt2.ts';
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import { Gpt2Tokenizer } from '../text/gpt2-tokenizer.ts';
import { openComponentFolder } from '../weights/open.ts';
import { argmax, drawToken, SeededUniform, warpedProbabilities, type SamplingSettings } from './token-sampling.ts';

/**
 * The decoding the pipeline uses: sampling as MagicPrompt's demo runs it (gpt2's text-generation defaults:
 * do_sample with top_k 50, temperature 1, no top-p), seeded by the request's seed, at most 64 new tokens.
 */
export const ENHANCE_DECODING: SamplingSettings & { maxNewTokens: number } = { temperature: 1, topK: 50, topP: 1, maxNewTokens: 64 };

export interface GenerateSettings {
  /** New tokens at most (also bounded by the model's positions). */
  maxNewTokens: number;
  /** Sampling settings and seed; absent: greedy (argmax, transformers' do_sample=False). */
  sample?: SamplingSettings & { seed: number };
  /** Stop after a token whose text contains a newline (MagicPrompt writes one prompt per line); default true. */
  stopAtNewline?: boolean;
  /** Sees each step's logits [vocab] before the token is chosen (tests compare them with transformers'). */
  onLogits?: (logits: Float32Array, step: number) => void;
  signal?: AbortSignal;
}

export interface Generated {
  /** The new token ids (the stopping eos excluded, a stopping newline token included). */
  tokens: number[];
  stoppedBy: 'eos' | 'newline' | 'length';
  /** Prompt tokens fed as context (the prompt's last ones when it was longer than the model allows). */
  contextTokens: number;
}

export interface Enhanced {
  /** The prompt to encode: the original followed by the continuation. */
  prompt: string;
  /** How it was decoded, for meta: e.g. "sampled (top_k 50, temperature 1, seed 7): 23 tokens, stopped at newline". */
  note: string;
}

export class PromptEnhancer {
  private constructor(readonly model: string, readonly dims: Gpt2Dims, readonly tokenizer: Gpt2Tokenizer, private readonly session: ort.InferenceSession) {}

  /** Frees its session (the engine's memory budget evicts it, SessionCache.useResource). */
  release(): Promise<void> {
    return this.session.release();
  }

  /**
   * Builds (once, into the compiled-model cache) the GPT-2 in `dir` and loads its tokenizer. `model` is the name
   * meta reports. Throws (naming the file) for a folder that is not a GPT-2 it can run.
   */
  static async load(dir: string, model: string, rt: RuntimeOptions): Promise<PromptEnhancer> {
    let config: Gpt2ConfigJson;
    try {
      config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    } catch (e) {
      throw new Error(`config.json: ${(e as Error).message}`);
    }
    const dims = gpt2Dims(config);
    const tokenizer = await Gpt2Tokenizer.fromDir(dir);
    if (tokenizer.vocabSize > dims.vocab) throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${dims.vocab}`);
    const src = await openComponentFolder(dir);
    const compiled = await compiledModel(rt.cacheDir, { kind: 'prompt_enhancer-gpt2', config, weights: src.fingerprint() }, () => buildGpt2(config, src, model).graph);
    return new PromptEnhancer(model, dims, tokenizer, await createSession(compiled.path, rt));
  }

  /**
   * Continues `promptIds` token by token (transformers' generate with use_cache): greedy or seeded sampling, until
   * end-of-text, a newline token (unless stopAtNewline is false) or maxNewTokens. An empty prompt starts from the
   * end-of-text token (GPT-2's bos). Context plus new tokens never exceed the model's positions: a prompt longer
   * than positions − min(maxNewTokens, positions / 2) keeps its last tokens. Throws EngineError('cancelled') when the signal is aborted between tokens.
   */
  async generate(promptIds: readonly number[], s: GenerateSettings): Promise<Generated> {
    const { layers, heads, headDim, positions } = this.dims;
    // the prompt keeps at least half of the positions; new tokens get the rest, up to maxNewTokens
    const reserve = Math.max(0, Math.min(s.maxNewTokens, Math.floor(positions / 2)));
    const start = promptIds.length ? promptIds : [this.tokenizer.eosId];
    const context = start.slice(-(positions - reserve));
    const budget = Math.max(0, Math.min(s.maxNewTokens, positions - context.length));
    const uniform = s.sample ? new SeededUniform(s.sample.seed) : undefined;
    const empty = new Float32Array(0);
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < layers; i++) {
      feeds[`past.${i}.key`] = new ort.Tensor('float32', empty, [1, heads, 0, headDim]);
      feeds[`past.${i}.value`] = new ort.Tensor('float32', empty, [1, heads, 0, headDim]);
    }
    let input = context;
    const tokens: number[] = [];
    for (let step = 0; step < budget; step++) {
      if (s.signal?.aborted) throw new EngineError('cancelled', 'cancelled');
      feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(input, BigInt), [1, input.length]);
      const out = await this.session.run(feeds);
      const logits = out.logits!.data as Float32Array;
      s.onLogits?.(logits, step);
      for (let i = 0; i < layers; i++) {
        feeds[`past.${i}.key`] = out[`present.${i}.key`]!;
        feeds[`past.${i}.value`] = out[`present.${i}.value`]!;
      }
      const next = s.sample && uniform ? drawToken(warpedProbabilities(logits, s.sample), uniform.next()) : argmax(logits);
      if (next === this.tokenizer.eosId) return { tokens, stoppedBy: 'eos', contextTokens: context.length };
      tokens.push(next);
      if ((s.stopAtNewline ?? true) && this.tokenizer.decode([next]).includes('\n')) return { tokens, stoppedBy: 'newline', contextTokens: context.length };
      input = [next];
    }
    return { tokens, stoppedBy: 'length', contextTokens: context.length };
  }

  /**
   * The enhanced prompt: `prompt` + the continuation sampled with `decoding` and `seed` (the text before its first
   * newline, trailing whitespace removed). The same prompt, seed and model give the same text.
   */
  async enhance(prompt: string, seed: number, decoding: SamplingSettings & { maxNewTokens: number } = ENHANCE_DECODING, signal?: AbortSignal): Promise<Enhanced> {
    const ids = this.tokenizer.encode(prompt);
    const { maxNewTokens, ...sampling } = decoding;
    const g = await this.generate(ids, { maxNewTokens, sample: { ...sampling, seed }, signal });
    const continuation = this.tokenizer.decode(g.tokens).split('\n')[0]!;
    const how = `sampled (top_k ${sampling.topK}, top_p ${sampling.topP}, temperature ${sampling.temperature}, seed ${seed})`;
    const stop = g.stoppedBy === 'length' ? `the ${maxNewTokens}-token limit` : g.stoppedBy === 'eos' ? 'end of text' : 'a newline';
    const context = g.contextTokens < ids.length ? `, from the prompt's last ${g.contextTokens} of ${ids.length} tokens` : '';
    return { prompt: (prompt + continuation).trimEnd(), note: `${how}: ${g.tokens.length} tokens, stopped at ${stop}${context}` };
  }
}
