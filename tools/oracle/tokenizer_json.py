"""A tokenizer as transformers 5 saves it: tokenizer.json + tokenizer_config.json only (no vocab.json / merges.txt).

Saves the tiny test vocabulary (assets/tokenizer/tiny-clip-1000, the one the tiny text encoders use, vocab_size
1000) with CLIPTokenizer.save_pretrained into tests/fixtures/weights/sd15-tiny-diffusers/tokenizer/ (run after
checkpoints.py, which writes that folder without tokenizer files), reloads it with AutoTokenizer from that folder
alone, and saves the ids it gives for varied prompts: tests/fixtures/tokenizer/tokenizer-json.{json,bin}.
"""
import os, shutil
import numpy as np
from transformers import AutoTokenizer, CLIPTokenizer
from common import ROOT, FIXTURES, save_fixture

TINY = os.path.join(ROOT, 'assets', 'tokenizer', 'tiny-clip-1000')
OUT = os.path.join(FIXTURES, 'weights', 'sd15-tiny-diffusers', 'tokenizer')

PROMPTS = ['a photo of a cat', '', 'A  Photo\tOF a CAT!!', "it's the cat's hat, isn't it?", 'résumé naïve café',
           '<|startoftext|>a<|endoftext|> b', 'x' * 40, 'the quick brown fox jumps over the lazy dog ' * 12, '日本語 テキスト 123']


def main():
    tok = CLIPTokenizer.from_pretrained(TINY, model_max_length=77)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    tok.save_pretrained(OUT)
    files = sorted(os.listdir(OUT))
    assert files == ['tokenizer.json', 'tokenizer_config.json'], files
    again = AutoTokenizer.from_pretrained(OUT)
    tensors = {}
    for i, p in enumerate(PROMPTS):
        tensors[f'padded.{i}'] = np.array(again(p, padding='max_length', max_length=77, truncation=True).input_ids, np.int32)
        tensors[f'full.{i}'] = np.array(again(p).input_ids, np.int32)
        assert again(p).input_ids == tok(p).input_ids, p
    save_fixture('tokenizer/tokenizer-json', tensors, {'prompts': PROMPTS, 'files': files, 'vocab_size': len(again)})


if __name__ == '__main__':
    main()
