// The answer for a job in any state: success, processing (with eta and future links) or error.
import type { Job } from '../jobs/job.ts';
import type { AppContext } from './context.ts';
import { failedBody, processingBody, successBody } from './responses.ts';
import { outputLinks } from '../worker/outputs.ts';
import { requestShape } from '../worker/engine-options.ts';
import { flatWork, requestWork } from '../engine/pipeline/work.ts';
import { EtaModel } from '../worker/eta.ts';

/** Jobs ahead of a queued one that are looked at one by one (further ones are not counted). */
const AHEAD_LIMIT = 200;

/** Seconds a job's work takes by its request alone (networks assumed loaded: their builds and loads are not counted). */
function requestSeconds(ctx: AppContext, job: Job): number {
  const eta = ctx.metrics.eta;
  return eta.predict(eta.workOf(job.id, () => flatWork(requestWork(requestShape(job.request)))));
}

/**
 * Seconds until a running job is done: from its engine plan when it runs in this process (worker/eta.ts); else
 * from the eta its runner wrote with its progress (another server of the pool, or a `worker` process beside a
 * `serve --no-worker`), run down by the time since; else (the runner has not planned yet) its request's predicted
 * seconds less the time it has run (at least a tenth of them).
 */
function runningSeconds(ctx: AppContext, job: Job): number {
  const planned = ctx.metrics.eta.remaining(job.id);
  if (planned !== undefined) return planned;
  if (job.eta && (job.startedAt === undefined || job.eta.at >= job.startedAt)) return Math.max(0, job.eta.seconds - (Date.now() - job.eta.at) / 1000);
  const total = requestSeconds(ctx, job);
  const ran = job.startedAt !== undefined ? (Date.now() - job.startedAt) / 1000 : 0;
  return Math.max(total / 10, total - ran);
}

/** The remaining seconds of the running jobs and the predicted seconds of the queued ones, of those before `id`. */
async function workAhead(ctx: AppContext, id: number): Promise<{ running: number[]; queued: number[] }> {
  const ahead = await ctx.queue.jobsAhead(id, AHEAD_LIMIT);
  return {
    running: ahead.filter((j) => j.status === 'running').map((j) => runningSeconds(ctx, j)),
    queued: ahead.filter((j) => j.status === 'queued').map((j) => requestSeconds(ctx, j)),
  };
}

/** Seconds until the workers have done every job queued or running now (system_details' queue_time). */
export async function queueSeconds(ctx: AppContext): Promise<number> {
  const w = await workAhead(ctx, Number.MAX_SAFE_INTEGER);
  return EtaModel.queued(w.running, w.queued, 0, await ctx.workers());
}

/**
 * Seconds until the job is likely done, at the seconds per unit of work measured on this server per phase
 * (worker/eta.ts). Running: what its plan has left (or its runner's eta). Queued: the jobs ahead of it (those
 * running, what they have left; those queued, their request's work) dealt to the workers sharing the queue (the
 * pool's live servers that run jobs; 1 on one machine), then its own request's work.
 */
export async function etaSeconds(ctx: AppContext, job: Job): Promise<number> {
  let s: number;
  if (job.status === 'running') s = runningSeconds(ctx, job);
  else {
    const w = await workAhead(ctx, job.id);
    s = EtaModel.queued(w.running, w.queued, requestSeconds(ctx, job), await ctx.workers());
  }
  return Math.max(0.1, Math.round(s * 10) / 10);
}

export async function answerFor(ctx: AppContext, job: Job): Promise<{ status: number; body: Record<string, unknown> }> {
  if (job.status === 'success') return { status: 200, body: successBody(job) };
  if (job.status === 'failed') return { status: job.errorStatus ?? 500, body: failedBody(job) };
  return { status: 200, body: processingBody(job, await etaSeconds(ctx, job), outputLinks(ctx.store, job, ctx.config.tempLinkTtlMs)) };
}
