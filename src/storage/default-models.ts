// The public hub repositories each ControlNet type uses by default (SPEC "Models on disk"); `models pull <type>`
// installs one as models/controlnet/<type>.
import type { ControlNetType } from '../engine/pipeline/types.ts';

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
