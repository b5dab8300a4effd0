// GPT-2's byte-level BPE tokenizer, giving the ids of transformers' GPT2Tokenizer (5.x, tokenizers backend): no
// normalization (case and spacing kept), GPT-2's split regex (a leading space stays with the word), the byte →
// printable-character map, BPE without an end-of-word suffix, no bos/eos added. Added tokens (<|endoftext|>) are
// matched verbatim before splitting. Decoding maps the characters back to bytes and reads them as UTF-8 (invalid
// sequences become U+FFFD, transformers' errors="replace").
// A tokenizer comes from tokenizer.json (BPE with a ByteLevel pre-tokenizer) or from vocab.json + merges.txt.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoundedCache, bpeMerge, byteDecoder, byteEncoder } from './byte-bpe.ts';
import { TokenizerError, WORD_CACHE_LIMIT } from './clip-tokenizer.ts';

/**
 * openai's GPT-2 pattern (and the tokenizers ByteLevel pre-tokenizer's), with \s as Unicode White_Space as the
 * Rust side reads it (JS \s lacks U+0085 and adds U+FEFF).
 */
const PIECES = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

export const GPT2_EOS = '<|endoftext|>';

export class Gpt2Tokenizer {
  /** The end-of-text token's id (generation stops there). */
  readonly eosId: number;
  private readonly vocab: Map<string, number>;
  private readonly tokens: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly added: string[];
  private readonly addedPattern: RegExp | undefined;
  private readonly bytes = byteEncoder();
  private readonly unbytes = byteDecoder();
  private readonly cache = new BoundedCache<number[]>(WORD_CACHE_LIMIT);
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  /**
   * @param vocab token → id (the added tokens included)
   * @param merges "a b" pairs, best first
   * @param added tokens matched verbatim before splitting (special tokens)
   * @param eos the end-of-text token (must be in vocab)
   */
  constructor(vocab: Record<string, number>, merges: string[], added: string[] = [GPT2_EOS], eos = GPT2_EOS) {
    this.vocab = new Map(Object.entries(vocab));
    for (const [t, id] of this.vocab) this.tokens[id] = t;
    merges.forEach((m, i) => this.ranks.set(m, i));
    this.added = added.filter((t) => this.vocab.has(t)).sort((a, b) => b.length - a.length);
    this.addedPattern = this.added.length ? new RegExp(this.added.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined;
    const e = this.vocab.get(eos);
    if (e === undefined) throw new TokenizerError(`the GPT-2 vocabulary has no end-of-text token ${JSON.stringify(eos)}`);
    this.eosId = e;
  }

  /** One more than the largest id (the model's embedding needs at least this many rows). */
  get vocabSize(): number {
    return this.tokens.length;
  }

  /**
   * The tokenizers library's tokenizer.json: a BPE model without end-of-word suffix behind a ByteLevel
   * pre-tokenizer; its added tokens are matched verbatim. Throws TokenizerError for any other tokenizer.
   */
  static fromTokenizerJson(json: string, eos = GPT2_EOS): Gpt2Tokenizer {
    let t: { model?: Record<string, any>; added_tokens?: { id: number; content: string }[]; pre_tokenizer?: unknown; normalizer?: unknown };
    try {
      t = JSON.parse(json);
    } catch (e) {
      throw new TokenizerError(`tokenizer.json is not valid JSON (${(e as Error).message})`);
    }
    const m = t.model;
    if (!m || m.type !== 'BPE' || m.end_of_word_suffix || typeof m.vocab !== 'object' || !Array.isArray(m.merges)) {
      throw new TokenizerError(`tokenizer.json holds a ${m?.type ?? 'unknown'} tokenizer, not GPT-2's byte-level BPE`);
    }
    if (!JSON.stringify(t.pre_tokenizer ?? null).includes('"ByteLevel"')) throw new TokenizerError('tokenizer.json has no ByteLevel pre-tokenizer: not a GPT-2 tokenizer');
    if (t.normalizer) throw new TokenizerError('tokenizer.json normalizes its input: not a GPT-2 tokenizer');
    const vocab: Record<string, number> = { ...(m.vocab as Record<string, number>) };
    for (const a of t.added_tokens ?? []) vocab[a.content] = a.id;
    const merges = (m.merges as (string | [string, string])[]).map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : x));
    return new Gpt2Tokenizer(vocab, merges, (t.added_tokens ?? []).map((a) => a.content), eos);
  }

  /** vocab.json and merges.txt texts (the original GPT-2 files; a "#version" first line is skipped). */
  static fromStrings(vocabJson: string, mergesTxt: string, eos = GPT2_EOS): Gpt2Tokenizer {
    const merges = mergesTxt.split(/\r?\n/).filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')));
    return new Gpt2Tokenizer(JSON.parse(vocabJson), merges, [eos], eos);
  }

  /**
   * A model folder's tokenizer: tokenizer.json (preferred, as transformers' fast tokenizer) or vocab.json +
   * merges.txt; the end-of-text token from tokenizer_config.json (eos_token) when it names one. Throws
   * TokenizerError when the folder has neither (naming the files it looked for).
   */
  static async fromDir(dir: string): Promise<Gpt2Tokenizer> {
    let eos = GPT2_EOS;
    if (existsSync(join(dir, 'tokenizer_config.json'))) {
      const cfg = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
      const e = typeof cfg.eos_token === 'string' ? cfg.eos_token : cfg.eos_token?.content;
      if (typeof e === 'string') eos = e;
    }
    if (existsSync(join(dir, 'tokenizer.json'))) return Gpt2Tokenizer.fromTokenizerJson(await readFile(join(dir, 'tokenizer.json'), 'utf8'), eos);
    if (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) {
      return Gpt2Tokenizer.fromStrings(await readFile(join(dir, 'vocab.json'), 'utf8'), await readFile(join(dir, 'merges.txt'), 'utf8'), eos);
    }
    throw new TokenizerError('no tokenizer vocabulary (tokenizer.json, or vocab.json and merges.txt)');
  }

  /** transformers' tokenizer(text).input_ids: no bos/eos added, no truncation. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let last = 0;
    if (this.addedPattern) {
      for (const m of text.matchAll(this.addedPattern)) {
        this.encodeText(text.slice(last, m.index), ids);
        ids.push(this.vocab.get(m[0])!);
        last = m.index! + m[0].length;
      }
    }
    this.encodeText(text.slice(last), ids);
    return ids;
  }

  /** The text of ids (tokenizer.decode): the tokens' bytes as UTF-8. Throws RangeError for an unknown id. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const t = this.tokens[id];
      if (t === undefined) throw new RangeError(`token id ${id} is not in the vocabulary`);
      if (this.added.includes(t)) {
        bytes.push(...this.encoder.encode(t));
        continue;
      }
      for (const ch of t) {
        const b = this.unbytes.get(ch);
        if (b === undefined) throw new RangeError(`token ${JSON.stringify(t)} has a character outside the byte map`);
        bytes.push(b);
      }
    }
    return this.decoder.decode(Uint8Array.from(bytes));
  }

  private encodeText(text: string, out: number[]): void {
    if (text.length === 0) return;
    for (const m of text.matchAll(PIECES)) {
      let word = '';
      for (const b of this.encoder.encode(m[0])) word += this.bytes[b];
      out.push(...this.cache.get(word, () => this.bpe(word)));
    }
  }

  private bpe(word: string): number[] {
    return bpeMerge(word.split(''), this.ranks).map((s) => {
      const id = this.vocab.get(s);
      if (id === undefined) throw new TokenizerError(`the GPT-2 vocabulary has no token ${JSON.stringify(s)} (an incomplete byte alphabet)`);
      return id;
    });
  }
}
