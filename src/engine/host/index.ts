// createEngine(): the Engine interface backed by a worker thread (see worker.ts). If the worker dies, pending
// requests fail with an internal error and the next request starts a fresh worker.
import { Worker } from 'node:worker_threads';
import { EngineError } from '../errors.ts';
import type { Engine, GenerateHooks, GenerateOptions, GenerateResult, HintRequest } from '../pipeline/types.ts';
import type { EngineConfig, EngineStats, FromWorker, ToWorker } from './protocol.ts';

export type { EngineConfig, EngineStats } from './protocol.ts';

interface Pending {
  resolve: (r: any) => void;
  reject: (e: Error) => void;
  hooks?: GenerateHooks;
}

const WORKER_URL = new URL('./worker-entry.mjs', import.meta.url);

export class WorkerEngine implements Engine {
  private worker?: Worker;
  private ready?: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly config: EngineConfig) {}

  /** Starts the worker (idempotent); rejects with the worker's own message if the pipeline cannot start. */
  start(): Promise<void> {
    if (this.ready) return this.ready;
    const worker = new Worker(WORKER_URL, { workerData: this.config });
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') return resolve();
        if (m.type === 'fatal') return reject(new Error(m.message));
        const p = this.pending.get(m.id);
        if (!p) return;
        if (m.type === 'progress') return p.hooks?.onProgress?.(m.progress);
        if (m.type === 'plan') return p.hooks?.onPlan?.(m.plan);
        if (m.type === 'phase') return p.hooks?.onPhase?.(m.phase);
        this.pending.delete(m.id);
        if (m.type === 'result') p.resolve({ ...m.result, images: m.result.images.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) });
        else if (m.type === 'stats') p.resolve(m.stats);
        else if (m.type === 'hints') p.resolve(m.images.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
        else p.reject(EngineError.from(m.error));
      });
      const fail = (e: Error): void => {
        reject(e);
        for (const p of this.pending.values()) p.reject(new EngineError('internal', `engine worker stopped: ${e.message}`));
        this.pending.clear();
        this.worker = undefined;
        this.ready = undefined;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    });
    return this.ready;
  }

  private async call<T>(make: (id: number) => ToWorker, hooks?: GenerateHooks): Promise<T> {
    await this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, hooks });
      this.worker!.postMessage(make(id));
    });
  }

  private cancel(id: number): void {
    this.worker?.postMessage({ type: 'cancel', id } satisfies ToWorker);
  }

  async generate(opts: GenerateOptions, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    let sent = -1;
    const onAbort = (): void => { if (sent > 0) this.cancel(sent); };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.call<GenerateResult>((id) => {
        sent = id;
        // an abort while the worker was starting had no id to cancel: the worker gets the request and its cancel
        // in that order, and drops it before it starts
        if (hooks.signal?.aborted) queueMicrotask(() => this.cancel(id));
        return { type: 'generate', id, opts };
      }, hooks);
    } finally {
      hooks.signal?.removeEventListener('abort', onAbort);
    }
  }

  hint(req: HintRequest): Promise<Buffer[]> {
    return this.call<Buffer[]>((id) => ({ type: 'hint', id, req }));
  }

  stats(): Promise<EngineStats> {
    return this.call<EngineStats>((id) => ({ type: 'stats', id }));
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
    for (const p of this.pending.values()) p.reject(new EngineError('cancelled', 'engine closed'));
    this.pending.clear();
  }
}

/** Starts the engine worker and waits until its pipeline is ready (providers checked, models folder found). */
export async function createEngine(config: EngineConfig): Promise<WorkerEngine> {
  const engine = new WorkerEngine(config);
  await engine.start();
  return engine;
}
