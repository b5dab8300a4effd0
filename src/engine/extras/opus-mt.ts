// The Helsinki-NLP opus-mt-{src}-en translators (MarianMT, CC-BY-4.0) that multi_lingual knows by language: franc's
// ISO 639-3 codes → the source code of the hub repository's name (ISO 639-1 where one exists). Kept free of
// runtime imports, so that `models pull` can list them without loading the engine.

export const OPUS_MT_SOURCE: Record<string, string> = {
  fra: 'fr', deu: 'de', spa: 'es', ita: 'it', cmn: 'zh', jpn: 'ja', rus: 'ru', nld: 'nl', pol: 'pl', ukr: 'uk',
  kor: 'ko', tur: 'tr', arb: 'ar', hin: 'hi', vie: 'vi', swe: 'sv', ces: 'cs', hun: 'hu', ind: 'id', bul: 'bg',
  urd: 'ur', mar: 'mr', tha: 'th', ben: 'bn',
  // Portuguese, Romanian, Greek, Persian, ... (franc-min reports them) have no opus-mt-<src>-en of their own:
  // the many-to-English model below translates them
};

/** The many-to-English model, used for any language whose own translator is not installed. */
export const MULTILINGUAL_TRANSLATOR_ID = 'opus-mt-mul-en';

/** The hub repository of a translator id ("opus-mt-fr-en" → "Helsinki-NLP/opus-mt-fr-en"). */
export const OPUS_MT_ORG = 'Helsinki-NLP';

/** Every translator id `models pull` knows: opus-mt-<src>-en for each language above, and opus-mt-mul-en. */
export function opusMtIds(): string[] {
  return [...new Set(Object.values(OPUS_MT_SOURCE))].map((s) => `opus-mt-${s}-en`).concat(MULTILINGUAL_TRANSLATOR_ID);
}

/** The translator ids that may translate a language (ISO 639-3), best first. */
export function translatorIdsFor(language: string): string[] {
  const src = OPUS_MT_SOURCE[language];
  return src ? [`opus-mt-${src}-en`, MULTILINGUAL_TRANSLATOR_ID] : [MULTILINGUAL_TRANSLATOR_ID];
}
