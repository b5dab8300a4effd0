// The public hub repositories each ControlNet type uses by default (SPEC "Models on disk"); `models pull <type>`
// installs one as models/controlnet/<type>.
import type { ControlNetType } from '../engine/pipeline/types.ts';
import type { ModelKind } from '../engine/store.ts';
import { OPUS_MT_ORG, opusMtIds } from '../engine/extras/opus-mt.ts';

export const DEFAULT_CONTROLNET_REPOS: Record<ControlNetType, string> = {
  canny: 'lllyasviel/control_v11p_sd15_canny',
  depth: 'lllyasviel/control_v11f1p_sd15_depth',
  hed: 'lllyasviel/sd-controlnet-hed',
  mlsd: 'lllyasviel/control_v11p_sd15_mlsd',
  normal: 'lllyasviel/control_v11p_sd15_normalbae',
  openpose: 'lllyasviel/control_v11p_sd15_openpose',
  scribble: 'lllyasviel/control_v11p_sd15_scribble',
  segmentation: 'lllyasviel/control_v11p_sd15_seg',
  inpaint: 'lllyasviel/control_v11p_sd15_inpaint',
  softedge: 'lllyasviel/control_v11p_sd15_softedge',
  lineart: 'lllyasviel/control_v11p_sd15_lineart',
  shuffle: 'lllyasviel/control_v11e_sd15_shuffle',
  tile: 'lllyasviel/control_v11f1e_sd15_tile',
  face_detector: 'CrucibleAI/ControlNetMediaPipeFace',
  qrcode: 'monster-labs/control_v1p_sd15_qrcode_monster',
};

export const DEFAULT_BASE_REPO = 'runwayml/stable-diffusion-v1-5';

/**
 * Extra models `models pull <name>` knows by name: the kind and id they install as, and their authors' release
 * files or hub repositories. The upscale stage uses RealESRGAN_x2plus for ×2 and RealESRGAN_x4plus for ×3 (and for ×2 without x2plus);
 * without either it runs the embedded esrgan-slim (README "Extras").
 */
export const NAMED_MODELS: Record<string, { kind: ModelKind; id?: string; source: string; licence: string; skip?: RegExp }> = {
  // a hub repository in the standalone checker's layout; the safety check uses models/safety_checker/default
  'stable-diffusion-safety-checker': { kind: 'safety_checker', id: 'default', source: 'CompVis/stable-diffusion-safety-checker', licence: 'see the repository model card (not checked here)' },
  RealESRGAN_x4plus: { kind: 'upscaler', source: 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth', licence: 'BSD-3-Clause' },
  RealESRGAN_x2plus: { kind: 'upscaler', source: 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth', licence: 'BSD-3-Clause' },
  // enhance_prompt's GPT-2 (124M parameters, trained on ~80k Lexica.art prompts); its card: "license: mit", credit Gustavosta
  // the repository also holds Core ML conversions (about 1 GB under coreml/) and the trainer's pickled arguments
  'MagicPrompt-Stable-Diffusion': { kind: 'prompt_enhancer', id: 'default', source: 'Gustavosta/MagicPrompt-Stable-Diffusion', licence: 'MIT (model card; credit: Gustavosta)',
    skip: /^coreml\/|^training_args\.bin$/ },
  // multi_lingual's translators, installed as translator/opus-mt-<src>-en (README "multi_lingual")
  ...Object.fromEntries(opusMtIds().map((id) => [id, { kind: 'translator' as const, source: `${OPUS_MT_ORG}/${id}`, licence: 'CC-BY-4.0' }])),
};
