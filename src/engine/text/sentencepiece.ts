// A SentencePiece unigram model (the `.spm` / `.model` files of Marian, T5, ...), read and run by our own code:
// the ModelProto (sentencepiece_model.proto: pieces with scores and types, the normalizer spec with its precompiled
// character map), the normalizer (sentencepiece normalizer.cc: the charsmap's longest match, the dummy "▁" prefix,
// extra whitespace removed, spaces escaped as "▁") and the Viterbi segmentation of unigram_model.cc's
// EncodeOptimized (float32 scores, the same tie order, unknown characters at min score − 10, runs of unknown
// pieces merged as sentencepiece_processor.cc does). BPE, WORD and CHAR models and byte fallback are refused.
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  optional int32 model_type = 3;
  optional bool treat_whitespace_as_suffix = 24;
  optional bool byte_fallback = 35;
}
message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}
message ModelProto {
  message SentencePiece {
    optional string piece = 1;
    optional float score = 2;
    optional int32 type = 3 [default = 1];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;
const ModelProto = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('sentencepiece.ModelProto');

/** sentencepiece_model.proto SentencePiece.Type. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export const SPACE_SYMBOL = '\u2581';
/** kUnkPenalty of unigram_model.h: an unknown character scores the lowest piece score minus this. */
const UNK_PENALTY = 10;

export interface Piece {
  piece: string;
  score: number;
  type: number;
}

/** One piece of an encoding: its text (the normalized surface, "▁" for spaces) and its id in the model. */
export interface EncodedPiece {
  piece: string;
  id: number;
}

interface NormalizerSpec {
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  charsmap?: PrecompiledCharsmap;
}

/**
 * The normalizer's precompiled rules (sentencepiece normalizer.cc DecodePrecompiledCharsMap): a uint32 size, a
 * darts-clone double array over UTF-8 bytes whose values are offsets into a blob of NUL-terminated replacements.
 */
class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly normalized: Uint8Array;

  constructor(blob: Uint8Array) {
    if (blob.length <= 4) throw new Error('the normalizer\'s precompiled_charsmap is broken (too short)');
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize >= blob.length || trieSize % 4) throw new Error('the normalizer\'s precompiled_charsmap is broken (trie size)');
    this.units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + 4 * i, true);
    this.normalized = blob.subarray(4 + trieSize);
  }

  /** The longest rule matching a prefix of bytes[from..]: its length in bytes and replacement, or undefined. */
  longestMatch(bytes: Uint8Array, from: number): { length: number; replacement: Uint8Array } | undefined {
    // darts-clone commonPrefixSearch: unit fields has_leaf (bit 8), value (low 31 bits), label, offset
    const u = this.units;
    const offset = (unit: number): number => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let pos = offset(u[0]!);
    let best: { length: number; value: number } | undefined;
    for (let i = from; i < bytes.length; i++) {
      const c = bytes[i]!;
      pos ^= c;
      const unit = u[pos];
      if (unit === undefined || (unit & 0x800000ff) !== c) break;
      pos ^= offset(unit);
      if ((unit >>> 8) & 1) best = { length: i + 1 - from, value: u[pos]! & 0x7fffffff };
    }
    if (!best) return undefined;
    let end = best.value;
    while (end < this.normalized.length && this.normalized[end] !== 0) end++;
    return { length: best.length, replacement: this.normalized.subarray(best.value, end) };
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** Byte length of the UTF-8 character starting with byte b (sentencepiece string_util OneCharLen). */
function oneCharLen(b: number): number {
  return b < 0x80 ? 1 : b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

/** A valid UTF-8 character at bytes[i..]: its length, or 0 when malformed (normalizer.cc IsValidDecodeUTF8). */
function validCharLen(bytes: Uint8Array, i: number): number {
  const n = oneCharLen(bytes[i]!);
  if (bytes[i]! >= 0x80 && bytes[i]! < 0xc2) return 0;
  if (i + n > bytes.length) return 0;
  for (let k = 1; k < n; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return 0;
  const s = utf8Decoder.decode(bytes.subarray(i, i + n));
  return s.length > 0 && !s.includes('\ufffd') ? n : 0;
}

export class SentencePieceModel {
  readonly pieces: Piece[];
  private readonly normalizer: NormalizerSpec;
  /** NORMAL, USER_DEFINED and UNUSED pieces by text (the trie of unigram_model.cc); CONTROL / UNKNOWN apart. */
  private readonly index = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  private readonly userDefined: string[] = [];
  private readonly maxPieceChars: number;
  readonly unkId: number;
  private readonly minScore: number;
  private readonly maxScore: number;

  /**
   * Parses a serialized ModelProto. Throws for a model that is not a unigram model, uses byte fallback or
   * whitespace-as-suffix, or lacks an unknown piece.
   */
  constructor(proto: Uint8Array) {
    const m = ModelProto.toObject(ModelProto.decode(proto), { defaults: true, bytes: Array }) as {
      pieces: { piece: string; score: number; type: number }[];
      trainer_spec?: { model_type?: number; treat_whitespace_as_suffix?: boolean; byte_fallback?: boolean };
      normalizer_spec?: { precompiled_charsmap?: number[]; add_dummy_prefix?: boolean; remove_extra_whitespaces?: boolean; escape_whitespaces?: boolean };
    };
    const t = m.trainer_spec ?? {};
    if ((t.model_type || 1) !== 1) throw new Error(`SentencePiece model type ${t.model_type} is not supported (only unigram, type 1)`);
    if (t.byte_fallback) throw new Error('SentencePiece byte_fallback is not supported');
    if (t.treat_whitespace_as_suffix) throw new Error('SentencePiece treat_whitespace_as_suffix is not supported');
    this.pieces = m.pieces.map((p) => ({ piece: p.piece, score: Math.fround(p.score), type: p.type || PieceType.NORMAL }));
    const n = m.normalizer_spec ?? {};
    const charsmap = n.precompiled_charsmap && n.precompiled_charsmap.length ? new PrecompiledCharsmap(Uint8Array.from(n.precompiled_charsmap)) : undefined;
    this.normalizer = {
      addDummyPrefix: n.add_dummy_prefix ?? true, removeExtraWhitespaces: n.remove_extra_whitespaces ?? true,
      escapeWhitespaces: n.escape_whitespaces ?? true, charsmap,
    };
    let unk = -1, min = Infinity, max = -Infinity, maxChars = 0;
    for (const [i, p] of this.pieces.entries()) {
      if (!p.piece) throw new Error(`SentencePiece piece ${i} is empty`);
      const normal = p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED;
      const map = normal ? this.index : this.reserved;
      if (map.has(p.piece)) throw new Error(`SentencePiece piece "${p.piece}" is defined twice`);
      map.set(p.piece, i);
      if (normal) maxChars = Math.max(maxChars, [...p.piece].length);
      if (p.type === PieceType.USER_DEFINED) this.userDefined.push(p.piece);
      if (p.type === PieceType.UNKNOWN) unk = i;
      if (p.type === PieceType.NORMAL) {
        min = Math.min(min, p.score);
        max = Math.max(max, p.score);
      }
    }
    if (unk < 0) throw new Error('SentencePiece model has no unknown piece');
    this.unkId = unk;
    this.minScore = min;
    // unigram_model.cc starts max_score_ at FLT_MIN (the smallest positive float), not at -FLT_MAX
    this.maxScore = Math.max(max, 1.17549435e-38);
    this.maxPieceChars = maxChars;
    this.userDefined.sort((a, b) => b.length - a.length);
  }

  /** The id of a piece (any type), or undefined. */
  pieceToId(piece: string): number | undefined {
    return this.index.get(piece) ?? this.reserved.get(piece);
  }

  /**
   * sentencepiece's Normalizer::Normalize: the charsmap's rules, user-defined symbols kept as they are, leading,
   * trailing and repeated spaces removed, a "▁" prefix, spaces as "▁" (with the spec's defaults).
   */
  normalize(text: string): string {
    const spec = this.normalizer;
    const bytes = utf8.encode(text);
    const prefix = (i: number): { out: Uint8Array; length: number } => {
      for (const u of this.userDefined) {
        const ub = utf8.encode(u);
        if (ub.length <= bytes.length - i && ub.every((b, k) => bytes[i + k] === b)) return { out: ub, length: ub.length };
      }
      const m = spec.charsmap?.longestMatch(bytes, i);
      if (m) return { out: m.replacement, length: m.length };
      const n = validCharLen(bytes, i);
      return n ? { out: bytes.subarray(i, i + n), length: n } : { out: utf8.encode('\ufffd'), length: 1 };
    };
    let i = 0;
    if (spec.removeExtraWhitespaces) {
      while (i < bytes.length) {
        const p = prefix(i);
        if (!(p.out.length === 1 && p.out[0] === 0x20)) break;
        i += p.length;
      }
    }
    if (i >= bytes.length) return '';
    const space = spec.escapeWhitespaces ? SPACE_SYMBOL : ' ';
    let out = spec.addDummyPrefix ? space : '';
    let prevSpace = spec.removeExtraWhitespaces;
    while (i < bytes.length) {
      const p = prefix(i);
      let s = utf8Decoder.decode(p.out);
      if (prevSpace) s = s.replace(/^ +/, '');
      if (s) {
        out += spec.escapeWhitespaces ? s.replaceAll(' ', SPACE_SYMBOL) : s;
        prevSpace = s.endsWith(' ');
      }
      i += p.length;
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    if (spec.removeExtraWhitespaces) while (out.endsWith(space)) out = out.slice(0, -space.length);
    return out;
  }

  /**
   * SentencePieceProcessor::Encode of a unigram model: the best-scoring segmentation of the normalized text
   * (unigram_model.cc EncodeOptimized, scores summed in float32, ties to the earliest start), consecutive unknown
   * pieces merged into one. Returns the pieces as sentencepiece's `out_type=str` gives them, with their ids.
   */
  encode(text: string): EncodedPiece[] {
    const normalized = this.normalize(text);
    if (!normalized) return [];
    const chars = [...normalized];
    const n = chars.length;
    const f = Math.fround;
    const unkScore = f(this.minScore - UNK_PENALTY);
    const best: { id: number; score: number; start: number }[] = Array.from({ length: n + 1 }, () => ({ id: -1, score: 0, start: -1 }));
    for (let start = 0; start < n; start++) {
      const here = best[start]!.score;
      let hasSingle = false;
      let piece = '';
      for (let end = start + 1; end <= Math.min(n, start + this.maxPieceChars); end++) {
        piece += chars[end - 1]!;
        const id = this.index.get(piece);
        if (id === undefined) continue;
        const p = this.pieces[id]!;
        if (p.type === PieceType.UNUSED) continue;
        const score = p.type === PieceType.USER_DEFINED ? f(f(utf8.encode(piece).length * this.maxScore) - 0.1) : p.score;
        const candidate = f(score + here);
        const target = best[end]!;
        if (target.start === -1 || candidate > target.score) Object.assign(target, { id, score: candidate, start });
        if (end === start + 1) hasSingle = true;
      }
      if (!hasSingle) {
        const target = best[start + 1]!;
        const candidate = f(unkScore + here);
        if (target.start === -1 || candidate > target.score) Object.assign(target, { id: this.unkId, score: candidate, start });
      }
    }
    const path: EncodedPiece[] = [];
    for (let end = n; end > 0; end = best[end]!.start) path.push({ piece: chars.slice(best[end]!.start, end).join(''), id: best[end]!.id });
    path.reverse();
    const merged: EncodedPiece[] = [];
    for (const p of path) {
      const last = merged[merged.length - 1];
      if (last && last.id === this.unkId && p.id === this.unkId) last.piece += p.piece;
      else merged.push({ ...p });
    }
    return merged;
  }

  /**
   * SentencePieceProcessor::DecodePieces: the pieces' text joined, "▁" as spaces, the first piece's leading space
   * dropped (the dummy prefix); control pieces give nothing.
   */
  decodePieces(pieces: string[]): string {
    let out = '';
    for (const [i, p] of pieces.entries()) {
      const id = this.pieceToId(p);
      if (id !== undefined && this.pieces[id]!.type === PieceType.CONTROL) continue;
      let s = p.replaceAll(SPACE_SYMBOL, ' ');
      if (i === 0 && this.normalizer.addDummyPrefix && s.startsWith(' ')) s = s.slice(1);
      out += s;
    }
    return out;
  }
}
