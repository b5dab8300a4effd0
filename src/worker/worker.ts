// The job loop: claim the oldest queued job, resolve its images, run the engine, store the outputs, record the
// result and fire the webhook. One job at a time (the engine runs one generation at a time anyway).
import { randomBytes } from 'node:crypto';
import { EngineError } from '../engine/errors.ts';
import type { Engine, PhaseEvent, WorkPlan } from '../engine/pipeline/types.ts';
import type { JobKey } from './eta.ts';
import type { Job, JobResult } from '../jobs/job.ts';
import type { SqliteQueue } from '../jobs/sqlite-queue.ts';
import type { LocalStore } from '../storage/local.ts';
import { InputError, type ImageLimits } from '../inputs/image.ts';
import { engineOptions } from './engine-options.ts';
import { buildMeta } from './meta.ts';
import { outputLinks, outputName } from './outputs.ts';
import type { WebhookSender } from './webhooks.ts';

export interface WorkerMetrics {
  jobFinished(status: 'success' | 'failed', seconds: number): void;
  step(secondsPerStep: number): void;
  /** The engine's work plan for a job, before it runs (for the eta). */
  plan?(jobId: JobKey, plan: WorkPlan): void;
  /** One finished phase of a job (histograms, eta). */
  phase?(jobId: JobKey, e: PhaseEvent): void;
  /** The job left the engine (done, failed or cancelled). */
  jobEnded?(jobId: JobKey): void;
}

export interface WorkerDeps {
  queue: SqliteQueue;
  engine: Engine;
  store: LocalStore;
  webhooks: WebhookSender;
  limits: ImageLimits;
  tempLinkTtlMs: number;
  metrics?: WorkerMetrics;
  log?: { info: (o: object, msg: string) => void; error: (o: object, msg: string) => void };
  name?: string;
  pollMs?: number;
}

/** Maps a failure to the HTTP status a fetch of the job answers and the message it shows. */
export function failureOf(e: unknown): { status: number; message: string } {
  if (e instanceof InputError) return { status: e.statusCode, message: e.message };
  if (e instanceof EngineError) {
    const status = e.code === 'model_missing' ? 422 : e.code === 'bad_input' ? 400 : 500;
    return { status, message: e.message };
  }
  return { status: 500, message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

export class JobWorker {
  readonly name: string;
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private current?: AbortController;

  constructor(private readonly d: WorkerDeps) {
    this.name = d.name ?? `worker-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    const onEnqueued = () => this.wake?.();
    this.d.queue.events.on('enqueued', onEnqueued);
    this.loop = (async () => {
      while (!this.stopping) {
        const job = this.d.queue.claim(this.name);
        if (job) {
          await this.run(job);
          continue;
        }
        // Woken by an enqueue in this process, or by the poll for jobs other processes enqueue.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.d.pollMs ?? 500);
          this.wake = () => { clearTimeout(t); resolve(); };
        });
        this.wake = undefined;
      }
      this.d.queue.events.off('enqueued', onEnqueued);
    })();
  }

  /** Stops claiming; with `abort`, cancels the running job (it stays "running" and is re-queued at next start). */
  async stop(abort = false): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (abort) this.current?.abort();
    await this.loop;
    this.loop = undefined;
  }

  private async run(job: Job): Promise<void> {
    const r = job.request;
    const started = Date.now();
    const ac = new AbortController();
    this.current = ac;
    try {
      const opts = await engineOptions(r, this.d.limits);
      let lastProgressWrite = 0;
      const steps = { count: 0, seconds: 0 };
      const res = await this.d.engine.generate(opts, {
        signal: ac.signal,
        onPlan: (plan) => this.d.metrics?.plan?.(job.id, plan),
        onPhase: (e) => {
          this.d.metrics?.phase?.(job.id, e);
          // one line per phase; the denoising steps as one line when the job ends
          if (e.phase === 'step') { steps.count++; steps.seconds += e.seconds; return; }
          this.d.log?.info({ job: job.id, phase: e.phase, seconds: round3(e.seconds), model: e.model, size: `${e.width}x${e.height}`, network: e.network }, 'phase');
        },
        onProgress: (p) => {
          if (p.step > 0) this.d.metrics?.step(p.elapsed / p.step);
          const now = Date.now();
          if (now - lastProgressWrite > 250 || p.step === p.totalSteps) {
            lastProgressWrite = now;
            this.d.queue.progress(job.id, p.step, p.totalSteps);
          }
        },
      });
      if (steps.count) this.d.log?.info({ job: job.id, phase: 'step', steps: steps.count, seconds: round3(steps.seconds), perStep: round3(steps.seconds / steps.count), model: opts.modelId, size: `${opts.width}x${opts.height}` }, 'phase');
      if (ac.signal.aborted) return; // stopping: leave it running so the next start re-queues it
      const temp = r.temp === 'yes';
      for (let i = 0; i < res.images.length; i++) await this.d.store.put(outputName(job.filePrefix, i), res.images[i]!, temp);
      const links = outputLinks(this.d.store, job, this.d.tempLinkTtlMs).slice(0, res.images.length);
      const result: JobResult = {
        output: r.base64 === 'yes' ? res.images.map((b) => b.toString('base64')) : links,
        proxy_links: links,
        nsfw_content_detected: res.nsfw.some(Boolean),
        generationTime: Math.round(res.seconds * 1000) / 1000,
        meta: buildMeta(r, job.filePrefix, res.applied),
      };
      this.d.queue.complete(job.id, result);
      this.d.metrics?.jobFinished('success', (Date.now() - started) / 1000);
      this.d.log?.info({ job: job.id, seconds: res.seconds }, 'job finished');
      if (r.webhook) {
        this.d.webhooks.enqueue(job.id, r.webhook, { status: 'success', id: job.id, ...result, track_id: r.track_id ?? null });
      }
    } catch (e) {
      if (ac.signal.aborted) return;
      const f = failureOf(e);
      this.d.queue.fail(job.id, f.message, f.status);
      this.d.metrics?.jobFinished('failed', (Date.now() - started) / 1000);
      this.d.log?.error({ job: job.id, status: f.status, err: f.message }, 'job failed');
      if (r.webhook) this.d.webhooks.enqueue(job.id, r.webhook, { status: 'failed', id: job.id, message: f.message, track_id: r.track_id ?? null });
    } finally {
      this.d.metrics?.jobEnded?.(job.id);
      this.current = undefined;
    }
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
