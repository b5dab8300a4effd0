"""A CLIP-format tokenizer (vocab.json + merges.txt) with a small vocabulary: every byte-level character, alone and
with "</w>", the dataset's words as whole tokens, and the two special tokens. Any prompt tokenizes (unknown words
fall back to characters) with the ordinary CLIP BPE of transformers' CLIPTokenizer and our clip-tokenizer.ts.

The merges are found greedily: for each word, run the BPE with the merges so far and, while the word is more than
one token, add the merge of its first two tokens (so a word's merges never break another word's).
"""
import json
import os

from dataset import WORDS


def bytes_to_unicode() -> list[str]:
    """GPT-2's reversible byte -> printable character map (as in CLIP's simple_tokenizer), in CLIP's vocab order."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    parts = list(word[:-1]) + [word[-1] + '</w>']
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, _ = min(pairs)
        if rank == 1 << 30:
            break
        a, b = next((parts[i], parts[i + 1]) for r, i in pairs if r == rank)
        out, i = [], 0
        while i < len(parts):
            if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


def build() -> tuple[dict[str, int], list[tuple[str, str]]]:
    chars = bytes_to_unicode()
    vocab = chars + [c + '</w>' for c in chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in WORDS:
        while len(parts := bpe(word, ranks)) > 1:
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab.append(pair[0] + pair[1])
    vocab += ['<|startoftext|>', '<|endoftext|>']
    return {t: i for i, t in enumerate(vocab)}, merges


def save(directory: str) -> None:
    """Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json (SD 1.x settings)."""
    os.makedirs(directory, exist_ok=True)
    vocab, merges = build()
    with open(os.path.join(directory, 'vocab.json'), 'w') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(directory, 'merges.txt'), 'w') as f:
        f.write('#version: 0.2\n' + ''.join(f'{a} {b}\n' for a, b in merges))
    special = {'bos_token': '<|startoftext|>', 'eos_token': '<|endoftext|>', 'unk_token': '<|endoftext|>',
               'pad_token': '<|endoftext|>'}
    with open(os.path.join(directory, 'special_tokens_map.json'), 'w') as f:
        json.dump(special, f, indent=2)
    with open(os.path.join(directory, 'tokenizer_config.json'), 'w') as f:
        json.dump({'tokenizer_class': 'CLIPTokenizer', 'model_max_length': 77, 'do_lower_case': True, **special}, f, indent=2)


if __name__ == '__main__':
    import sys, tempfile
    from transformers import CLIPTokenizer
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    save(d)
    tok = CLIPTokenizer.from_pretrained(d)
    vocab, merges = build()
    print(len(vocab), 'tokens,', len(merges), 'merges')
    for p in ['a red circle on a blue background', 'A Purple STAR on a white background!', 'a zebra, 3 cats',
              '', 'über café ☃']:
        ids = tok(p).input_ids
        print(repr(p), ids, tok.convert_ids_to_tokens(ids))
