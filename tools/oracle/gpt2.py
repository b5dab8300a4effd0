"""A tiny random GPT-2 prompt enhancer and what transformers generates with it (enhance_prompt's reference).

Writes tests/fixtures/gpt2/tiny/: a byte-level BPE tokenizer trained here with the `tokenizers` library on a few
prompt-like lines (tokenizer.json as transformers 5 saves it, plus vocab.json + merges.txt, the older GPT-2 files),
config.json and model.safetensors of a GPT2LMHeadModel (n_embd 32, 2 layers, 4 heads, 64 positions, gelu_new;
weights drawn with a fixed seed, layer norms and biases perturbed so that nothing is left at its default, the
end-of-text and newline embeddings scaled up so that decoding meets them), and
tests/fixtures/gpt2/tiny-bin/pytorch_model.bin: the same weights as a torch.save state dict in the older layout
MagicPrompt-Stable-Diffusion ships (lm_head.weight sharing wte's storage, attn.bias / attn.masked_bias buffers).

Then tests/fixtures/gpt2/outputs.{json,bin}:
- tok.<i>: GPT2TokenizerFast's ids of varied texts (AutoTokenizer from the folder alone);
- greedy.<i> / logits.<i>: generate(do_sample=False, max_new_tokens=N) token ids after the prompt, and the raw
  logits of every step ([steps, vocab], output_logits=True), for several prompts;
- warp.<j>: softmax of the first step's logits of prompt 0 after transformers' Temperature / TopK / TopP warpers
  (the order generate() applies them), for several settings.
Run with tools/oracle/run.sh gpt2.py.
"""
import os, shutil
import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
from transformers.generation.logits_process import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from common import FIXTURES, save_fixture

OUT = os.path.join(FIXTURES, 'gpt2', 'tiny')
OUT_BIN = os.path.join(FIXTURES, 'gpt2', 'tiny-bin')
EOS = '<|endoftext|>'

CORPUS = [
    'a photo of a cat, highly detailed, digital painting, artstation, concept art, sharp focus',
    'portrait of a woman, intricate, elegant, by greg rutkowski and alphonse mucha, trending on artstation',
    'a castle on a hill at sunset, matte painting, 8k, unreal engine, octane render, volumetric lighting',
    "it's the robot's hat, isn't it? we'll see, they've said I'm done, you'd know",
    'cyberpunk city street at night, neon lights, rain, cinematic, 4 k, hdr, ultra realistic\n',
    'a dragon flying over mountains, fantasy, highly detailed, smooth, illustration\nlandscape, oil on canvas',
    'résumé café naïve 日本語 テキスト 1234567890 !!! ??? ...',
]

PROMPTS = ['a photo of a cat', 'portrait of a woman, intricate', 'cyberpunk city', 'a dragon', 'castle 8k']
TOKENIZE = PROMPTS + ['', 'A  Photo\tOF a CAT!!', "it's the cat's hat, isn't it?", 'résumé naïve café', 'trailing spaces   ',
                      'two\n\nlines\n', f'a{EOS} b', '日本語 テキスト 123', '  leading', 'x' * 40, 'emoji 🙂 ok']
NEW_TOKENS = 16
WARPS = [{'temperature': 0.7, 'top_k': 5, 'top_p': 1.0}, {'temperature': 1.0, 'top_k': 0, 'top_p': 0.9},
         {'temperature': 1.3, 'top_k': 50, 'top_p': 0.95}, {'temperature': 1.0, 'top_k': 1, 'top_p': 1.0}]


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    return GPT2TokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, model_max_length=64)


def main():
    for d in (OUT, OUT_BIN):
        if os.path.isdir(d):
            shutil.rmtree(d)
    fast = train_tokenizer()
    fast.save_pretrained(OUT)
    fast.backend_tokenizer.model.save(OUT)  # vocab.json + merges.txt
    tok = AutoTokenizer.from_pretrained(OUT)
    eos = tok.convert_tokens_to_ids(EOS)

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=4, activation_function='gelu_new',
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2, bos_token_id=eos, eos_token_id=eos)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if '.ln_' in name or name.startswith('transformer.ln_f') or name.endswith('bias'):
                p.add_(torch.randn_like(p) * 0.1)
        # end-of-text and newline made likelier (their embeddings, hence their logits, scaled), so that decoding
        # meets both stopping rules within a few tokens
        for t in (eos, tok.convert_tokens_to_ids('Ċ')):
            model.transformer.wte.weight[t] *= 4
    model.save_pretrained(OUT)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()

    # the older pickle layout: lm_head.weight shares wte's storage, causal-mask buffers per layer
    os.makedirs(OUT_BIN)
    sd = dict(model.state_dict())
    sd['lm_head.weight'] = model.transformer.wte.weight
    for i in range(config.n_layer):
        sd[f'transformer.h.{i}.attn.bias'] = torch.tril(torch.ones(64, 64, dtype=torch.uint8)).view(1, 1, 64, 64)
        sd[f'transformer.h.{i}.attn.masked_bias'] = torch.tensor(-1e4)
    torch.save(sd, os.path.join(OUT_BIN, 'pytorch_model.bin'))
    config.save_pretrained(OUT_BIN)

    tensors = {}
    for i, t in enumerate(TOKENIZE):
        tensors[f'tok.{i}'] = np.array(tok(t).input_ids, np.int32)
        assert tok.decode(tok(t).input_ids) == t, t
    margins = []
    for i, p in enumerate(PROMPTS):
        ids = tok(p, return_tensors='pt').input_ids
        with torch.no_grad():
            out = model.generate(ids, do_sample=False, max_new_tokens=NEW_TOKENS, output_logits=True, return_dict_in_generate=True,
                                 pad_token_id=eos, eos_token_id=eos, attention_mask=torch.ones_like(ids))
        new = out.sequences[0, ids.shape[1]:]
        logits = torch.cat([l for l in out.logits], 0).float()
        top2 = logits.topk(2, dim=-1).values
        margins.append(float((top2[:, 0] - top2[:, 1]).min()))
        tensors[f'greedy.{i}'] = new.numpy().astype(np.int32)
        tensors[f'logits.{i}'] = logits.numpy()
        tensors[f'prompt.{i}'] = ids[0].numpy().astype(np.int32)
    first = tensors['logits.0'][0:1]
    for j, w in enumerate(WARPS):
        procs = LogitsProcessorList([TemperatureLogitsWarper(w['temperature'])] + ([TopKLogitsWarper(w['top_k'])] if w['top_k'] > 0 else [])
                                    + ([TopPLogitsWarper(w['top_p'])] if w['top_p'] < 1.0 else []))
        scores = procs(torch.zeros(1, 1, dtype=torch.long), torch.from_numpy(first.copy()))
        tensors[f'warp.{j}'] = torch.softmax(scores, -1)[0].numpy()
    save_fixture('gpt2/outputs', tensors, {
        'prompts': PROMPTS, 'tokenize': TOKENIZE, 'new_tokens': NEW_TOKENS, 'eos': eos, 'vocab_size': len(tok), 'warps': WARPS,
        'min_greedy_margin': min(margins), 'files': sorted(os.listdir(OUT)),
    })
    print('vocab', len(tok), 'eos', eos, 'min top-2 logit margin over greedy steps', min(margins))


if __name__ == '__main__':
    main()
