"""CLIP tokenizer assets and fixture.

Builds vocab.json + merges.txt from open_clip's bpe_simple_vocab_16e6.txt.gz exactly as CLIP's SimpleTokenizer
builds its vocabulary (this is what openai/clip-vit-large-patch14 ships: 49408 tokens), checks that transformers'
CLIPTokenizer loads them, writes them to assets/tokenizer/clip-vit-large-patch14/, and saves the ids transformers
gives for varied prompts (tests/fixtures/tokenizer/clip.{json,bin}).
"""
import gzip, importlib.util, json, os
import numpy as np
from transformers import CLIPTokenizer
from common import ROOT, save_fixture

ASSET = os.path.join(ROOT, 'assets', 'tokenizer', 'clip-vit-large-patch14')


def bytes_to_unicode():
    # CLIP / GPT-2: printable bytes map to themselves, the rest to code points from 256 up.
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_vocab():
    # Located without importing open_clip (its import pulls torchvision, which the oracle does not need).
    pkg = os.path.dirname(importlib.util.find_spec('open_clip').origin)
    path = os.path.join(pkg, 'bpe_simple_vocab_16e6.txt.gz')
    lines = gzip.open(path).read().decode('utf-8').split('\n')
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + '</w>' for v in vocab]
    vocab += [''.join(m) for m in merges]
    vocab += ['<|startoftext|>', '<|endoftext|>']
    return {tok: i for i, tok in enumerate(vocab)}, merges


def main():
    vocab, merges = build_vocab()
    assert len(vocab) == 49408, len(vocab)
    os.makedirs(ASSET, exist_ok=True)
    with open(os.path.join(ASSET, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(ASSET, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n')
        f.write('\n'.join(' '.join(m) for m in merges) + '\n')

    tok = CLIPTokenizer.from_pretrained(ASSET, model_max_length=77)
    assert len(tok) == 49408
    assert tok.bos_token_id == 49406 and tok.eos_token_id == 49407 and tok.pad_token_id == 49407
    # Known ids of the real CLIP vocabulary.
    assert tok('a photo of a cat').input_ids == [49406, 320, 1125, 539, 320, 2368, 49407], tok('a photo of a cat').input_ids

    long = ', '.join(['a highly detailed portrait of an astronaut riding a horse on mars'] * 8)
    prompts = [
        '', ' ', 'a photo of a cat', 'A Photo Of A CAT', '  many   spaces\t\ttabs\nnewlines  ',
        'masterpiece, best quality, (1girl:1.2), [blurry], ((red hair)), {curly}',
        '(word:1.2) (another word:0.8) <lora:foo:0.7>', 'numbers 12345 3.14159 1,000,000 2024-01-01',
        "it's don't we're they've I'm you'll he'd IT'S", 'café naïve résumé façade Ångström Øre',
        '日本語のプロンプト 猫の写真', '中文提示词，一只猫。', '한국어 고양이 사진', 'Привет мир! ЁЖИК',
        'ΟΔΟΣ Σίσυφος ΣΣ', 'emoji 🐱🚀👩‍👩‍👧 ❤️ 🇫🇷', 'punctuation!!! ??? ... --- *** ### @@@ $$$ %%% ^^^',
        'quotes "double" \'single\' `back` «guillemets» “curly”', 'e\u0301 composed vs é precomposed',
        'nbsp\u00a0here and ideographic\u3000space and zw\u200bjoin', 'tab\tand\rcarriage\r\nreturn',
        'URL https://example.com/path?x=1&y=2#frag', 'email someone@example.org', 'C++ & C# || a<b>c',
        'under_score snake_case CamelCase kebab-case', 'ﬁ ligature and ２ fullwidth ＡＢＣ', 'İstanbul ß straße',
        'math ∑∫√∞ ≤ ≥ ± × ÷', 'mixed العربية עברית हिन्दी ไทย', 'a' * 100, 'supercalifragilisticexpialidocious',
        '<|startoftext|>literal special<|endoftext|> tokens', long, long + ' ' + long, '\u0085nel and \u2028ls', '\ufeffbom \u180emongolian \u200d zwj \u00adsoft',
    ]
    tensors, full_lengths = {}, []
    for i, p in enumerate(prompts):
        padded = tok(p, padding='max_length', max_length=77, truncation=True).input_ids
        full = tok(p, truncation=False).input_ids
        tensors[f'padded.{i}'] = np.array(padded, dtype=np.int32)
        tensors[f'full.{i}'] = np.array(full, dtype=np.int32)
        full_lengths.append(len(full))
    assert max(full_lengths) > 154, full_lengths
    save_fixture('tokenizer/clip', tensors, {'prompts': prompts, 'tokenizer': 'transformers CLIPTokenizer 5.23.0'})
    print('vocab', len(vocab), 'merges', len(merges), 'prompts', len(prompts), 'longest', max(full_lengths))


if __name__ == '__main__':
    main()
