// The job loop: claim the oldest queued job, resolve its images, run the engine, store the outputs, record the
// result and fire the webhook. One job at a time (the engine runs one generation at a time anyway).
import { randomBytes } from 'node:crypto';
import { EngineError, HTTP_STATUS } from '../engine/errors.ts';
import { clientMessage } from '../client-message.ts';
import type { Engine } from '../engine/pipeline/types.ts';
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

/**
 * Maps a failure to the HTTP status a fetch of the job answers and the message it (and the webhook) shows;
 * the message never holds a server path (client-message.ts).
 */
export function failureOf(e: unknown): { status: number; message: string } {
  const f = rawFailureOf(e);
  return { status: f.status, message: clientMessage(f.message) };
}

function rawFailureOf(e: unknown): { status: number; message: string } {
  if (e instanceof InputError) return { status: e.statusCode, message: e.message };
  if (e instanceof EngineError) {
    const status = HTTP_STATUS[e.code];
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
      const res = await this.d.engine.generate(opts, {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.step > 0) this.d.metrics?.step(p.elapsed / p.step);
          const now = Date.now();
          if (now - lastProgressWrite > 250 || p.step === p.totalSteps) {
            lastProgressWrite = now;
            this.d.queue.progress(job.id, p.step, p.totalSteps);
          }
        },
      });
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
      this.current = undefined;
    }
  }
}
