// The language of a prompt (multi_lingual), identified by franc-min (MIT, wooorm: trigram profiles of 82
// languages, no model download). Prompts shorter than franc's minimum (10 characters) are "und" (undetermined).
import { franc } from 'franc-min';

/** franc's package and version, for what meta reports. */
export const LANGUAGE_ID_MODEL = 'franc-min@6.2.0';

/** ISO 639-3 code of the prompt's language ("eng", "deu", "cmn", …), or "und" when it cannot be told. */
export function detectLanguage(prompt: string): string {
  return franc(prompt);
}
