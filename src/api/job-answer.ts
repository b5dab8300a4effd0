// The answer for a job in any state: success, processing (with eta and future links) or error.
import type { Job } from '../jobs/job.ts';
import type { AppContext } from './context.ts';
import { failedBody, processingBody, successBody } from './responses.ts';
import { outputLinks } from '../worker/outputs.ts';

/**
 * Seconds until the job is likely done: the work ahead of it plus its own, at the measured throughput. A job
 * running here answers from its engine work plan and the per-phase throughput measured (worker/eta.ts).
 */
export async function etaSeconds(ctx: AppContext, job: Job): Promise<number> {
  const r = job.request;
  const planned = job.status === 'running' ? ctx.metrics.eta.remaining(job.id) : undefined;
  if (planned !== undefined) return Math.max(0.1, Math.round(planned * 10) / 10);
  const perStep = ctx.metrics.secondsPerStep();
  const perJob = perStep !== undefined ? perStep * r.num_inference_steps : (await ctx.queue.meanJobSeconds()) ?? r.num_inference_steps;
  const ahead = job.status === 'queued' ? await ctx.queue.ahead(job.id) : 0;
  const ownLeft = job.status === 'running' && job.totalSteps > 0 ? perJob * (1 - job.step / job.totalSteps) : perJob;
  return Math.max(0.1, Math.round((ahead * perJob + ownLeft) * 10) / 10);
}

export async function answerFor(ctx: AppContext, job: Job): Promise<{ status: number; body: Record<string, unknown> }> {
  if (job.status === 'success') return { status: 200, body: successBody(job) };
  if (job.status === 'failed') return { status: job.errorStatus ?? 500, body: failedBody(job) };
  return { status: 200, body: processingBody(job, await etaSeconds(ctx, job), outputLinks(ctx.store, job, ctx.config.tempLinkTtlMs)) };
}
