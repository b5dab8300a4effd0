// Loads annotator ONNX models once per path and runs them with float32 tensors.
import type { GraphBuilder } from '../../onnx/graph.ts';
import { encodeModel } from '../../onnx/serialize.ts';
import { createSession, ort, sessionOptions, type Provider } from '../../onnx/session.ts';

/**
 * Sessions made once per key and kept; a failed one is forgotten, so the user may install or fix the file and
 * retry. Shared by installed ONNX files, checkpoint-built networks and the bundled MediaPipe models.
 */
export class SessionMemo<K> {
  private readonly sessions = new Map<K, Promise<ort.InferenceSession>>();

  get(key: K, make: () => Promise<ort.InferenceSession>): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = make();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Releases every session (tests, shutdown). */
  async releaseAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => null))?.release()));
  }
}

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
