// multi_lingual's language identification on short prompts: franc-min alone, and with our two rules (the candidate
// set and the English rule, extras/prompt-language.ts), on 20 English and 17 non-English prompts written for this
// check. The counts are what the README reports; a change of franc-min or of the rules shows here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { franc } from 'franc-min';
import { clipWordShare, promptLanguage } from '../../../src/engine/extras/prompt-language.ts';

const ENGLISH = [
  'masterpiece, best quality, 1girl, solo, long hair, looking at viewer', 'a house, 8k, trending on artstation, octane render',
  'portrait of a beautiful woman, highly detailed, sharp focus, studio lighting', 'cyberpunk city at night, neon lights, rain',
  'cat, dog, bird, photorealistic', 'landscape, mountains, lake, sunset, golden hour', 'anime girl with blue hair',
  'a red car parked on a street', 'oil painting of a ship in a storm', 'close-up photo of a cat, bokeh, 85mm',
  'fantasy castle, matte painting, concept art', 'a bowl of fruit on a wooden table', 'steampunk robot, intricate, brass',
  'a dragon flying over mountains', 'minimalist logo, vector, flat colors', 'sunset beach, palm trees, waves',
  'astronaut riding a horse on mars', 'watercolor flowers, pastel', 'old man portrait, wrinkles, dramatic light', 'futuristic car, chrome, studio',
];
const OTHER: [string, string][] = [
  ['fra', 'un chat sur un canapé'], ['fra', 'une maison au bord de la mer au coucher du soleil'],
  ['fra', 'portrait d\'une femme avec un chapeau, très détaillé'], ['deu', 'ein Hund im Park'],
  ['deu', 'eine Katze sitzt auf einem roten Sofa, Ölgemälde'], ['spa', 'un gato sentado en un sofá rojo, pintura al óleo'],
  ['spa', 'una casa junto al mar al atardecer'], ['ita', 'un gatto seduto su un divano rosso'], ['rus', 'кошка сидит на красном диване'],
  ['cmn', '一只猫坐在红色的沙发上'], ['jpn', '赤いソファに座っている猫'], ['por', 'paisagem com montanhas e lago'], ['nld', 'een kat op een bank'],
  ['pol', 'kot siedzący na czerwonej kanapie'], ['tur', 'bir kedi kırmızı kanepede oturuyor'], ['spa', 'castillo de fantasía, pintura mate'],
  ['fra', 'paysage de montagne, lac, coucher de soleil'],
];

test('franc-min alone misreads 11 of 20 short English prompts; with our rules 1 of 20, and 2 of 17 others wrong', () => {
  const francEnglishWrong = ENGLISH.filter((p) => franc(p) !== 'eng').length;
  const francOtherWrong = OTHER.filter(([l, p]) => franc(p) !== l).length;
  const oursEnglishWrong = ENGLISH.filter((p) => promptLanguage(p) !== 'eng');
  const oursOtherWrong = OTHER.filter(([l, p]) => promptLanguage(p) !== l).map(([l, p]) => `${p} (${l} → ${promptLanguage(p)})`);
  assert.deepEqual([francEnglishWrong, francOtherWrong], [11, 3]);
  assert.deepEqual(oursEnglishWrong, ['cat, dog, bird, photorealistic']);
  assert.deepEqual(oursOtherWrong, ['кошка сидит на красном диване (rus → bul)', 'castillo de fantasía, pintura mate (spa → ron)']);
});

test('the English rule: CLIP vocabulary share; too short is "und"', () => {
  assert.equal(clipWordShare('landscape, mountains, lake, sunset, golden hour'), 1);
  assert.ok(clipWordShare('eine Katze sitzt auf einem roten Sofa') < 0.5);
  assert.equal(promptLanguage('cat'), 'und');
  assert.equal(promptLanguage('landscape, mountains, lake, sunset, golden hour'), 'eng');
  assert.equal(franc('landscape, mountains, lake, sunset, golden hour'), 'fra');
});
