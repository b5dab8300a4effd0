// Loaded networks, kept in memory under a budget: least recently used sessions are released first, but never
// one that a running request holds.
import { statSync } from 'node:fs';
import type { ort } from '../onnx/session.ts';

interface Entry {
  session: Promise<ort.InferenceSession>;
  mb: number;
  lastUsed: number;
  users: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;

  constructor(readonly budgetMB: number) {}

  /** Size of a compiled model on disk (graph + external data), our estimate of its resident memory. */
  static modelMB(path: string): number {
    let bytes = statSync(path).size;
    try {
      bytes += statSync(`${path}.data`).size;
    } catch {
      // no external data: all weights inline
    }
    return bytes / 2 ** 20;
  }

  /** Runs fn with the session for key (created by load on a miss), holding it against eviction meanwhile. */
  async use<T>(key: string, load: () => Promise<{ session: ort.InferenceSession; mb: number }>, fn: (s: ort.InferenceSession) => Promise<T>): Promise<T> {
    const s = await this.acquire(key, load);
    try {
      return await fn(s);
    } finally {
      this.release(key);
    }
  }

  async acquire(key: string, load: () => Promise<{ session: ort.InferenceSession; mb: number }>): Promise<ort.InferenceSession> {
    let e = this.entries.get(key);
    if (!e) {
      const loading = load();
      e = { session: loading.then((l) => l.session), mb: 0, lastUsed: 0, users: 0 };
      this.entries.set(key, e);
      const entry = e;
      loading.then((l) => { entry.mb = l.mb; this.evict(); }, () => this.entries.delete(key));
    }
    e.users++;
    e.lastUsed = ++this.clock;
    return e.session;
  }

  release(key: string): void {
    const e = this.entries.get(key);
    if (e) e.users = Math.max(0, e.users - 1);
    this.evict();
  }

  private evict(): void {
    let total = [...this.entries.values()].reduce((a, e) => a + e.mb, 0);
    const idle = [...this.entries.entries()].filter(([, e]) => e.users === 0 && e.mb > 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of idle) {
      if (total <= this.budgetMB) break;
      this.entries.delete(key);
      total -= e.mb;
      void e.session.then((s) => s.release());
    }
  }

  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.session.then((s) => s.release(), () => undefined)));
  }

  loaded(): { key: string; mb: number }[] {
    return [...this.entries.entries()].map(([key, e]) => ({ key, mb: Math.round(e.mb) }));
  }
}
