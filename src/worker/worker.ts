// The job loop: claim the next job with a lease, keep the lease alive while the engine runs, resolve its images,
// run the engine, store the outputs, and record the result together with its webhook (first completion wins).
// One job at a time (the engine runs one generation at a time anyway). The same loop serves both queue backends.
import { randomBytes } from 'node:crypto';
import { EngineError, HTTP_STATUS } from '../engine/errors.ts';
import { clientMessage } from '../client-message.ts';
import type { Engine, PhaseEvent, WorkPlan } from '../engine/pipeline/types.ts';
import type { JobKey } from './eta.ts';
import type { Job, JobResult } from '../jobs/job.ts';
import type { ClaimOptions, JobQueue } from '../jobs/queue.ts';
import type { OutputStore } from '../storage/store.ts';
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
  /** Seconds until a job running here is done (worker/eta.ts), undefined before its plan. */
  remaining?(jobId: JobKey): number | undefined;
}

export interface WorkerDeps {
  queue: JobQueue;
  engine: Engine;
  store: OutputStore;
  webhooks: WebhookSender;
  limits: ImageLimits;
  tempLinkTtlMs: number;
  /** Lease length (ms); renewed every lockMs/3 while a job runs. */
  lockMs: number;
  /** How often this worker looks for jobs whose lease expired (ms; default lockMs/2). */
  stalledIntervalMs?: number;
  metrics?: WorkerMetrics;
  log?: { info: (o: object, msg: string) => void; error: (o: object, msg: string) => void; warn?: (o: object, msg: string) => void };
  name?: string;
  pollMs?: number;
  /** Pool only: the server whose pinned jobs this worker runs. */
  server?: string;
  /** Pool only: the base models this server may run, loaded ones first. */
  models?: () => ClaimOptions['models'];
  /** Told when a job starts and ends here (the pool's heartbeat reports it). */
  onBusy?: (job: Job | undefined, outcome?: 'success' | 'failed') => void;
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
  private current?: { id: number; token: string; ac: AbortController; handBack: boolean };
  private stalledTimer?: NodeJS.Timeout;

  constructor(private readonly d: WorkerDeps) {
    this.name = d.name ?? `worker-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** The job running here now. */
  get running(): number | undefined {
    return this.current?.id;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    const off = this.d.queue.onAdded(() => this.wake?.());
    // A live worker takes back the jobs of dead ones once their lease expired (D1), and only those (D2).
    const sweep = () => void this.d.queue.moveStalledJobsToWait().then((r) => {
      if (r.requeued.length || r.failed.length) this.d.log?.info(r, 'jobs whose lease expired were taken back');
    }, (e: Error) => this.d.log?.error({ err: e.message }, 'stalled-job check failed'));
    sweep();
    this.stalledTimer = setInterval(sweep, this.d.stalledIntervalMs ?? Math.max(250, this.d.lockMs / 2));
    this.stalledTimer.unref();
    this.loop = (async () => {
      while (!this.stopping) {
        let active;
        try {
          active = await this.d.queue.moveToActive({ worker: this.name, server: this.d.server, lockMs: this.d.lockMs, models: this.d.models?.() });
        } catch (e) {
          this.d.log?.error({ err: (e as Error).message }, 'claiming a job failed');
        }
        if (active) {
          await this.run(active.job, active.token);
          continue;
        }
        // Woken by an added job (this process, or the pool's events), else by the poll.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.d.pollMs ?? 500);
          this.wake = () => { clearTimeout(t); resolve(); };
        });
        this.wake = undefined;
      }
      off();
    })();
  }

  /**
   * Stops claiming. The running job finishes (`handBack` false), or is cancelled and handed back to the queue at
   * once for another worker (`handBack` true: graceful shutdown, engine restart).
   */
  async stop(handBack = false): Promise<void> {
    this.stopping = true;
    clearInterval(this.stalledTimer);
    this.wake?.();
    if (handBack && this.current) {
      this.current.handBack = true;
      this.current.ac.abort();
    }
    await this.loop;
    this.loop = undefined;
  }

  private async run(job: Job, token: string): Promise<void> {
    const r = job.request;
    const started = Date.now();
    const ac = new AbortController();
    const cur = { id: job.id, token, ac, handBack: false };
    this.current = cur;
    this.d.onBusy?.(job);
    let outcome: 'success' | 'failed' | undefined;
    // Renew the lease while the engine runs (it runs on its own thread: this timer is never starved). A lost lease
    // (the job was taken back, or finished by another run) cancels this run: its outputs would be discarded.
    const renew = setInterval(() => {
      void this.d.queue.extendLock(job.id, token, this.d.lockMs).then((ok) => {
        if (!ok && !ac.signal.aborted) {
          this.d.log?.warn?.({ job: job.id }, 'lease lost; cancelling this run');
          ac.abort();
        }
      }, () => undefined);
    }, Math.max(50, Math.floor(this.d.lockMs / 3)));
    try {
      const opts = await engineOptions(r, this.d.limits);
      let lastProgressWrite = 0;
      const progress = { step: 0, totalSteps: r.num_inference_steps };
      // progress with this server's eta (any server's fetch answers from it); at most every 250 ms unless `force`
      const writeProgress = (force: boolean) => {
        const now = Date.now();
        if (!force && now - lastProgressWrite <= 250) return;
        lastProgressWrite = now;
        const seconds = this.d.metrics?.remaining?.(job.id);
        const eta = seconds === undefined ? undefined : { seconds: Math.round(seconds * 1000) / 1000, at: now };
        void this.d.queue.updateProgress(job.id, token, progress.step, progress.totalSteps, eta).catch(() => undefined);
      };
      const steps = { count: 0, seconds: 0 };
      const res = await this.d.engine.generate(opts, {
        signal: ac.signal,
        onPlan: (plan) => {
          this.d.metrics?.plan?.(job.id, plan);
          writeProgress(true);
        },
        onPhase: (e) => {
          this.d.metrics?.phase?.(job.id, e);
          // a phase's end changes the eta most (its rate was just learned); steps write through onProgress
          if (e.phase !== 'step') writeProgress(true);
          // one line per phase; the denoising steps as one line when the job ends
          if (e.phase === 'step') { steps.count++; steps.seconds += e.seconds; return; }
          this.d.log?.info({ job: job.id, phase: e.phase, seconds: round3(e.seconds), model: e.model, size: `${e.width}x${e.height}`, network: e.network }, 'phase');
        },
        onProgress: (p) => {
          if (p.step > 0) this.d.metrics?.step(p.elapsed / p.step);
          progress.step = p.step;
          progress.totalSteps = p.totalSteps;
          writeProgress(p.step === p.totalSteps);
        },
      });
      if (steps.count) this.d.log?.info({ job: job.id, phase: 'step', steps: steps.count, seconds: round3(steps.seconds), perStep: round3(steps.seconds / steps.count), model: opts.modelId, size: `${opts.width}x${opts.height}` }, 'phase');
      if (ac.signal.aborted) return;
      // Another run finished it first: discard these outputs (D2's duplicates end here).
      const state = await this.d.queue.getJobState(job.id);
      if (state === undefined || state === 'success' || state === 'failed') return;
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
      const webhook = r.webhook ? { url: r.webhook, body: { status: 'success', id: job.id, ...result, track_id: r.track_id ?? null } } : undefined;
      if (await this.d.queue.moveToCompleted(job.id, token, result, webhook)) {
        outcome = 'success';
        this.d.metrics?.jobFinished('success', (Date.now() - started) / 1000);
        this.d.log?.info({ job: job.id, seconds: res.seconds }, 'job finished');
        if (webhook) void this.d.webhooks.deliverDue();
      }
    } catch (e) {
      if (ac.signal.aborted) return;
      const f = failureOf(e);
      const webhook = r.webhook ? { url: r.webhook, body: { status: 'failed', id: job.id, message: f.message, track_id: r.track_id ?? null } } : undefined;
      if (await this.d.queue.moveToFailed(job.id, token, { message: f.message, httpStatus: f.status }, webhook).catch(() => false)) {
        outcome = 'failed';
        this.d.metrics?.jobFinished('failed', (Date.now() - started) / 1000);
        this.d.log?.error({ job: job.id, status: f.status, err: f.message }, 'job failed');
        if (webhook) void this.d.webhooks.deliverDue();
      }
    } finally {
      clearInterval(renew);
      if (cur.handBack) await this.d.queue.moveToWait(job.id, token).catch(() => undefined);
      this.d.metrics?.jobEnded?.(job.id);
      this.current = undefined;
      this.d.onBusy?.(undefined, outcome);
    }
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
