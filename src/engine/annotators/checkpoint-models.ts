// Annotator networks built by our graph builder from the original PyTorch checkpoints users of A1111 / ComfyUI
// already hold (lllyasviel/Annotators), placed in <modelsDir>/annotator/<name>/ beside where the ONNX export
// would go (depth: annotator/midas/, MiDaS DPT-Hybrid, another network than the Depth Anything ONNX model;
// segmentation: annotator/uniformer/, UniFormer + UperNet, another network than the SegFormer ONNX model). The graph is built in memory on first use and the session kept per file (path, size, mtime).
import { graphSession, SessionMemo } from './neural/session.ts';
import { statSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { EngineError } from '../errors.ts';
import { buildHed } from '../models/annotators/hed.ts';
import { buildLineart } from '../models/annotators/lineart.ts';
import { buildMidasDpt } from '../models/annotators/midas.ts';
import { buildMlsd } from '../models/annotators/mlsd.ts';
import { buildPidinet } from '../models/annotators/pidinet.ts';
import { buildNormalBae } from '../models/annotators/normalbae.ts';
import { buildUniformerUpernet } from '../models/annotators/uniformer.ts';
import type { GraphBuilder } from '../onnx/graph.ts';
import type { ort } from '../onnx/session.ts';
import { openWeightsFile } from '../weights/open.ts';
import type { WeightSource } from '../weights/types.ts';
import type { ControlNetType } from '../pipeline/types.ts';

/** The builder of each type that can be built from its original checkpoint. */
const BUILDERS: Partial<Record<ControlNetType, (src: WeightSource, label: string) => GraphBuilder>> = {
  hed: buildHed,
  scribble: buildHed,
  lineart: buildLineart,
  mlsd: buildMlsd,
  softedge: buildPidinet,
  normal: buildNormalBae,
  depth: buildMidasDpt,
  segmentation: (src, label) => buildUniformerUpernet(src, label),
};

const sessions = new SessionMemo<string>();

/** True when the type has a checkpoint builder. */
export function buildsFromCheckpoint(type: ControlNetType): boolean {
  return BUILDERS[type] !== undefined;
}

/**
 * The session of the network built from the checkpoint at `path` (absolute, inside modelsDir). A file that is
 * not the expected checkpoint (wrong or missing keys, unreadable) is an EngineError 'model_missing' (422)
 * naming it relative to the models folder, never by its server path.
 */
export function checkpointSession(type: ControlNetType, path: string, modelsDir: string): Promise<ort.InferenceSession> {
  const build = BUILDERS[type];
  if (!build) throw new Error(`the ${type} annotator has no checkpoint builder`);
  const st = statSync(path);
  const key = `${type}|${path}|${st.size}|${st.mtimeMs}`;
  const rel = relative(modelsDir, path).split(sep).join('/');
  return sessions.get(key, async () => {
    try {
      return await graphSession(build(await openWeightsFile(path), rel));
    } catch (e) {
      const msg = ((e as Error).message ?? String(e)).split(path).join(rel).split(modelsDir).join('<models>');
      throw new EngineError('model_missing', `the ${type} annotator checkpoint ${rel} cannot be used: ${msg}`, `the ${type} annotator (auto_hint)`);
    }
  });
}

/** Releases the checkpoint-built sessions (tests, shutdown). */
export async function releaseCheckpointSessions(): Promise<void> {
  await sessions.releaseAll();
}
