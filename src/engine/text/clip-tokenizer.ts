// CLIP byte-level BPE tokenizer giving the same ids as transformers' CLIPTokenizer (5.x, tokenizers backend):
// NFC, whitespace runs → one space, per-character lowercase, CLIP's split regex, GPT-2 byte→unicode mapping,
// BPE with the "</w>" end-of-word suffix. The special tokens are matched verbatim before normalization.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

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
}

/**
 * The BPE word cache's default bound. A server sees unbounded distinct words (random strings, other
 * languages), so the cache must not grow with them: 200 long prompts of random words once left 570,688
 * entries (+82 MB). 8192 words covers the vocabulary of ordinary prompts many times over.
 */
export const WORD_CACHE_LIMIT = 8192;

/** GPT-2's reversible map from bytes to printable characters. */
function byteEncoder(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  return table;
}

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
  private readonly encoder = new TextEncoder();

  constructor(vocab: Record<string, number>, merges: string[], opts: ClipTokenizerOptions = {}) {
    this.vocab = new Map(Object.entries(vocab));
    merges.forEach((m, i) => this.ranks.set(m, i));
    this.bosId = this.id(BOS);
    this.eosId = this.id(EOS);
    this.padId = this.id(opts.padToken ?? EOS);
    this.maxLength = opts.maxLength ?? CLIP_MAX_LENGTH;
    this.cacheLimit = Math.max(0, opts.wordCacheLimit ?? WORD_CACHE_LIMIT);
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

  /** A tokenizer folder (vocab.json, merges.txt, optional tokenizer_config.json for pad token and max length). */
  static async fromDir(dir: string, opts: ClipTokenizerOptions = {}): Promise<ClipTokenizer> {
    const [vocab, merges] = await Promise.all([
      readFile(join(dir, 'vocab.json'), 'utf8'),
      readFile(join(dir, 'merges.txt'), 'utf8'),
    ]);
    return ClipTokenizer.fromStrings(vocab, merges, { ...(await configOptions(dir)), ...opts });
  }

  private id(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`CLIP vocabulary has no token ${JSON.stringify(token)}`);
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
    while (symbols.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < symbols.length - 1; i++) {
        const r = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = symbols[best]!;
      const b = symbols[best + 1]!;
      // Merge every occurrence of the pair, left to right, as CLIP's reference bpe() does.
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === a && symbols[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(symbols[i]!);
      }
      symbols.splice(0, symbols.length, ...merged);
    }
    return symbols.map((s) => this.id(s));
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

/**
 * A pipeline's tokenizer folder; when it holds no vocabulary (or there is no folder, as for single-file
 * checkpoints) the bundled clip-vit-large-patch14 one, with the folder's tokenizer_config.json if any.
 */
export async function loadClipTokenizer(dir?: string): Promise<ClipTokenizer> {
  if (dir && existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) return ClipTokenizer.fromDir(dir);
  return ClipTokenizer.fromDir(DEFAULT_CLIP_TOKENIZER_DIR, dir ? await configOptions(dir) : {});
}

let defaultTokenizer: Promise<ClipTokenizer> | undefined;
/** The bundled openai/clip-vit-large-patch14 tokenizer (SD 1.x), loaded once. */
export function defaultClipTokenizer(): Promise<ClipTokenizer> {
  defaultTokenizer ??= ClipTokenizer.fromDir(DEFAULT_CLIP_TOKENIZER_DIR);
  return defaultTokenizer;
}
