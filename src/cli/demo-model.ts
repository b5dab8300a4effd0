// First start: with no base model installed (and none configured), install the tiny demo models (base model
// "tiny-demo" and one ControlNet per type) so that `npm start` answers requests out of the box, and make the
// demo the default model.
import type { Config } from '../config.ts';
import { createDemoModels } from '../engine/models/demo.ts';
import { ModelsFolder } from '../storage/models-folder.ts';

export const DEMO_MODEL_ID = 'tiny-demo';

export async function ensureDemoModel(config: Config, log: (msg: string) => void): Promise<Config> {
  const folder = new ModelsFolder(config.modelsDir);
  if (config.defaultModelId || folder.firstInstalled('base')) return config;
  log(`no base model installed: installing the demo model "${DEMO_MODEL_ID}" (tiny random weights, noise-like images)`);
  await createDemoModels(config.modelsDir, { baseId: DEMO_MODEL_ID });
  return { ...config, defaultModelId: DEMO_MODEL_ID };
}
