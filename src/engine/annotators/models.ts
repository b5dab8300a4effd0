// Which ONNX files each neural annotator needs under <modelsDir>/annotator/<name>/, where they come from, and which
// types fall back to models bundled in the npm dependencies (face_detector, openpose) when they are not installed.
// `controlnet models pull` reads `source` (a hub repository and file, or the export step when no public ONNX
// export exists) and the licence is shown to the user before downloading.
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { CONTROLNET_TYPES, type ControlNetType } from '../pipeline/types.ts';
import { AnnotatorMissingError } from './errors.ts';

export interface AnnotatorModel {
  /** folder name under <modelsDir>/annotator/ */
  name: string;
  /** file names inside that folder */
  files: string[];
  source: string;
  licence: string;
  /**
   * The original PyTorch checkpoint our graph builder builds the network from when the ONNX files are not
   * installed (the files A1111 / ComfyUI users already hold), and where it comes from. It lies in the same
   * folder unless `folder` names another (depth: MiDaS is another network than the Depth Anything ONNX model),
   * under the entry's licence unless `licence` says otherwise.
   */
  checkpoint?: AnnotatorCheckpoint;
}

export interface AnnotatorCheckpoint {
  file: string;
  source: string;
  folder?: string;
  licence?: string;
}

// Models without a public ONNX export are exported from lllyasviel/Annotators' PyTorch checkpoints by
// tools/oracle/annotator_export.py (controlnet_aux 0.0.10's module classes, torch.onnx.export): hed, softedge,
// lineart, mlsd. The ONNX files are the user's to produce or fetch; `models pull` can only name these sources.
const MODELS: Partial<Record<ControlNetType, AnnotatorModel>> = {
  depth: {
    name: 'depth-anything-v2-small',
    files: ['model.onnx'],
    source: 'hf:onnx-community/depth-anything-v2-small onnx/model.onnx, Depth Anything V2 small (input pixel_values [1,3,H,W], H and W multiples of 14; output predicted_depth [1,H,W])',
    licence: 'Apache-2.0',
    // ControlNet 1.1's own depth annotator (controlnet_aux MidasDetector's default), built from the checkpoint
    checkpoint: {
      folder: 'midas',
      file: 'dpt_hybrid-midas-501f0c75.pt',
      source: 'hf:lllyasviel/Annotators dpt_hybrid-midas-501f0c75.pt (MiDaS DPT-Hybrid, the ControlNet 1.1 depth annotator)',
      licence: 'MIT (isl-org/MiDaS)',
    },
  },
  normal: {
    name: 'normalbae',
    files: ['normalbae.onnx'],
    source: 'hf:lllyasviel/Annotators scannet.pt (NormalBae), exported to ONNX with torch.onnx.export (no public ONNX export known; tools/oracle/annotator_export.py does not cover it yet): input [1,3,H,W] ImageNet-normalized RGB, H and W multiples of 16; output [1,4,H,W] (normal xyz + kappa) at the input size',
    licence: 'MIT (baegwangbin/surface_normal_uncertainty)',
    checkpoint: { file: 'scannet.pt', source: 'hf:lllyasviel/Annotators scannet.pt' },
  },
  hed: {
    name: 'hed',
    files: ['ControlNetHED.onnx'],
    source: 'hf:lllyasviel/Annotators ControlNetHED.pth, exported by tools/oracle/annotator_export.py hed (input [1,3,H,W] RGB 0..255; outputs 5 side maps [1,1,H/2^k,W/2^k], k=0..4, before sigmoid)',
    licence: 'Apache-2.0 (ControlNetHED_Apache2 of lllyasviel/ControlNet-v1-1-nightly)',
    checkpoint: { file: 'ControlNetHED.pth', source: 'hf:lllyasviel/Annotators ControlNetHED.pth' },
  },
  softedge: {
    name: 'pidinet',
    files: ['table5_pidinet.onnx'],
    source: 'hf:lllyasviel/Annotators table5_pidinet.pth, exported by tools/oracle/annotator_export.py softedge (input [1,3,H,W] BGR 0..1; last output [1,1,H,W] after sigmoid)',
    licence: 'MIT (hellozhuo/pidinet)',
    checkpoint: { file: 'table5_pidinet.pth', source: 'hf:lllyasviel/Annotators table5_pidinet.pth' },
  },
  lineart: {
    name: 'lineart',
    files: ['sk_model.onnx'],
    source: 'hf:lllyasviel/Annotators sk_model.pth, exported by tools/oracle/annotator_export.py lineart (input [1,3,H,W] RGB 0..1; output [1,1,H,W] line darkness 0..1)',
    licence: 'MIT (carolineec/informative-drawings)',
    checkpoint: { file: 'sk_model.pth', source: 'hf:lllyasviel/Annotators sk_model.pth' },
  },
  mlsd: {
    name: 'mlsd',
    files: ['mlsd_large_512_fp32.onnx'],
    source: 'hf:lllyasviel/Annotators mlsd_large_512_fp32.pth, exported by tools/oracle/annotator_export.py mlsd (input [1,4,H,W]: RGB and a ones channel, scaled to [-1,1]; output tpMap [1,9,H/2,W/2])',
    licence: 'Apache-2.0 (navervision/mlsd)',
    checkpoint: { file: 'mlsd_large_512_fp32.pth', source: 'hf:lllyasviel/Annotators mlsd_large_512_fp32.pth' },
  },
  scribble: {
    name: 'hed',
    files: ['ControlNetHED.onnx'],
    source: 'the hed annotator model (see hed); without it scribble falls back to canny edges',
    licence: 'Apache-2.0',
    checkpoint: { file: 'ControlNetHED.pth', source: 'hf:lllyasviel/Annotators ControlNetHED.pth' },
  },
  openpose: {
    name: 'dwpose',
    files: ['yolox_l.onnx', 'dw-ll_ucoco_384.onnx'],
    source: 'hf:yzd-v/DWPose yolox_l.onnx (person detector, input [1,3,640,640] BGR 0..255, output [1,8400,85]) and dw-ll_ucoco_384.onnx (whole-body pose, input [N,3,384,288], outputs simcc_x [N,133,576], simcc_y [N,133,768])',
    licence: 'Apache-2.0 (IDEA-Research/DWPose; YOLOX by Megvii, Apache-2.0)',
  },
  segmentation: {
    name: 'segformer-ade',
    files: ['model.onnx'],
    source: 'hf:Xenova/segformer-b0-finetuned-ade-512-512 onnx/model.onnx (input pixel_values [1,3,512,512] ImageNet-normalized; output logits [1,150,128,128]); any ADE20k model with that signature fits',
    licence: 'NVIDIA Source Code License for SegFormer (non-commercial use only): pick another ADE20k ONNX model for commercial use',
    // ControlNet 1.1's own seg_ufade20k annotator (UniFormer-S + UperNet), built from the checkpoint
    checkpoint: {
      folder: 'uniformer',
      file: 'upernet_global_small.pth',
      source: 'hf:lllyasviel/Annotators upernet_global_small.pth (UniFormer-S + UperNet on ADE20k, the ControlNet 1.1 seg_ufade20k annotator)',
      licence: 'Apache-2.0 (annotator/uniformer of lllyasviel/ControlNet-v1-1-nightly, from Sense-X/UniFormer)',
    },
  },
  face_detector: {
    name: 'mediapipe-face',
    files: ['face_detection_short_range.onnx', 'face_landmark.onnx'],
    source: 'MediaPipe (tflite, Apache-2.0) converted to ONNX, e.g. from PINTO0309/PINTO_model_zoo: face_detection_short_range.onnx is BlazeFace short range (030_BlazeFace, face_detection_short_range / face_detection_front), input [1,3,128,128] (or NHWC [1,128,128,3]) RGB scaled to [-1,1], raw outputs regressors [1,896,16] (box centre offset, size and 6 keypoints per anchor, in input pixels) and classificators [1,896,1] (logits), no post-processing baked in; face_landmark.onnx is face_landmark_with_attention / face_landmark (282_face_landmark_with_attention), input [1,3,192,192] RGB 0..1, outputs landmarks [1,1404] (468 x,y,z in input pixels; 1434 with iris points, else the pupils come from the bundled iris_landmark model) and face score [1,1] (logit)',
    licence: 'Apache-2.0 (google-ai-edge/mediapipe)',
  },
};

/**
 * Types that run with models bundled in the project's npm dependencies when their ONNX files are not
 * installed: face_detector (MediaPipe face detection + face landmark) and openpose (MediaPipe pose, body only).
 */
export const BUNDLED: Partial<Record<ControlNetType, { models: string[]; note: string; licence: string }>> = {
  face_detector: {
    models: ['@mediapipe/face_detection/face_detection_short_range.tflite', '@mediapipe/face_mesh/face_mesh_solution_packed_assets.data#face_landmark.tflite', 'assets/mediapipe/iris_landmark.tflite'],
    note: 'face mesh from the bundled MediaPipe models (face_detection_short_range + face_landmark, 468 points) with the pupils from iris_landmark on the two eye crops (MediaPipe\'s iris pipeline; controlnet_aux gets them from face_landmark_with_attention)',
    licence: 'Apache-2.0 (google-ai-edge/mediapipe)',
  },
  openpose: {
    models: ['@mediapipe/pose/pose_solution_packed_assets.data#pose_detection.tflite', '@mediapipe/pose/pose_landmark_full.tflite'],
    note: 'openpose from the bundled MediaPipe pose models, the body-only approximation (BlazePose 33 → COCO-17 → OpenPose-18; no hands or face); install DWPose for the whole-body annotator',
    licence: 'Apache-2.0 (google-ai-edge/mediapipe)',
  },
};

/** The model files a neural annotator needs, or null for the algorithmic types (canny, shuffle, tile, inpaint, qrcode). */
export function annotatorModel(type: ControlNetType): { files: string[]; source: string; licence: string; name: string; checkpoint?: { file: string; source: string; licence: string } } | null {
  const m = MODELS[type];
  if (!m) return null;
  const c = m.checkpoint;
  const checkpoint = c ? { file: `${c.folder ?? m.name}/${c.file}`, source: c.source, licence: c.licence ?? m.licence } : undefined;
  return { name: m.name, files: m.files.map((f) => `${m.name}/${f}`), source: m.source, licence: m.licence, checkpoint };
}

/**
 * The installed original checkpoint of the type (absolute path), when the type can be built from one: the
 * .pth/.pt file as published, or the same weights converted to .safetensors under the same stem.
 */
export function installedCheckpoint(type: ControlNetType, modelsDir: string): string | null {
  const c = annotatorModel(type)?.checkpoint;
  if (!c) return null;
  for (const f of [c.file, c.file.replace(/\.pth?$/, '.safetensors')]) {
    const p = join(modelsDir, 'annotator', f);
    if (existsSync(p)) return p;
  }
  return null;
}

/** A file of the type's model, relative to the models folder (as messages name it): annotator/<name>/<file>. */
const relative = (f: string) => `annotator/${f}`;

/**
 * Absolute paths of the type's installed model files; throws AnnotatorMissingError naming the first one not
 * installed (relative to the models folder, with how to get it).
 */
export function requireAnnotatorFiles(type: ControlNetType, modelsDir: string): string[] {
  const m = annotatorModel(type);
  if (!m) return [];
  const missing = m.files.find((f) => !existsSync(join(modelsDir, 'annotator', f)));
  if (missing) {
    // a type that builds from its original checkpoint names that file first: it is what users already have
    if (m.checkpoint) throw new AnnotatorMissingError(type, relative(m.checkpoint.file), `${m.checkpoint.source} (or the ONNX export ${relative(missing)}: ${m.source})`);
    throw new AnnotatorMissingError(type, relative(missing), m.source);
  }
  return m.files.map((f) => join(modelsDir, 'annotator', f));
}

/** True when every file of the type's annotator model is installed (scribble uses this to pick HED or canny). */
export function hasAnnotatorFiles(type: ControlNetType, modelsDir: string): boolean {
  const m = annotatorModel(type);
  return !m || m.files.every((f) => existsSync(join(modelsDir, 'annotator', f)));
}

/**
 * Throws AnnotatorMissingError when auto_hint cannot make the type's hint with this models folder: a neural
 * type whose files are not installed and that has neither a bundled model nor a fallback (scribble → canny).
 */
export function assertAnnotatorAvailable(type: ControlNetType, modelsDir: string): void {
  if (type === 'scribble' || BUNDLED[type] || installedCheckpoint(type, modelsDir)) return;
  requireAnnotatorFiles(type, modelsDir);
}

/** One file `controlnet models pull annotators` fetches: a hub repository file and where it goes. */
export interface AnnotatorDownload {
  type: ControlNetType;
  repo: string;
  /** the file's path in the repository */
  path: string;
  /** where it goes, relative to the models folder */
  dest: string;
  licence: string;
}

/**
 * What `models pull annotators` fetches, per type: the original checkpoints our graph builder builds from (hed,
 * softedge, lineart, mlsd, normal, depth's MiDaS DPT-Hybrid and segmentation's UniFormer + UperNet from
 * lllyasviel/Annotators), and the public ONNX export of openpose (DWPose). face_detector and openpose also work with
 * the bundled MediaPipe models. Depth Anything V2 small (depth's ONNX alternative) and SegFormer (segmentation's ONNX
 * alternative, non-commercial) are not fetched: installed by hand, they are used instead of the checkpoints.
 */
const DOWNLOADS: Partial<Record<ControlNetType, { repo: string; path: string }[]>> = {
  hed: [{ repo: 'lllyasviel/Annotators', path: 'ControlNetHED.pth' }],
  scribble: [{ repo: 'lllyasviel/Annotators', path: 'ControlNetHED.pth' }],
  softedge: [{ repo: 'lllyasviel/Annotators', path: 'table5_pidinet.pth' }],
  lineart: [{ repo: 'lllyasviel/Annotators', path: 'sk_model.pth' }],
  mlsd: [{ repo: 'lllyasviel/Annotators', path: 'mlsd_large_512_fp32.pth' }],
  normal: [{ repo: 'lllyasviel/Annotators', path: 'scannet.pt' }],
  depth: [{ repo: 'lllyasviel/Annotators', path: 'dpt_hybrid-midas-501f0c75.pt' }],
  openpose: [{ repo: 'yzd-v/DWPose', path: 'yolox_l.onnx' }, { repo: 'yzd-v/DWPose', path: 'dw-ll_ucoco_384.onnx' }],
  segmentation: [{ repo: 'lllyasviel/Annotators', path: 'upernet_global_small.pth' }],
};

/** Types `models pull annotators` fetches when no type is named. */
export const DEFAULT_PULL_TYPES: ControlNetType[] = ['hed', 'softedge', 'lineart', 'mlsd', 'normal', 'depth', 'segmentation', 'openpose'];

/** The files to fetch for these types (deduplicated by destination), each into the folder the engine reads. */
export function annotatorDownloads(types: ControlNetType[] = DEFAULT_PULL_TYPES): AnnotatorDownload[] {
  const out = new Map<string, AnnotatorDownload>();
  for (const type of types) {
    const m = MODELS[type]!;
    for (const d of DOWNLOADS[type] ?? []) {
      const file = posixBase(d.path);
      // the checkpoint goes where installedCheckpoint looks for it, under its own licence
      const ckpt = m.checkpoint?.file === file ? m.checkpoint : undefined;
      const dest = `annotator/${ckpt?.folder ?? m.name}/${file}`;
      if (!out.has(dest)) out.set(dest, { type, repo: d.repo, path: d.path, dest, licence: ckpt?.licence ?? m.licence });
    }
  }
  return [...out.values()];
}

const posixBase = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** What auto_hint uses for one control type with this models folder (for `models list` and the API). */
export interface AnnotatorStatus {
  type: ControlNetType;
  /**
   * 'algorithm': no model needed; 'installed': the ONNX files in the models folder; 'checkpoint': the original
   * checkpoint in the models folder, built by our graph builder; 'bundled': models shipped
   * in the npm dependencies; 'fallback': a weaker substitute (scribble from canny); 'missing': auto_hint fails
   */
  state: 'algorithm' | 'installed' | 'checkpoint' | 'bundled' | 'fallback' | 'missing';
  /** what runs: files relative to the models folder, or bundled package files; empty for 'algorithm' */
  uses: string[];
  /** annotator files (relative to the models folder) not installed; installing them replaces a bundled model or a fallback */
  missing: string[];
  /** where the missing files come from and their licence, when any are missing */
  howToGet?: string;
}

/** The annotator status of every control type, in CONTROLNET_TYPES order. */
export function annotatorStatus(modelsDir: string): AnnotatorStatus[] {
  return CONTROLNET_TYPES.map((type): AnnotatorStatus => {
    const m = annotatorModel(type);
    if (!m) return { type, state: 'algorithm', uses: [], missing: [] };
    let missing = m.files.filter((f) => !existsSync(join(modelsDir, 'annotator', f))).map(relative);
    if (missing.length === 0) return { type, state: 'installed', uses: m.files.map(relative), missing };
    if (m.checkpoint) {
      const ckpt = installedCheckpoint(type, modelsDir);
      if (ckpt) return { type, state: 'checkpoint', uses: [relative(ckpt.slice(join(modelsDir, 'annotator').length + 1).split(sep).join('/'))], missing: [] };
      // either file does: the checkpoint users already hold is the one named, the ONNX export is in howToGet
      missing = [relative(m.checkpoint.file)];
    }
    const c = m.checkpoint;
    const licence = c?.licence && c.licence !== m.licence ? `${c.licence} (the ONNX model: ${m.licence})` : m.licence;
    const howToGet = `${c ? `${c.source} (or the ONNX export: ${m.source})` : m.source}; licence: ${licence}`;
    const bundled = BUNDLED[type];
    if (bundled) return { type, state: 'bundled', uses: bundled.models, missing, howToGet };
    if (type === 'scribble') return { type, state: 'fallback', uses: ['canny edges (no model)'], missing, howToGet };
    return { type, state: 'missing', uses: [], missing, howToGet };
  });
}
