// transformers' MarianTokenizer (5.x): the source SentencePiece model segments the text, vocab.json maps each
// piece to the model's id (a piece it lacks is <unk>), a leading ">>xx<<" language code is kept as one token, and
// </s> ends the input. Decoding maps ids back through vocab.json, leaves out the special tokens
// (skip_special_tokens=True) and joins the pieces ("▁" → space, trimmed), as convert_tokens_to_string does.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SentencePieceModel, SPACE_SYMBOL } from './sentencepiece.ts';

interface AddedTokenJson {
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
}

interface TokenizerConfigJson {
  added_tokens_decoder?: Record<string, AddedTokenJson>;
  unk_token?: string | { content: string };
  eos_token?: string | { content: string };
  pad_token?: string | { content: string };
  additional_special_tokens?: (string | { content: string })[];
  separate_vocabs?: boolean;
  clean_up_tokenization_spaces?: boolean;
  [k: string]: unknown;
}

const tokenText = (t: string | { content: string } | undefined, fallback: string): string => (t === undefined ? fallback : typeof t === 'string' ? t : t.content);

/** The files a Marian tokenizer folder holds (the opus-mt layout). */
export const MARIAN_TOKENIZER_FILES = ['source.spm', 'target.spm', 'vocab.json'] as const;

export class MarianTokenizer {
  private readonly idToToken: Map<number, string>;
  readonly unkId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly specialIds: Set<number>;
  /** Tokens matched verbatim in the text before SentencePiece (transformers' added tokens), longest first. */
  private readonly added: { content: string; id: number; lstrip: boolean; rstrip: boolean }[];

  constructor(readonly source: SentencePieceModel, readonly target: SentencePieceModel, private readonly vocab: Map<string, number>, config: TokenizerConfigJson = {}) {
    const id = (name: string, token: string): number => {
      const v = vocab.get(token);
      if (v === undefined) throw new Error(`vocab.json has no ${name} token "${token}"`);
      return v;
    };
    this.unkId = id('unk', tokenText(config.unk_token, '<unk>'));
    this.eosId = id('eos', tokenText(config.eos_token, '</s>'));
    this.padId = id('pad', tokenText(config.pad_token, '<pad>'));
    this.idToToken = new Map([...vocab].map(([k, v]) => [v, k]));
    this.specialIds = new Set([this.unkId, this.eosId, this.padId]);
    for (const t of config.additional_special_tokens ?? []) {
      const v = vocab.get(tokenText(t, ''));
      if (v !== undefined) this.specialIds.add(v);
    }
    const added = new Map<string, { content: string; id: number; lstrip: boolean; rstrip: boolean }>();
    for (const [id, t] of Object.entries(config.added_tokens_decoder ?? {})) added.set(t.content, { content: t.content, id: Number(id), lstrip: t.lstrip === true, rstrip: t.rstrip === true });
    for (const id of this.specialIds) {
      const content = this.idToToken.get(id)!;
      if (!added.has(content)) added.set(content, { content, id, lstrip: false, rstrip: false });
    }
    this.added = [...added.values()].sort((a, b) => b.content.length - a.content.length);
  }

  /**
   * Reads source.spm, target.spm, vocab.json and (optional) tokenizer_config.json from a folder. Throws naming
   * the missing file, or for a folder with separate source and target vocabularies (not supported).
   */
  static async load(dir: string): Promise<MarianTokenizer> {
    for (const f of MARIAN_TOKENIZER_FILES) if (!existsSync(join(dir, f))) throw new Error(`the translator has no ${f}`);
    const config: TokenizerConfigJson = existsSync(join(dir, 'tokenizer_config.json')) ? JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) : {};
    if (config.separate_vocabs) throw new Error('a translator with separate source and target vocabularies (separate_vocabs) is not supported');
    const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    return new MarianTokenizer(new SentencePieceModel(await readFile(join(dir, 'source.spm'))), new SentencePieceModel(await readFile(join(dir, 'target.spm'))),
      new Map(Object.entries(vocab)), config);
  }

  /**
   * PreTrainedTokenizer.tokenize: added tokens (</s>, <unk>, <pad>, …) written in the text are split out verbatim
   * (leftmost, longest first; their lstrip / rstrip flags trim the text beside them), then each piece of text as
   * MarianTokenizer._tokenize: a leading ">>xx<<" code as it is, then the source model's pieces.
   */
  tokenize(text: string): string[] {
    const parts: { text: string; added?: boolean }[] = [];
    let rest = text;
    for (;;) {
      let at = -1, hit: (typeof this.added)[number] | undefined;
      for (const a of this.added) {
        const i = rest.indexOf(a.content);
        if (i !== -1 && (at === -1 || i < at)) { at = i; hit = a; }
      }
      if (!hit) break;
      parts.push({ text: rest.slice(0, at) }, { text: hit.content, added: true });
      rest = rest.slice(at + hit.content.length);
    }
    parts.push({ text: rest });
    for (const [i, p] of parts.entries()) {
      if (!p.added) continue;
      const a = this.added.find((x) => x.content === p.text)!;
      if (a.rstrip && parts[i + 1]) parts[i + 1]!.text = parts[i + 1]!.text.trimStart();
      if (a.lstrip && parts[i - 1]) parts[i - 1]!.text = parts[i - 1]!.text.trimEnd();
    }
    return parts.flatMap((p) => (p.added ? [p.text] : p.text ? this.tokenizeText(p.text) : []));
  }

  /** MarianTokenizer._tokenize of text without added tokens. */
  private tokenizeText(text: string): string[] {
    const code: string[] = [];
    const end = text.startsWith('>>') ? text.indexOf('<<') : -1;
    if (end !== -1) {
      code.push(text.slice(0, end + 2));
      text = text.slice(end + 2);
    }
    return [...code, ...this.source.encode(text).map((p) => p.piece)];
  }

  /** input_ids of MarianTokenizer(text): each piece's vocab.json id (<unk> when absent), then </s>. */
  encode(text: string): number[] {
    return [...this.tokenize(text).map((p) => this.vocab.get(p) ?? this.added.find((a) => a.content === p)?.id ?? this.unkId), this.eosId];
  }

  /** MarianTokenizer.decode(ids, skip_special_tokens=True). */
  decode(ids: number[]): string {
    const pieces: string[] = [];
    for (const id of ids) {
      if (this.specialIds.has(id)) continue;
      // transformers 5 falls back to the source model's piece for an id vocab.json lacks
      pieces.push(this.idToToken.get(id) ?? this.source.pieces[id]?.piece ?? '<unk>');
    }
    return this.source.decodePieces(pieces).replaceAll(SPACE_SYMBOL, ' ').trim();
  }
}
