// Which language a prompt is in, for multi_lingual's choice of translator. franc-min alone is unreliable on the short
// keyword lists prompts are ("landscape, mountains, lake, sunset, golden hour" reads as French to it, "un chat sur un
// canapé" as Quechua), so two rules sit on top of it:
// - candidates: only English and the languages a translator exists for (opus-mt.ts) plus Portuguese and Romanian
//   (opus-mt-mul-en's), so that a French prompt is not taken for a language nothing translates;
// - English wins when franc ranks it second-best but close (score ≥ 0.6 of the best) and at least 95% of the words
//   are whole words of the CLIP tokenizer's vocabulary (SD's own, bundled: English web captions).
// On 20 short English and 17 non-English prompts written for the check (tests/engine/extras/prompt-language.test.ts),
// franc-min alone took 11 English prompts for another language and got 3 others wrong; with these rules, 1 and 2.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { francAll } from 'franc-min';
import { DEFAULT_CLIP_TOKENIZER_DIR } from '../text/clip-tokenizer.ts';
import { OPUS_MT_SOURCE } from './opus-mt.ts';

/** The languages a prompt may be identified as (ISO 639-3). */
export const PROMPT_LANGUAGES = ['eng', ...Object.keys(OPUS_MT_SOURCE), 'por', 'ron'];

/** English wins when its franc score is at least this (the best language scores 1)… */
export const ENGLISH_MIN_SCORE = 0.6;
/** …and at least this share of the prompt's words are whole CLIP vocabulary words. */
export const ENGLISH_MIN_CLIP_WORDS = 0.95;

let clipWords: Set<string> | undefined;

/** The share of the prompt's words (letters only, lowercased) that are whole words ("word</w>") of the CLIP vocabulary. */
export function clipWordShare(prompt: string): number {
  clipWords ??= new Set(Object.keys(JSON.parse(readFileSync(join(DEFAULT_CLIP_TOKENIZER_DIR, 'vocab.json'), 'utf8')) as Record<string, number>)
    .filter((k) => k.endsWith('</w>')).map((k) => k.slice(0, -4)));
  const words = prompt.toLowerCase().match(/\p{L}+/gu) ?? [];
  return words.length ? words.filter((w) => clipWords!.has(w)).length / words.length : 0;
}

/** The prompt's language as ISO 639-3 ("und" when too short to tell, under 10 characters), by the rules above. */
export function promptLanguage(prompt: string): string {
  const ranked = francAll(prompt, { only: PROMPT_LANGUAGES });
  const top = ranked[0]![0];
  if (top === 'und' || top === 'eng') return top;
  const english = ranked.find(([l]) => l === 'eng')?.[1] ?? 0;
  return english >= ENGLISH_MIN_SCORE && clipWordShare(prompt) >= ENGLISH_MIN_CLIP_WORDS ? 'eng' : top;
}
