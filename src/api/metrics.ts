// Prometheus metrics (/metrics): queue depth, job durations, denoising step times, each engine phase's seconds
// (hash, build, load, encode, annotate, vae_encode, step, decode, safety_check, upscale) by model and size, HTTP
// request durations.
// It also keeps the eta model the fetch answers read (worker/eta.ts), fed by the same phase events, its rates kept
// in the DATA_DIR database when a store is given.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PhaseEvent, WorkPlan } from '../engine/pipeline/types.ts';
import { EtaModel, type JobKey, type RateStore } from '../worker/eta.ts';
import type { WorkerMetrics } from '../worker/worker.ts';

export class Metrics implements WorkerMetrics {
  readonly registry = new Registry();
  private readonly jobSeconds: Histogram<'status'>;
  private readonly stepSeconds: Histogram;
  readonly httpSeconds: Histogram<'route' | 'status'>;
  readonly rejected: Counter<'reason'>;
  private readonly phaseSeconds: Histogram<'phase' | 'model' | 'size'>;
  /** Seconds per unit of each phase measured on this server, and the plans of running jobs. */
  readonly eta: EtaModel;

  constructor(depth: () => { queued: number; running: number }, rates?: RateStore) {
    this.eta = new EtaModel({ store: rates });
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'controlnet_queue_jobs', help: 'Jobs waiting or running', labelNames: ['state'], registers: [this.registry],
      collect() {
        const d = depth();
        this.set({ state: 'queued' }, d.queued);
        this.set({ state: 'running' }, d.running);
      },
    });
    this.jobSeconds = new Histogram({ name: 'controlnet_job_seconds', help: 'Job run time (claim to result)', labelNames: ['status'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600], registers: [this.registry] });
    this.stepSeconds = new Histogram({ name: 'controlnet_step_seconds', help: 'Mean seconds per denoising step, per progress report',
      buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40], registers: [this.registry] });
    this.httpSeconds = new Histogram({ name: 'controlnet_http_seconds', help: 'HTTP request durations', labelNames: ['route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30], registers: [this.registry] });
    this.phaseSeconds = new Histogram({ name: 'controlnet_phase_seconds', help: 'Seconds of each engine phase (hash, translate, enhance, build, load, encode, annotate, vae_encode, step: one denoising step, decode, safety_check, upscale)',
      labelNames: ['phase', 'model', 'size'], buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160], registers: [this.registry] });
    this.rejected = new Counter({ name: 'controlnet_rejected_total', help: 'Requests refused, by reason', labelNames: ['reason'], registers: [this.registry] });
  }

  jobFinished(status: 'success' | 'failed', seconds: number): void {
    this.jobSeconds.observe({ status }, seconds);
  }

  plan(jobId: JobKey, plan: WorkPlan): void {
    this.eta.start(jobId, plan);
  }

  phase(jobId: JobKey, e: PhaseEvent): void {
    // build and load are labelled with the network's model id, the rest with the base model
    const model = e.network ?? e.model;
    this.phaseSeconds.observe({ phase: e.phase, model, size: `${e.width}x${e.height}` }, e.seconds);
    this.eta.phase(jobId, e);
  }

  jobEnded(jobId: JobKey): void {
    this.eta.finish(jobId);
  }

  remaining(jobId: JobKey): number | undefined {
    return this.eta.remaining(jobId);
  }

  step(secondsPerStep: number): void {
    this.stepSeconds.observe(secondsPerStep);
  }
}
