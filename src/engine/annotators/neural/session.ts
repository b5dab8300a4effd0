// Loads annotator ONNX models once per path and runs them with float32 tensors.
import type { GraphBuilder } from '../../onnx/graph.ts';
import { encodeModel } from '../../onnx/serialize.ts';
import { createSession, ort, sessionOptions, type Provider } from '../../onnx/session.ts';

import { SessionMemo } from '../../onnx/session-memo.ts';

export { SessionMemo };

/** A graph built in memory (a checkpoint or TFLite import) as a session on the annotators' provider. */
export async function graphSession(graph: GraphBuilder): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(await encodeModel(graph), sessionOptions({ provider, cacheDir: '' }));
}

const sessions = new SessionMemo<string>();
let provider: Provider = 'cpu';

/** The engine's provider (ENGINE_PROVIDER) for annotator sessions; set once when the engine starts. */
export function configureAnnotatorSessions(o: { provider: Provider }): void {
  provider = o.provider;
}

export function annotatorSession(path: string): Promise<ort.InferenceSession> {
  return sessions.get(path, () => createSession(path, { provider, cacheDir: '' }));
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
  await sessions.releaseAll();
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
