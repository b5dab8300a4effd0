"""transformers' MarianMTModel + MarianTokenizer (the Helsinki-NLP opus-mt-{src}-en layout) on a tiny random config.

Trains two tiny SentencePiece unigram models with the `sentencepiece` package (source: a few sentences in several
languages; target: English), writes a vocab.json joining their pieces (ids shuffled, so that vocab ids differ from
the spm ids, with a few source pieces left out so that they map to <unk>), builds a tiny random MarianMTModel and
saves everything with save_pretrained (config.json, generation_config.json, model.safetensors, source.spm,
target.spm, vocab.json, tokenizer_config.json) under tests/fixtures/marian/tiny; tiny-bin/ holds the same model as
a torch.save pytorch_model.bin (the Helsinki repositories' file) with the configs
(tests take the tokenizer files from tiny/).

Fixture marian/outputs: for each prompt, MarianTokenizer's input ids and pieces, the encoder's last_hidden_state,
the decoder's logits at each generated position (one teacher-forced pass, no cache),
generate()'s token ids (greedy: num_beams=1, do_sample=False, the generation config's max_length, bad_words_ids and
forced_eos_token_id) and the decoded text (skip_special_tokens=True), and generate()'s ids with the generation
config's beam search (num_beams 4, as opus-mt's generation_config.json asks). The weights are scaled up from the default
init so that logits are well apart: the script checks that every greedy step's best logit beats the second by
more than 1e-3 (a near tie would make the token comparison depend on float rounding) and re-draws otherwise.
"""
import io
import json
import os
import random
import shutil

import numpy as np
import sentencepiece as spm
import torch
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

from common import FIXTURES, save_fixture

SOURCE = [
    "un chat assis sur un canapé rouge, peinture à l'huile, lumière douce",
    "une maison au bord de la mer au coucher du soleil",
    "portrait d'une femme avec un chapeau, très détaillé",
    "eine Katze sitzt auf einem roten Sofa, Ölgemälde, weiches Licht",
    "ein Haus am Meer bei Sonnenuntergang, sehr detailliert",
    "Porträt einer Frau mit Hut, hohe Qualität",
    "un gato sentado en un sofá rojo, pintura al óleo, luz suave",
    "una casa junto al mar al atardecer, muy detallado",
    "retrato de una mujer con sombrero, alta calidad",
    "un gatto seduto su un divano rosso, pittura a olio",
    "una casa sul mare al tramonto, molto dettagliato",
    "кошка сидит на красном диване, масляная живопись",
    "дом у моря на закате, очень детально",
    "портрет женщины в шляпе, высокое качество",
    "一只猫坐在红色的沙发上，油画，柔和的光线",
    "日落时海边的房子，非常详细",
    "戴帽子的女人的肖像，高质量",
    "赤いソファに座っている猫、油絵、柔らかい光",
    "夕日の海辺の家、とても詳細",
    "帽子をかぶった女性の肖像画、高品質",
]
TARGET = [
    "a cat sitting on a red sofa, oil painting, soft light",
    "a house by the sea at sunset",
    "portrait of a woman with a hat, highly detailed",
    "a house by the sea at sunset, very detailed",
    "portrait of a woman with a hat, high quality",
    "a cat sitting on a red couch, oil painting",
    "a house on the sea at sunset, very detailed",
    "portrait of a woman in a hat, high quality",
    "the light of the sun on the water, a painting of a city",
    "a dog running in a field of flowers, bright colours",
]
# Several non-English prompts; the last ones hold characters outside the source model (unknown pieces, merged runs),
# extra and odd whitespace (normalisation), a >>fr<< language code, and full-width letters (NFKC).
PROMPTS = [
    "un chat sur un canapé, peinture à l'huile",
    "eine Katze auf einem Sofa bei Sonnenuntergang",
    "una mujer con sombrero, muy detallado",
    "кошка на диване",
    "一只猫坐在沙发上",
    "夕日の海辺の猫",
    "  un   gatto   sul mare \t rosso  ",
    "un chat 🐈🐈 ☂ sur la plage Ωλ",
    ">>fra<< une maison",
    "ＡＢＣ une femme １２３",
]


def train_spm(lines, vocab_size, seed):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type='unigram',
        character_coverage=0.9995, hard_vocab_limit=False, seed_sentencepiece_size=10000, num_threads=1,
        unk_id=1, bos_id=-1, eos_id=0, pad_id=-1, unk_piece='<unk>', eos_piece='</s>',
    )
    return model.getvalue()


def main():
    random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    out = os.path.join(FIXTURES, 'marian', 'tiny')
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src_proto = train_spm(SOURCE * 3, 160, 1)
    tgt_proto = train_spm(TARGET * 3, 90, 2)
    with open(os.path.join(out, 'source.spm'), 'wb') as f:
        f.write(src_proto)
    with open(os.path.join(out, 'target.spm'), 'wb') as f:
        f.write(tgt_proto)
    src_sp = spm.SentencePieceProcessor(model_proto=src_proto)
    tgt_sp = spm.SentencePieceProcessor(model_proto=tgt_proto)
    src_pieces = [src_sp.id_to_piece(i) for i in range(src_sp.get_piece_size())]
    tgt_pieces = [tgt_sp.id_to_piece(i) for i in range(tgt_sp.get_piece_size())]
    special = {'</s>', '<unk>', '<s>', '<pad>'}
    dropped = set(src_pieces[-4:])  # pieces the source model emits that vocab.json lacks: they become <unk>
    pieces = sorted(set(p for p in src_pieces + tgt_pieces if p not in special and p not in dropped))
    random.shuffle(pieces)
    vocab = {'</s>': 0, '<unk>': 1}
    for p in pieces:
        vocab[p] = len(vocab)
    vocab['<pad>'] = len(vocab)
    pad = vocab['<pad>']
    with open(os.path.join(out, 'vocab.json'), 'w', encoding='utf8') as f:
        json.dump(vocab, f, ensure_ascii=False, indent=1)
    tok = MarianTokenizer(os.path.join(out, 'source.spm'), os.path.join(out, 'target.spm'), os.path.join(out, 'vocab.json'),
                          source_lang='fr', target_lang='en')

    config = MarianConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=24, max_position_embeddings=64,
        activation_function='swish', scale_embedding=True, pad_token_id=pad, eos_token_id=0,
        decoder_start_token_id=pad, forced_eos_token_id=0, share_encoder_decoder_embeddings=True,
    )
    generation = GenerationConfig(bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad, eos_token_id=0,
                                  forced_eos_token_id=0, max_length=24, num_beams=4, pad_token_id=pad, renormalize_logits=True)
    enc_ids = [tok(p, return_tensors='pt').input_ids for p in PROMPTS]
    for attempt in range(40):
        model = MarianMTModel(config).eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if 'embed_positions' in name:
                    continue
                if 'shared' in name or 'embed_tokens' in name:
                    p.normal_(0, 0.2)  # small next to the positions, so that the output varies along the sequence
                elif p.dim() >= 2:
                    p.normal_(0, 0.5)
                elif 'layer_norm' in name and name.endswith('weight'):
                    p.uniform_(0.5, 1.5)
                else:
                    p.normal_(0, 0.2)
            model.final_logits_bias.normal_(0, 0.3)
            # eos somewhat likely, so that some prompts end before max_length and others are cut by forced_eos
            model.final_logits_bias[0, 0] += 0.5
        model.generation_config = generation
        gaps, results = [], []
        with torch.no_grad():
            for ids in enc_ids:
                g = model.generate(ids, num_beams=1, do_sample=False, output_scores=True, output_logits=True, return_dict_in_generate=True)
                for step in g.logits:
                    l = step[0].clone()
                    l[pad] = -float('inf')
                    top = torch.topk(l, 2).values
                    gaps.append(float(top[0] - top[1]))
                results.append(g.sequences[0])
        distinct = len(set(t for r in results for t in r.tolist()))
        print(f"draw {attempt}: gap {min(gaps):.3g}, {distinct} distinct ids, lengths {[len(r) for r in results]}", flush=True)
        if min(gaps) > 1e-3 and distinct >= 8 and any(len(r) < generation.max_length for r in results) and any(len(r) == generation.max_length for r in results):
            break
    else:
        raise SystemExit('no draw with well-separated logits')
    print(f'attempt {attempt}: smallest top-2 logit gap {min(gaps):.4g}, {distinct} distinct generated ids')
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    bin_dir = os.path.join(FIXTURES, 'marian', 'tiny-bin')
    shutil.rmtree(bin_dir, ignore_errors=True)
    os.makedirs(bin_dir)
    for name in ('config.json', 'generation_config.json'):
        shutil.copy(os.path.join(out, name), bin_dir)
    torch.save(model.state_dict(), os.path.join(bin_dir, 'pytorch_model.bin'))

    tensors, cases = {}, []
    with torch.no_grad():
        for i, (prompt, ids, gen) in enumerate(zip(PROMPTS, enc_ids, results)):
            hidden = model.get_encoder()(input_ids=ids).last_hidden_state[0]
            tensors[f'encoder_{i}'] = hidden
            # the decoder's logits at every generated position, teacher-forced in one pass (no cache): what each
            # cached step must give
            tensors[f'step_logits_{i}'] = model(input_ids=ids, decoder_input_ids=gen[None, :-1]).logits[0]
            cases.append({
                'prompt': prompt,
                'pieces': tok.tokenize(prompt),
                'input_ids': ids[0].tolist(),
                'generated_ids': gen.tolist(),
                'text': tok.decode(gen, skip_special_tokens=True),
                # beam search as the generation config asks (num_beams 4, length_penalty 1, early_stopping False)
                'beam_ids': model.generate(ids, do_sample=False)[0].tolist(),
                'source_pieces_spm': src_sp.encode(prompt.split('<<')[-1], out_type=str),
            })
            print(prompt, '->', cases[-1]['pieces'], ids[0].tolist(), gen.tolist(), repr(cases[-1]['text']))
    # the target side: MarianTokenizer decoding of English pieces (spm ids of the target model through vocab.json)
    decode_cases = []
    for text in ['a cat on a red sofa, oil painting', 'portrait of a woman   with a hat']:
        ids = [vocab.get(p, 1) for p in tgt_sp.encode(text, out_type=str)] + [0]
        decode_cases.append({'ids': ids, 'text': tok.decode(ids, skip_special_tokens=True)})
    # the normalizer on its own (nmt_nfkc's precompiled map and the whitespace rules): pieces of the source model
    tricky = ['e\u0301te\u0301 ﬁn', 'a\u00a0b\u3000c', 'tab\there\r\nline', 'zero\u200bwidth\u200d', 'ctrl\u0007char',
              '①②③ ｶﾀｶﾅ', '   ', '', '\u2581already', 'bad \udcff surrogate'.encode('utf-8', 'surrogatepass').decode('utf-8', 'replace')]
    normalizer_cases = [{'text': t, 'pieces': src_sp.encode(t, out_type=str)} for t in tricky]
    # special tokens written in the text are split out before SentencePiece (PreTrainedTokenizer.tokenize)
    special_cases = [{'text': t, 'pieces': tok.tokenize(t), 'input_ids': tok(t).input_ids}
                     for t in ['un chat </s> sur <unk>la plage', '<pad>une maison</s>', '>>fr<< un </s>chat']]
    save_fixture('marian/outputs', tensors, {
        'normalizer_cases': normalizer_cases, 'special_cases': special_cases,
        'cases': cases, 'decode_cases': decode_cases, 'min_logit_gap': min(gaps),
        'versions': {'transformers': __import__('transformers').__version__, 'sentencepiece': spm.__version__, 'torch': torch.__version__},
    })


if __name__ == '__main__':
    main()
