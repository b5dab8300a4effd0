// Loads annotator ONNX models once per path and runs them with float32 tensors.
import { createSession, ort, type Provider } from '../../onnx/session.ts';

const sessions = new Map<string, Promise<ort.InferenceSession>>();
let provider: Provider = 'cpu';

/** The engine's provider (ENGINE_PROVIDER) for annotator sessions; set once when the engine starts. */
export function configureAnnotatorSessions(o: { provider: Provider }): void {
  provider = o.provider;
}

/** The provider every annotator session runs on (configureAnnotatorSessions; cpu until the engine sets it). */
export function annotatorProvider(): Provider {
  return provider;
}

export function annotatorSession(path: string): Promise<ort.InferenceSession> {
  let s = sessions.get(path);
  if (!s) {
    s = createSession(path, { provider, cacheDir: '' });
    // A failed load must not stick: the user may install the file and retry.
    s.catch(() => sessions.delete(path));
    sessions.set(path, s);
  }
  return s;
}

/**
 * A model given as an installed ONNX file's path, or as a ready session (a network built from an original
 * checkpoint, or a bundled MediaPipe model).
 */
export type ModelRef = string | ort.InferenceSession;

/** The session of a model reference (an ONNX path is loaded once and cached). */
export function sessionOf(model: ModelRef): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? annotatorSession(model) : Promise.resolve(model);
}

/** Releases every cached annotator session (tests, shutdown). */
export async function releaseAnnotatorSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => null))?.release()));
}

export interface F32Output {
  dims: readonly number[];
  data: Float32Array;
}

/** Runs the model with one float32 input (its first input name) and returns every output as float32. */
export async function runF32(session: ort.InferenceSession, data: Float32Array, dims: number[]): Promise<F32Output[]> {
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, dims) };
  const out = await session.run(feeds);
  return session.outputNames.map((n) => {
    const t = out[n]!;
    if (t.type !== 'float32') throw new Error(`annotator output ${n} is ${t.type}, expected float32`);
    return { dims: t.dims, data: t.data as Float32Array };
  });
}
