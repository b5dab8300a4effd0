// The MediaPipe TFLite models that ship inside the project's npm dependencies (@mediapipe/face_detection,
// @mediapipe/face_mesh, @mediapipe/pose; Apache-2.0, google-ai-edge/mediapipe), located in node_modules and
// turned into ONNX Runtime sessions by our TFLite importer (weights/tflite.ts + models/tflite-graph.ts).
// Some models are plain .tflite files in the package; others are packed into one `*_packed_assets.data` file
// whose byte ranges the package's `*_packed_assets_loader.js` lists by file name. The iris model is in no npm
// package: it is committed under assets/mediapipe/ (taken from the `mediapipe` 0.10.14 PyPI wheel; see the
// README.md there).
import { graphSession, SessionMemo } from './neural/session.ts';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { tfliteToGraph } from '../models/tflite-graph.ts';
import type { ort } from '../onnx/session.ts';
import { readTflite } from '../weights/tflite.ts';

export type MediapipeModelName = 'face_detection_short_range' | 'face_detection_full_range_sparse' | 'face_landmark' | 'iris_landmark' | 'pose_detection' | 'pose_landmark_full' | 'pose_landmark_lite';

interface Location {
  /** an npm package, or `assets` for a file committed in this repository's assets/ folder */
  pkg: string;
  file: string;
  /** for packed assets: the name inside the loader's file list */
  packed?: { loader: string; name: string };
}

const LOCATIONS: Record<MediapipeModelName, Location> = {
  face_detection_short_range: { pkg: '@mediapipe/face_detection', file: 'face_detection_short_range.tflite' },
  face_detection_full_range_sparse: { pkg: '@mediapipe/face_detection', file: 'face_detection_full_range_sparse.tflite' },
  face_landmark: { pkg: '@mediapipe/face_mesh', file: 'face_mesh_solution_packed_assets.data', packed: { loader: 'face_mesh_solution_packed_assets_loader.js', name: 'face_landmark.tflite' } },
  iris_landmark: { pkg: 'assets', file: 'mediapipe/iris_landmark.tflite' },
  pose_detection: { pkg: '@mediapipe/pose', file: 'pose_solution_packed_assets.data', packed: { loader: 'pose_solution_packed_assets_loader.js', name: 'pose_detection.tflite' } },
  pose_landmark_full: { pkg: '@mediapipe/pose', file: 'pose_landmark_full.tflite' },
  pose_landmark_lite: { pkg: '@mediapipe/pose', file: 'pose_landmark_lite.tflite' },
};

/** Licence of every bundled MediaPipe model (the packages' own licence field and LICENSE). */
export const MEDIAPIPE_LICENCE = 'Apache-2.0 (google-ai-edge/mediapipe, via the @mediapipe npm packages)';

const require = createRequire(import.meta.url);

const ASSETS_DIR = join(import.meta.dirname, '..', '..', '..', 'assets');

function packageDir(pkg: string): string {
  return pkg === 'assets' ? ASSETS_DIR : dirname(require.resolve(`${pkg}/package.json`));
}

/** Where the model comes from, for messages and meta: "<package>/<file>[#<packed name>]". */
export function mediapipeModelSource(name: MediapipeModelName): string {
  const l = LOCATIONS[name];
  return `${l.pkg}/${l.file}${l.packed ? `#${l.packed.name}` : ''}`;
}

/**
 * The .tflite bytes of a bundled MediaPipe model. Throws naming the package when it is not installed (or the
 * file's path in the repository, for assets/, when it is missing).
 */
export function mediapipeModelBytes(name: MediapipeModelName): Uint8Array {
  const l = LOCATIONS[name];
  let dir: string;
  try {
    dir = packageDir(l.pkg);
  } catch {
    throw new Error(`the npm package ${l.pkg} is not installed (run npm ci)`);
  }
  if (l.pkg === 'assets' && !existsSync(join(dir, l.file))) throw new Error(`the bundled model assets/${l.file} is missing from this installation`);
  const bytes = readFileSync(join(dir, l.file));
  if (!l.packed) return bytes;
  const js = readFileSync(join(dir, l.packed.loader), 'utf8');
  const esc = l.packed.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`"filename":\\s*"[^"]*/${esc}",\\s*"start":\\s*(\\d+),\\s*"end":\\s*(\\d+)`).exec(js);
  if (!m) throw new Error(`${l.pkg}/${l.packed.loader} does not list ${l.packed.name}`);
  return bytes.subarray(Number(m[1]), Number(m[2]));
}

const sessions = new SessionMemo<MediapipeModelName>();

/**
 * An ONNX Runtime session of the bundled model, built in memory from its TFLite file on first use (a few
 * hundred ms) and kept. Inputs and outputs keep the TFLite names and NHWC shapes.
 */
export function mediapipeSession(name: MediapipeModelName): Promise<ort.InferenceSession> {
  return sessions.get(name, async () => graphSession(tfliteToGraph(readTflite(mediapipeModelBytes(name)), name)));
}

/** Releases the bundled models' sessions (tests, shutdown). */
export async function releaseMediapipeSessions(): Promise<void> {
  await sessions.releaseAll();
}
