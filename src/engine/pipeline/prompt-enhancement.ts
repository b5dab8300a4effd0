// The enhance step of the prompt stage (translate → enhance → encode): the installed GPT-2 prompt enhancer
// (models/prompt_enhancer/<id>, e.g. MagicPrompt-Stable-Diffusion) continues the prompt, seeded by the request's
// seed; with none installed the prompt is unchanged and the outcome says "unavailable" with the reason.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ENHANCE_DECODING, PromptEnhancer } from '../extras/prompt-enhancer.ts';
import type { RuntimeOptions } from '../onnx/session.ts';
import { weightFilesMB } from './memory.ts';
import type { SessionCache } from './sessions.ts';
import type { PhaseTimer } from './phases.ts';
import { modelPath } from '../store.ts';
import { asUserFile } from './model-files.ts';
import type { Applied } from './types.ts';

/** The id the enhance step prefers (what `models pull MagicPrompt-Stable-Diffusion` installs as). */
export const DEFAULT_PROMPT_ENHANCER_ID = 'default';

/** Why the prompt is unchanged when no enhancer is installed (meta's enhance_prompt_note). */
export const NO_PROMPT_ENHANCER = 'no prompt enhancer installed (models/prompt_enhancer/<id>, a GPT-2 folder): the prompt is unchanged';

/**
 * The installed prompt enhancer: models/prompt_enhancer/default when it is a folder with a config.json (and not
 * still downloading), else the first such folder by name; undefined when there is none.
 */
export function installedPromptEnhancer(modelsDir: string): { id: string; dir: string } | undefined {
  const root = join(modelsDir, 'prompt_enhancer');
  if (!existsSync(root)) return undefined;
  const ids = readdirSync(root).filter((id) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)).sort();
  // a folder `models pull` is still downloading carries .incomplete
  const usable = (id: string): boolean => {
    const dir = modelPath('prompt_enhancer', id, modelsDir);
    return existsSync(join(dir, 'config.json')) && !existsSync(join(dir, '.incomplete'));
  };
  const id = usable(DEFAULT_PROMPT_ENHANCER_ID) ? DEFAULT_PROMPT_ENHANCER_ID : ids.find(usable);
  return id === undefined ? undefined : { id, dir: modelPath('prompt_enhancer', id, modelsDir) };
}

/**
 * The enhance step, with each installed enhancer loaded once (again when its config.json changes) and kept in
 * memory under the engine's budget (SessionCache.useResource).
 */
export class PromptEnhancers {
  constructor(private readonly modelsDir: string, private readonly rt: RuntimeOptions, private readonly cache: SessionCache) {}

  /**
   * enhance_prompt for one request: `text` (after translation) unchanged when not asked for or when no enhancer is
   * installed, else the enhancer's prompt + continuation sampled with the request's seed (ENHANCE_DECODING).
   * A model folder the enhancer cannot use is EngineError('bad_model_file') naming it relative to the models
   * folder (HTTP 422); an aborted signal is EngineError('cancelled').
   */
  /** Whether run() will continue the prompt: enhance_prompt asked for and an enhancer installed. */
  willRun(o: { enhancePrompt: boolean }): boolean {
    return o.enhancePrompt && installedPromptEnhancer(this.modelsDir) !== undefined;
  }

  async run(text: string, o: { enhancePrompt: boolean; seed: number }, signal?: AbortSignal, clock?: PhaseTimer): Promise<{ text: string; outcome: Applied['promptEnhancement'] }> {
    if (!o.enhancePrompt) return { text, outcome: { status: 'off' } };
    const found = installedPromptEnhancer(this.modelsDir);
    if (!found) return { text, outcome: { status: 'unavailable', reason: NO_PROMPT_ENHANCER } };
    const key = `extra:prompt_enhancer:${found.dir}:${statSync(join(found.dir, 'config.json')).mtimeMs}`;
    return this.cache.useResource(key, async () => ({
      estimateMB: 2 * weightFilesMB(found.dir),
      create: () => asUserFile(this.modelsDir, 'enhance_prompt', found.dir, () => PromptEnhancer.load(found.dir, `prompt_enhancer/${found.id} (GPT2LMHeadModel)`, this.rt)),
    }), async (enhancer: PromptEnhancer) => {
      // the phase is the enhancement itself (loading the enhancer is not part of it)
      const enhance = () => enhancer.enhance(text, o.seed, ENHANCE_DECODING, signal);
      const out = await (clock ? clock.time({ phase: 'enhance', units: 1 }, enhance) : enhance());
      return { text: out.prompt, outcome: { status: 'ran' as const, model: enhancer.model, note: out.note } };
    });
  }
}
