// Loaded networks, kept in memory under a budget on what the process really holds (its resident memory, RSS).
// Each session is charged what it measurably added: the RSS growth while it loaded, plus the growth during its
// first run (ONNX Runtime's arena and activation buffers). Before a load, least recently used idle sessions are
// released until the process's RSS plus the newcomer's expected size fits the budget; after a first run or a
// release, until the process fits again. A session that a running request holds is never released. The extras'
// models (safety checker, upscaler, translator, prompt enhancer: their sessions and tables) live under the same
// budget as resources (useResource): their load and first use are measured the same way.
import { statSync } from 'node:fs';
import type { ort } from '../onnx/session.ts';
import { processRssMB } from './memory.ts';

/** What the cache can hold: an ONNX Runtime session, or an extra's model (its sessions and tables). */
export interface Releasable {
  release(): Promise<void>;
}

/** Something to be loaded: its expected resident size, and how to create it. */
export interface ResourcePlan<R extends Releasable> {
  /** Expected resident MB when nothing was measured for this key yet (a session: SessionCache.modelMB × 2; an
   * extra's model: twice its weight files). */
  estimateMB: number;
  create(): Promise<R>;
}

/** A session to be loaded (acquire, use). */
export type SessionPlan = ResourcePlan<ort.InferenceSession>;

interface Entry {
  session: Promise<Releasable>;
  /** RSS growth (MB) while the session was created. */
  loadMB: number;
  /** RSS growth (MB) during its first run; undefined until it ran. */
  runMB?: number;
  lastUsed: number;
  users: number;
  ready: boolean;
  /** A resource's first use is being measured (useResource). */
  metering?: boolean;
}

export interface LoadedSessionStats {
  key: string;
  /** Charged resident MB: load + first run, rounded. */
  mb: number;
  loadMB: number;
  runMB: number | null;
}

export interface SessionCacheOptions {
  /** The process's resident memory ceiling in MB. */
  budgetMB: number;
  /** The process's resident memory now, MB (tests may substitute a model of it). */
  rssMB?: () => number;
  /** Called with each session released to stay under the budget. */
  onEvict?: (key: string, mb: number) => void;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  /** What each key measured when it was last loaded and run: the expected size of its next load. */
  private readonly measured = new Map<string, number>();
  private clock = 0;
  private evictions = 0;
  readonly budgetMB: number;
  private readonly rss: () => number;

  constructor(opts: SessionCacheOptions | number) {
    const o = typeof opts === 'number' ? { budgetMB: opts } : opts;
    this.budgetMB = o.budgetMB;
    this.rss = o.rssMB ?? processRssMB;
    this.onEvict = o.onEvict;
  }

  private readonly onEvict?: (key: string, mb: number) => void;

  /** Size of a compiled model on disk (graph + external data) in MB: the floor of its resident memory. */
  static modelMB(path: string): number {
    let bytes = statSync(path).size;
    try {
      bytes += statSync(`${path}.data`).size;
    } catch {
      // no external data: all weights inline
    }
    return bytes / 2 ** 20;
  }

  /** Whether key is loaded (or loading). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Runs fn with the session for key (created by plan on a miss), holding it against eviction meanwhile. */
  async use<T>(key: string, plan: () => Promise<SessionPlan>, fn: (s: ort.InferenceSession) => Promise<T>): Promise<T> {
    const s = await this.acquire(key, plan);
    try {
      return await fn(s);
    } finally {
      this.release(key);
    }
  }

  /**
   * The session for key, held until release(key). On a miss, `plan` says what the load will cost; idle sessions
   * are released first to make room, then the session is created and its RSS growth measured.
   */
  async acquire(key: string, plan: () => Promise<SessionPlan>): Promise<ort.InferenceSession> {
    return this.acquireEntry(key, plan, true) as Promise<ort.InferenceSession>;
  }

  /**
   * Runs fn with a resource other than a session (an extra's model) under the same budget: created by `plan` on a
   * miss with its RSS growth measured, the growth during its first use charged to it too, held against eviction
   * while fn runs. A failed creation is forgotten (the next call tries again) and its error thrown.
   */
  async useResource<R extends Releasable, T>(key: string, plan: () => Promise<ResourcePlan<R>>, fn: (r: R) => Promise<T>): Promise<T> {
    const r = (await this.acquireEntry(key, plan, false)) as R;
    const e = this.entries.get(key);
    try {
      if (!e || e.runMB !== undefined || e.metering) return await fn(r);
      e.metering = true;
      const before = this.rss();
      try {
        return await fn(r);
      } finally {
        e.runMB = Math.max(0, this.rss() - before);
        this.measured.set(key, e.loadMB + e.runMB);
      }
    } finally {
      this.release(key);
    }
  }

  private async acquireEntry(key: string, plan: () => Promise<ResourcePlan<Releasable>>, session: boolean): Promise<Releasable> {
    let e = this.entries.get(key);
    if (!e) {
      const entry: Entry = { session: undefined as unknown as Promise<Releasable>, loadMB: 0, lastUsed: 0, users: 0, ready: false };
      entry.session = this.load(key, entry, plan, session);
      this.entries.set(key, entry);
      entry.session.catch(() => this.entries.delete(key));
      e = entry;
    }
    e.users++;
    e.lastUsed = ++this.clock;
    return e.session;
  }

  private async load(key: string, entry: Entry, plan: () => Promise<ResourcePlan<Releasable>>, session: boolean): Promise<Releasable> {
    const p = await plan();
    this.makeRoom(this.measured.get(key) ?? p.estimateMB, key);
    const before = this.rss();
    const made = await p.create();
    entry.loadMB = Math.max(0, this.rss() - before);
    entry.ready = true;
    if (session) this.meterFirstRun(key, entry, made as ort.InferenceSession);
    return made;
  }

  /** Wraps session.run so that its first call's RSS growth is charged to the session. */
  private meterFirstRun(key: string, entry: Entry, session: ort.InferenceSession): void {
    const run = session.run.bind(session) as (...a: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
    (session as { run: unknown }).run = async (...args: unknown[]) => {
      if (entry.runMB !== undefined) return run(...args);
      const before = this.rss();
      const out = await run(...args);
      entry.runMB = Math.max(0, this.rss() - before);
      this.measured.set(key, entry.loadMB + entry.runMB);
      this.enforce(key);
      return out;
    };
  }

  release(key: string): void {
    const e = this.entries.get(key);
    if (e) e.users = Math.max(0, e.users - 1);
    this.enforce();
  }

  private charged(e: Entry): number {
    return e.loadMB + (e.runMB ?? 0);
  }

  /** Releases idle sessions, least recently used first, until RSS (less what they free) + needMB fits. */
  private makeRoom(needMB: number, except?: string): void {
    let expected = this.rss();
    if (expected + needMB <= this.budgetMB) return;
    const idle = [...this.entries.entries()]
      .filter(([k, e]) => k !== except && e.users === 0 && e.ready)
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of idle) {
      if (expected + needMB <= this.budgetMB) break;
      this.entries.delete(key);
      expected -= this.charged(e);
      this.evictions++;
      this.onEvict?.(key, this.charged(e));
      void e.session.then((s) => s.release());
    }
  }

  private enforce(except?: string): void {
    this.makeRoom(0, except);
  }

  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.session.then((s) => s.release(), () => undefined)));
  }

  /** The loaded sessions with what each was measured to hold. */
  loaded(): LoadedSessionStats[] {
    return [...this.entries.entries()].map(([key, e]) => ({
      key, mb: Math.round(this.charged(e)), loadMB: Math.round(e.loadMB), runMB: e.runMB === undefined ? null : Math.round(e.runMB),
    }));
  }

  /** Sessions released to keep under the budget so far. */
  evictionCount(): number {
    return this.evictions;
  }
}
