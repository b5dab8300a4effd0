// The byte-level BPE core shared by CLIP's and GPT-2's tokenizers (openai's encoder.py and CLIP's
// simple_tokenizer.py, and the tokenizers library's BPE model, give the same merges): the reversible byte → printable
// character map, and merging a word's symbols by rank until no ranked pair is left.

/** GPT-2's bytes_to_unicode(): byte b → one printable character (a single UTF-16 unit), reversible. */
export function byteEncoder(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  return table;
}

/** The inverse of byteEncoder(): character code → byte. */
export function byteDecoder(): Map<string, number> {
  return new Map(byteEncoder().map((ch, b) => [ch, b]));
}

/**
 * Merges `symbols` in place by BPE: repeatedly the adjacent pair of lowest rank ("a b" → rank) is joined, every
 * occurrence left to right, until no adjacent pair has a rank. Returns the same array.
 */
export function bpeMerge(symbols: string[], ranks: Map<string, number>): string[] {
  while (symbols.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i < symbols.length - 1; i++) {
      const r = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    const a = symbols[best]!;
    const b = symbols[best + 1]!;
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (i < symbols.length - 1 && symbols[i] === a && symbols[i + 1] === b) {
        merged.push(a + b);
        i++;
      } else merged.push(symbols[i]!);
    }
    symbols.splice(0, symbols.length, ...merged);
  }
  return symbols;
}

/** A least-recently-used map bounded to `limit` entries (a Map keeps insertion order); limit 0 keeps nothing. */
export class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly limit: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The cached value of key, or compute() kept as the newest entry. */
  get(key: string, compute: () => V): V {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const v = compute();
    if (this.limit === 0) return v;
    if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, v);
    return v;
  }
}
