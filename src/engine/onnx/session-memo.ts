// A promise of an ONNX Runtime session per key, made once.
import type { ort } from './session.ts';

/**
 * Sessions made once per key and kept; a failed one is forgotten, so the user may install or fix the file and
 * retry. Shared by the annotators (installed ONNX files, checkpoint-built networks, the bundled MediaPipe models)
 * and the device helper graphs (device.ts).
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
