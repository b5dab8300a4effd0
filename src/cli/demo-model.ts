// First start: with no base model installed (and none configured), install the demo model shipped in
// assets/demo-model (a tiny SD 1.x-architecture model trained by tools/demo_model/ on coloured shapes at 128x128,
// with canny and scribble ControlNets) and make it the default model, so that `npm start` answers requests out of
// the box with pictures of what was asked. Other control types stay uninstalled: a request for one gets the API's
// "controlnet_model ... is not installed" answer, which says how to install it.
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { ControlNetType } from '../engine/pipeline/types.ts';
import { ModelsFolder } from '../storage/models-folder.ts';

export const DEMO_MODEL_ID = 'shapes-demo';
/** The committed demo model: base/ (diffusers layout), controlnet-<type>/ and the model card README.md. */
export const DEMO_MODEL_DIR = join(import.meta.dirname, '..', '..', 'assets', 'demo-model');
/** The control types the demo model has a trained ControlNet for. */
export const DEMO_CONTROLNET_TYPES: readonly ControlNetType[] = ['canny', 'scribble'];
/** What `models list` shows for the demo's weights (DEMO.json's note). */
export const DEMO_NOTE = 'trained on coloured shapes, 128x128 (assets/demo-model/README.md)';

/** The request the demo draws well (the playground starts from it: DEMO.json's example). */
export const DEMO_EXAMPLE = { prompt: 'a red circle on a blue background', width: 128, height: 128 };

/** Copies `src` to `dest` through a temporary folder beside it, so a crash never leaves a half-copied model. */
async function copyAtomically(src: string, dest: string, marker: object): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await cp(src, tmp, { recursive: true });
  await writeFile(join(tmp, 'DEMO.json'), JSON.stringify(marker));
  await rename(tmp, dest);
}

/**
 * Installs the demo model into `modelsDir` (base/<baseId>, controlnet/<type> for each trained type) where nothing
 * exists yet; returns the paths written. Existing models are never overwritten.
 */
export async function installDemoModel(modelsDir: string, baseId = DEMO_MODEL_ID): Promise<string[]> {
  const written: string[] = [];
  const targets: [string, string][] = [[join(DEMO_MODEL_DIR, 'base'), join(modelsDir, 'base', baseId)]];
  for (const t of DEMO_CONTROLNET_TYPES) targets.push([join(DEMO_MODEL_DIR, `controlnet-${t}`), join(modelsDir, 'controlnet', t)]);
  for (const [i, [src, dest]] of targets.entries()) {
    if (existsSync(dest)) continue;
    await mkdir(join(dest, '..'), { recursive: true });
    await copyAtomically(src, dest, { demo: true, note: DEMO_NOTE, ...(i === 0 ? { example: DEMO_EXAMPLE } : {}) });
    written.push(dest);
  }
  return written;
}

export async function ensureDemoModel(config: Config, log: (msg: string) => void): Promise<Config> {
  const folder = new ModelsFolder(config.modelsDir);
  if (config.defaultModelId || folder.firstInstalled('base')) return config;
  log(`no base model installed: installing the demo model "${DEMO_MODEL_ID}" (tiny, trained on coloured shapes at 128x128;`
    + ` ControlNets: ${DEMO_CONTROLNET_TYPES.join(', ')}). Try: "a red circle on a blue background", width and height 128`);
  await installDemoModel(config.modelsDir);
  return { ...config, defaultModelId: DEMO_MODEL_ID };
}
