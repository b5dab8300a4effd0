"""Prompt weighting reference: diffusers' community long-prompt-weighting pipeline on the tiny text encoder.

The reference functions are those of diffusers' examples/community/lpw_stable_diffusion.py (parse_prompt_attention,
get_prompts_with_weights, pad_tokens_and_weights, get_unweighted_text_embeddings, get_weighted_text_embeddings).
That file is not part of the diffusers wheel, so it is loaded from a diffusers source checkout at run time
(never copied here):

    git -C <diffusers checkout> show <commit>:examples/community/lpw_stable_diffusion.py > /tmp/lpw_stable_diffusion.py
    LPW_SOURCE=/tmp/lpw_stable_diffusion.py tools/oracle/run.sh prompt_weighting.py

The fixture was made with diffusers commit 58eb52c080 (main, 2026-11). lpw has no BREAK; for the BREAK cases the
prompt is split at its top-level BREAK words and each part but the last is padded with the end token to a whole
number of 75-token chunks (A1111's rule, modules/sd_hijack_clip.py: BREAK closes the current chunk), and then lpw's
own padding, chunked encoding and mean-restoring weighting run unchanged.

Writes tests/fixtures/text/prompt-weighting.{json,bin}: for each case the weighted prompt and negative embeddings
[chunks * 77, 32] as lpw returns them (max_embeddings_multiples=3, no_boseos_middle=False: its pipeline defaults).
"""
import importlib.util, os, re
from types import SimpleNamespace
import torch
from transformers import CLIPTextModel, CLIPTokenizer
from common import ROOT, FIXTURES, save_fixture

TINY_TEXT = os.path.join(FIXTURES, 'tiny', 'sd15', 'text_encoder')
TINY_TOKENIZER = os.path.join(ROOT, 'assets', 'tokenizer', 'tiny-clip-1000')

CASES = [
    ['a (cat:1.3) on a ((red)) [mat]', ''],
    ['a plain prompt with no syntax at all', 'blurry, low quality'],
    ['a \\(literal\\) [word] and \\\\ a backslash (unbalanced', '(ugly:1.5), [[bad]] hands'],
    ['a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).', '((out of frame)), ((extra fingers)), (((mutation)))'],
    [', '.join(['(a red (brick:1.2) house:1.1)'] * 12) + ', [[night]]', 'a (watermark:1.4)'],  # over 75 tokens
    ['a cat on a sofa BREAK (a dog:1.2) in the garden', 'BREAK (blurry:1.3)'],
    ['(masterpiece:1.2) ' + 'tree ' * 45 + 'BREAK a (lake:0.8)', ''],  # over one chunk before BREAK
]


def load_lpw():
    path = os.environ.get('LPW_SOURCE')
    if not path or not os.path.exists(path):
        raise SystemExit('set LPW_SOURCE to diffusers examples/community/lpw_stable_diffusion.py (see this file\'s header)')
    spec = importlib.util.spec_from_file_location('lpw_stable_diffusion', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def with_break(lpw, pipe, prompt, uncond, multiples=3):
    """get_weighted_text_embeddings with A1111's BREAK (top-level only), lpw's functions for everything else."""
    chunk = pipe.tokenizer.model_max_length - 2

    def tokens_and_weights(text):
        toks, ws = [], []
        parts = re.split(r'\s*\bBREAK\b\s*', text)
        for i, part in enumerate(parts):
            t, w = lpw.get_prompts_with_weights(pipe, [part], 10_000)
            t, w = t[0], w[0]
            if i < len(parts) - 1:  # closed by BREAK: pad to whole chunks (an empty part is one padding chunk)
                pad = chunk if len(t) == 0 else (-len(t)) % chunk
                t, w = t + [pipe.tokenizer.eos_token_id] * pad, w + [1.0] * pad
            toks += t
            ws += w
        return toks, ws

    pt, pw = tokens_and_weights(prompt)
    ut, uw = tokens_and_weights(uncond)
    n = max(1, min(multiples, (max(len(pt), len(ut)) - 1) // chunk + 1))
    max_length = chunk * n + 2
    bos, eos = pipe.tokenizer.bos_token_id, pipe.tokenizer.eos_token_id
    pad = getattr(pipe.tokenizer, 'pad_token_id', eos)
    out = []
    for t, w in ((pt, pw), (ut, uw)):
        [t], [w] = lpw.pad_tokens_and_weights([t], [w], max_length, bos, eos, pad, no_boseos_middle=False, chunk_length=chunk + 2)
        emb = lpw.get_unweighted_text_embeddings(pipe, torch.tensor([t]), chunk + 2, no_boseos_middle=False)
        w = torch.tensor([w], dtype=emb.dtype)
        # lpw's weighting with mean restoration, as in get_weighted_text_embeddings
        previous_mean = emb.float().mean(axis=[-2, -1]).to(emb.dtype)
        emb *= w.unsqueeze(-1)
        current_mean = emb.float().mean(axis=[-2, -1]).to(emb.dtype)
        emb *= (previous_mean / current_mean).unsqueeze(-1).unsqueeze(-1)
        out.append(emb)
    return out


def main():
    lpw = load_lpw()
    tok = CLIPTokenizer.from_pretrained(TINY_TOKENIZER, model_max_length=77)
    te = CLIPTextModel.from_pretrained(TINY_TEXT).eval()
    # lpw (written for transformers 4) reaches the final layer norm as text_encoder.text_model.final_layer_norm;
    # transformers 5's CLIPTextModel holds it directly: give lpw the path it expects, nothing else changes.
    te.text_model = SimpleNamespace(final_layer_norm=te.final_layer_norm)
    pipe = SimpleNamespace(tokenizer=tok, text_encoder=te, device=torch.device('cpu'))
    tensors = {}
    with torch.no_grad():
        for i, (prompt, negative) in enumerate(CASES):
            if 'BREAK' in prompt or 'BREAK' in negative:
                emb, unc = with_break(lpw, pipe, prompt, negative)
            else:
                emb, unc = lpw.get_weighted_text_embeddings(pipe, prompt, uncond_prompt=negative, max_embeddings_multiples=3)
            tensors[f'prompt.{i}'] = emb[0]
            tensors[f'negative.{i}'] = unc[0]
            # the same prompt read as plain text (lpw skip_parsing): weighting off must equal this
            plain, _ = lpw.get_weighted_text_embeddings(pipe, prompt, uncond_prompt=negative, max_embeddings_multiples=3, skip_parsing=True)
            tensors[f'plain.{i}'] = plain[0]
    parsed = [[list(p) for p in lpw.parse_prompt_attention(c[0])] for c in CASES]
    save_fixture('text/prompt-weighting', tensors, {'cases': CASES, 'parsed': parsed, 'diffusers_commit': '58eb52c080'})


if __name__ == '__main__':
    main()
