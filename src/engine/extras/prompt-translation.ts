// The translate step of the prompt stage (multi_lingual): identify the prompt's language (franc-min with our rules for
// short prompts, prompt-language.ts), and when it is
// neither English nor undetermined, translate it to English with the installed translator for that language
// (translator/opus-mt-<src>-en, else translator/opus-mt-mul-en). With none installed the prompt runs as written and
// the outcome says why. Runs inside the engine (the worker thread), never on the HTTP event loop.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeOptions } from '../onnx/session.ts';
import { weightFilesMB } from '../pipeline/memory.ts';
import type { SessionCache } from '../pipeline/sessions.ts';
import type { PhaseTimer } from '../pipeline/phases.ts';
import { asUserFile } from '../pipeline/model-files.ts';
import type { ExtraOutcome } from '../pipeline/types.ts';
import { modelPath } from '../store.ts';
import { LANGUAGE_ID_MODEL } from './language.ts';
import { promptLanguage } from './prompt-language.ts';
import { OPUS_MT_SOURCE, translatorIdsFor } from './opus-mt.ts';
import { MarianTranslator } from './translator.ts';

export interface PromptTranslation {
  /** The prompt to encode: the translation, or the prompt as written. */
  text: string;
  /** franc's ISO 639-3 code ("und" when undetermined). */
  language: string;
  outcome: ExtraOutcome<{ model: string; note: string }>;
}

/**
 * The installed translators of a models folder, each loaded once (per folder and modification time) and kept in
 * memory under the engine's budget (SessionCache.useResource).
 */
export class PromptTranslators {
  constructor(private readonly modelsDir: string, private readonly rt: RuntimeOptions, private readonly cache: SessionCache) {}

  /** The first installed translator folder for a language (ISO 639-3): its id and path, or undefined. */
  installedFor(language: string): { id: string; dir: string } | undefined {
    for (const id of translatorIdsFor(language)) {
      const dir = modelPath('translator', id, this.modelsDir);
      // a folder `models pull` is still filling carries .incomplete
      if (existsSync(join(dir, 'config.json')) && !existsSync(join(dir, '.incomplete'))) return { id, dir };
    }
    return undefined;
  }

  /**
   * multi_lingual on `prompt`: English and undetermined prompts pass unchanged; others are translated when a
   * translator is installed. Throws EngineError('bad_model_file') naming the translator's file (relative to the
   * models folder) when an installed translator cannot be used.
   */
  /** Whether translate(text) will run a translator: the text is not English (nor undetermined) and one is installed. */
  willTranslate(text: string): boolean {
    const language = promptLanguage(text);
    return language !== 'eng' && language !== 'und' && this.installedFor(language) !== undefined;
  }

  async translate(prompt: string, clock?: PhaseTimer): Promise<PromptTranslation> {
    const language = promptLanguage(prompt);
    if (language === 'eng' || language === 'und') {
      const note = language === 'eng' ? 'English: passed unchanged' : 'language undetermined (too short): passed unchanged';
      return { text: prompt, language, outcome: { status: 'ran', model: LANGUAGE_ID_MODEL, note } };
    }
    const installed = this.installedFor(language);
    const source = OPUS_MT_SOURCE[language] ?? language;
    if (!installed) {
      const wanted = translatorIdsFor(language)[0]!;
      return {
        text: prompt, language,
        outcome: { status: 'unavailable', reason: `not translated: no translator installed (the prompt looks like ISO 639-3 "${language}"; install translator/${wanted}: models pull ${wanted})` },
      };
    }
    const { id, dir } = installed;
    const t = await this.cache.useResource<MarianTranslator, { text: string }>(`extra:translator:${dir}:${statSync(join(dir, 'config.json')).mtimeMs}`, async () => ({
      estimateMB: 2 * weightFilesMB(dir),
      create: () => asUserFile(this.modelsDir, 'multi_lingual', dir, () => MarianTranslator.load(dir, id, this.rt)),
    }), (translator) => {
      // the phase is the translation itself (loading the translator, once while it stays in memory, is not part of it)
      const run = () => asUserFile(this.modelsDir, 'multi_lingual', dir, () => translator.translate(prompt));
      return clock ? clock.time({ phase: 'translate', units: 1 }, run) : run();
    });
    return { text: t.text, language, outcome: { status: 'ran', model: id, note: `translated from ${source} with ${id}` } };
  }
}
