// CLIP byte-level BPE tokenizer giving the same ids as transformers' CLIPTokenizer (5.x, tokenizers backend):
// NFC, whitespace runs → one space, per-character lowercase, CLIP's split regex, GPT-2 byte→unicode mapping,
// BPE with the "</w>" end-of-word suffix. The special tokens are matched verbatim before normalization.
// A tokenizer comes from tokenizer.json (what transformers 5 saves: the tokenizers library's format) or from
// vocab.json + merges.txt; the bundled clip-vit-large-patch14 vocabulary is used only where a model carries
// none and its text encoder has that vocabulary's size, and then the model says so (never silently).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bpeMerge, byteEncoder } from './byte-bpe.ts';

export const CLIP_MAX_LENGTH = 77;
/** The tokenizer shipped with the product, used for single-file checkpoints (they carry none). */
export const DEFAULT_CLIP_TOKENIZER_DIR = join(import.meta.dirname, '..', '..', '..', 'assets', 'tokenizer', 'clip-vit-large-patch14');

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';
const SPECIAL = /<\|startoftext\|>|<\|endoftext\|>/g;
// Unicode White_Space as the Rust side's \s (JS \s lacks U+0085 and adds U+FEFF).
const WHITESPACE = /\p{White_Space}+/gu;
const PIECES = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/gu;

export interface ClipTokenizerOptions {
  /** Token used to pad (SD 1.x: "<|endoftext|>"; SD 2.x: "!"). */
  padToken?: string;
  maxLength?: number;
  /** Most words whose BPE result is kept (least recently used dropped first); default WORD_CACHE_LIMIT. */
  wordCacheLimit?: number;
  /** Token given for a BPE symbol missing from the vocabulary (tokenizers' unk_token); none: an error. */
  unkToken?: string;
}

/** Where a tokenizer's vocabulary came from. */
export type TokenizerSource = 'tokenizer.json' | 'vocab.json + merges.txt' | 'bundled';

/** The bundled vocabulary's size (openai/clip-vit-large-patch14, SD 1.x and 2.x text encoders). */
export const BUNDLED_VOCAB_SIZE = 49408;

/** A tokenizer folder that cannot serve the model (names what was found; the caller adds the file). */
export class TokenizerError extends Error {
  override readonly name = 'TokenizerError';
}

/**
 * The BPE word cache's default bound. A server sees unbounded distinct words (random strings, other
 * languages), so the cache must not grow with them: 200 long prompts of random words once left 570,688
 * entries (+82 MB). 8192 words covers the vocabulary of ordinary prompts many times over.
 */
export const WORD_CACHE_LIMIT = 8192;

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maxLength: number;
  private readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly bytes = byteEncoder();
  private readonly cache = new Map<string, number[]>();
  private readonly cacheLimit: number;
  private readonly unkId: number | undefined;
  /** Where the vocabulary came from (set by the loaders). */
  source: TokenizerSource = 'vocab.json + merges.txt';
  private readonly encoder = new TextEncoder();

  constructor(vocab: Record<string, number>, merges: string[], opts: ClipTokenizerOptions = {}) {
    this.vocab = new Map(Object.entries(vocab));
    merges.forEach((m, i) => this.ranks.set(m, i));
    this.bosId = this.id(BOS);
    this.eosId = this.id(EOS);
    this.padId = this.id(opts.padToken ?? EOS);
    this.maxLength = opts.maxLength ?? CLIP_MAX_LENGTH;
    this.cacheLimit = Math.max(0, opts.wordCacheLimit ?? WORD_CACHE_LIMIT);
    this.unkId = opts.unkToken === undefined ? undefined : this.vocab.get(opts.unkToken);
  }

  /** One more than the largest id (the text encoder's embedding needs at least this many rows). */
  get vocabSize(): number {
    let max = -1;
    for (const id of this.vocab.values()) if (id > max) max = id;
    return max + 1;
  }

  /** Words currently held by the BPE cache (at most the wordCacheLimit option). */
  get cachedWords(): number {
    return this.cache.size;
  }

  /** vocab.json text and merges.txt text as the SD repositories ship them. */
  static fromStrings(vocabJson: string, mergesTxt: string, opts?: ClipTokenizerOptions): ClipTokenizer {
    const merges = mergesTxt.split(/\r?\n/).filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')));
    return new ClipTokenizer(JSON.parse(vocabJson), merges, opts);
  }

  /**
   * The tokenizers library's tokenizer.json (transformers 5's save format): a BPE model with CLIP's "</w>"
   * suffix; its vocabulary plus added tokens, its merges ("a b" strings or [a, b] pairs) and unk_token.
   * Throws TokenizerError for any other tokenizer model (the CLIP pre-processing is built in here).
   */
  static fromTokenizerJson(json: string, opts: ClipTokenizerOptions = {}): ClipTokenizer {
    let t: { model?: Record<string, any>; added_tokens?: { id: number; content: string }[]; normalizer?: unknown };
    try {
      t = JSON.parse(json);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json is not valid JSON (${(e as Error).message})`);
    }
    const m = t.model;
    if (!m || m.type !== 'BPE' || m.end_of_word_suffix !== '</w>' || typeof m.vocab !== 'object' || !Array.isArray(m.merges)) {
      throw new TokenizerError(`tokenizer.json holds a ${m?.type ?? 'unknown'} tokenizer${m?.type === 'BPE' ? ` with end_of_word_suffix ${JSON.stringify(m.end_of_word_suffix ?? null)}` : ''}, not CLIP's BPE (end_of_word_suffix "</w>")`);
    }
    if (!JSON.stringify(t.normalizer ?? null).includes('"Lowercase"')) {
      throw new TokenizerError('tokenizer.json does not lowercase its input: not a CLIP tokenizer');
    }
    const vocab: Record<string, number> = { ...(m.vocab as Record<string, number>) };
    for (const a of t.added_tokens ?? []) vocab[a.content] = a.id;
    const merges = (m.merges as (string | [string, string])[]).map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : x));
    const tok = new ClipTokenizer(vocab, merges, { unkToken: typeof m.unk_token === 'string' ? m.unk_token : undefined, ...opts });
    tok.source = 'tokenizer.json';
    return tok;
  }

  /**
   * A tokenizer folder: tokenizer.json (preferred, as transformers' fast tokenizer does) or vocab.json +
   * merges.txt, with tokenizer_config.json for pad token and max length. Throws TokenizerError when the folder
   * has neither.
   */
  static async fromDir(dir: string, opts: ClipTokenizerOptions = {}): Promise<ClipTokenizer> {
    const config = { ...(await configOptions(dir)), ...opts };
    if (existsSync(join(dir, 'tokenizer.json'))) return ClipTokenizer.fromTokenizerJson(await readFile(join(dir, 'tokenizer.json'), 'utf8'), config);
    if (!existsSync(join(dir, 'vocab.json')) || !existsSync(join(dir, 'merges.txt'))) {
      throw new TokenizerError('the tokenizer folder has no vocabulary (tokenizer.json, or vocab.json and merges.txt)');
    }
    const [vocab, merges] = await Promise.all([
      readFile(join(dir, 'vocab.json'), 'utf8'),
      readFile(join(dir, 'merges.txt'), 'utf8'),
    ]);
    return ClipTokenizer.fromStrings(vocab, merges, config);
  }

  private id(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new TokenizerError(`the CLIP vocabulary has no token ${JSON.stringify(token)}`);
    return id;
  }

  /** Token ids of the text, without bos/eos, untruncated. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(SPECIAL)) {
      this.encodeText(text.slice(last, m.index), ids);
      ids.push(this.id(m[0]));
      last = m.index! + m[0].length;
    }
    this.encodeText(text.slice(last), ids);
    return ids;
  }

  /** Exactly diffusers' tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids. */
  encodePadded(text: string): number[] {
    return this.wrap(this.encode(text).slice(0, this.maxLength - 2));
  }

  /**
   * Long prompts the A1111 way: consecutive chunks of (maxLength - 2) tokens, each wrapped in bos/eos and
   * padded to maxLength. A prompt that fits gives one chunk equal to encodePadded; an empty one gives one chunk.
   */
  encodeChunks(text: string): number[][] {
    const ids = this.encode(text);
    const size = this.maxLength - 2;
    const chunks: number[][] = [];
    for (let i = 0; i < ids.length || i === 0; i += size) chunks.push(this.wrap(ids.slice(i, i + size)));
    return chunks;
  }

  private wrap(body: number[]): number[] {
    const out = [this.bosId, ...body, this.eosId];
    while (out.length < this.maxLength) out.push(this.padId);
    return out;
  }

  private encodeText(text: string, out: number[]): void {
    if (text.length === 0) return;
    const normalized = lowercaseChars(text.normalize('NFC').replace(WHITESPACE, ' '));
    for (const m of normalized.matchAll(PIECES)) {
      let word = '';
      for (const b of this.encoder.encode(m[0])) word += this.bytes[b];
      out.push(...this.cachedBpe(word));
    }
  }

  /** bpe() through a least-recently-used cache bounded by cacheLimit (a Map keeps insertion order). */
  private cachedBpe(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) {
      this.cache.delete(word);
      this.cache.set(word, hit);
      return hit;
    }
    const ids = this.bpe(word);
    if (this.cacheLimit === 0) return ids;
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(word, ids);
    return ids;
  }

  private bpe(word: string): number[] {
    // Every byte character is a single UTF-16 unit; the last symbol carries the end-of-word suffix.
    const symbols = word.split('');
    symbols[symbols.length - 1] += '</w>';
    // every occurrence of the best pair merged left to right, as CLIP's reference bpe() does
    bpeMerge(symbols, this.ranks);
    return symbols.map((s) => this.vocab.get(s) ?? this.unkId ?? this.id(s));
  }
}

/** Lowercases one code point at a time, like the tokenizers Lowercase normalizer (no final-sigma rule). */
function lowercaseChars(s: string): string {
  let out = '';
  for (const ch of s) out += ch.toLowerCase();
  return out;
}

/** pad token and max length from a folder's tokenizer_config.json, when it has one. */
async function configOptions(dir: string): Promise<ClipTokenizerOptions> {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return {};
  const cfg = JSON.parse(await readFile(path, 'utf8'));
  const pad = typeof cfg.pad_token === 'string' ? cfg.pad_token : cfg.pad_token?.content;
  // transformers writes a huge sentinel when no length is set
  const max = typeof cfg.model_max_length === 'number' && cfg.model_max_length <= 4096 ? cfg.model_max_length : undefined;
  return { padToken: pad, maxLength: max };
}

/** True when the folder holds a vocabulary (tokenizer.json, or vocab.json and merges.txt). */
export function hasVocabulary(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json')) || (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt')));
}

/**
 * A pipeline's tokenizer: its folder's vocabulary (tokenizer.json, or vocab.json + merges.txt). Only when there
 * is none (no folder, as for single-file checkpoints, or a folder with only tokenizer_config.json) the bundled
 * clip-vit-large-patch14 vocabulary, with the folder's tokenizer_config.json if any, and its `source` says
 * "bundled". `vocabSize` is the text encoder's vocab_size: a tokenizer whose ids would not fit its embedding
 * (the cause of a Gather index error at run time), or a missing vocabulary where the bundled one is not that
 * size, throws TokenizerError. `padToken` overrides the folder's pad token (single-file SD 2.x models pad with "!");
 * a vocabulary without it throws.
 */
export async function loadClipTokenizer(dir?: string, opts: { vocabSize?: number; padToken?: string } = {}): Promise<ClipTokenizer> {
  let tok: ClipTokenizer;
  const pad = opts.padToken === undefined ? {} : { padToken: opts.padToken };
  if (dir && hasVocabulary(dir)) tok = await ClipTokenizer.fromDir(dir, pad);
  else {
    if (opts.vocabSize !== undefined && opts.vocabSize !== BUNDLED_VOCAB_SIZE) {
      throw new TokenizerError(`no tokenizer vocabulary (tokenizer.json, or vocab.json and merges.txt) for a text encoder with vocab_size ${opts.vocabSize}; the bundled CLIP vocabulary has ${BUNDLED_VOCAB_SIZE} tokens`);
    }
    tok = await ClipTokenizer.fromDir(DEFAULT_CLIP_TOKENIZER_DIR, { ...(dir ? await configOptions(dir) : {}), ...pad });
    tok.source = 'bundled';
  }
  if (opts.vocabSize !== undefined && tok.vocabSize > opts.vocabSize) {
    throw new TokenizerError(`the tokenizer (${tok.source}) has ${tok.vocabSize} tokens but the text encoder's vocab_size is ${opts.vocabSize}`);
  }
  return tok;
}

let defaultTokenizer: Promise<ClipTokenizer> | undefined;
/** The bundled openai/clip-vit-large-patch14 tokenizer (SD 1.x), loaded once. */
export function defaultClipTokenizer(): Promise<ClipTokenizer> {
  defaultTokenizer ??= ClipTokenizer.fromDir(DEFAULT_CLIP_TOKENIZER_DIR);
  return defaultTokenizer;
}
