// GET the progress stream of a queued request: Server-Sent Events carrying exactly what a fetch of that request
// answers at that moment (the same job row, through the same answerFor), plus the denoising step the worker last
// recorded. Works whether the job runs in this process or in a separate `controlnet worker` on the same queue,
// because it reads the queue, not the engine.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticate } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { answerFor } from '../job-answer.ts';
import type { Job } from '../../jobs/job.ts';

export const PROGRESS_PATHS = ['/api/v6/images/controlnet/progress/:id', '/api/v1/enterprise/images/progress/:id'];

/** How often the job row is read while nothing else announces a change (ms). */
export const PROGRESS_POLL_MS = 100;
/** A comment line this often keeps proxies from closing an idle stream (ms). */
const HEARTBEAT_MS = 15_000;
/** A stream ends after this long even if its job has not (the client may reconnect) (ms). */
const MAX_STREAM_MS = 60 * 60 * 1000;

/** One SSE event of the stream: the fetch answer for the job, with its step and step count. */
export interface ProgressEvent {
  event: 'progress' | 'done';
  /** HTTP status a fetch would answer with now. */
  httpStatus: number;
  data: Record<string, unknown> & { step: number; total_steps: number };
}

/** The event for a job's current row: `done` once the job succeeded or failed, else `progress`. */
export async function progressEvent(ctx: AppContext, job: Job): Promise<ProgressEvent> {
  const a = await answerFor(ctx, job);
  const finished = job.status === 'success' || job.status === 'failed';
  return { event: finished ? 'done' : 'progress', httpStatus: a.status,
    data: { ...a.body, step: job.step, total_steps: job.totalSteps } };
}

function parseId(v: unknown): number {
  const s = typeof v === 'string' ? v.trim() : '';
  if (!/^\d{1,15}$/.test(s)) throw new ApiError(400, 'id must be a positive integer id');
  return Number(s);
}

/**
 * Registers the progress stream. Auth: `Authorization: Bearer <key>` (a GET has no body to carry `key`); another
 * key's job is as unknown as a missing one (404, a JSON error before any stream starts). The stream sends an event
 * at once, then one whenever the job's status, step or step count changes, then the final `done` event (the
 * success or error body of a fetch) and closes.
 */
export function registerProgress(app: FastifyInstance, ctx: AppContext): void {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });
  const stream = (id: number, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let last = '';
    let ended = false;
    const send = async (): Promise<boolean> => {
      const job = await ctx.queue.getJob(id);
      if (!job) {
        res.write(`event: done\ndata: ${JSON.stringify({ status: 'error', message: `request ${id} not found`, messege: `request ${id} not found` })}\n\n`);
        return true;
      }
      // The answer (eta: a few queries) is built only when the row changed.
      const state = `${job.status}:${job.step}:${job.totalSteps}`;
      if (state === last) return false;
      last = state;
      const e = await progressEvent(ctx, job);
      res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      return e.event === 'done';
    };
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(poll);
      clearInterval(beat);
      clearTimeout(limit);
      open.delete(end);
      res.end();
    };
    // one read at a time; the job record is the one a fetch reads (SQLite or Redis)
    let busy = false;
    const tick = () => {
      if (ended || busy) return;
      busy = true;
      send().then((done) => { if (done) end(); }, () => end()).finally(() => { busy = false; });
    };
    const poll = setInterval(tick, PROGRESS_POLL_MS);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    const limit = setTimeout(end, MAX_STREAM_MS);
    open.add(end);
    res.on('close', end);
    tick();
  };
  for (const path of PROGRESS_PATHS) {
    app.get(path, { schema: { summary: 'Per-step progress of a request as Server-Sent Events (the numbers a fetch shows)', tags: ['ControlNet'] } }, async (req, reply) => {
      const key = await authenticate(ctx.keys, req);
      const id = parseId((req.params as { id: string }).id);
      const job = await ctx.queue.getJob(id);
      if (!job || (job.keyId !== key.id && !key.admin)) throw new ApiError(404, `request ${id} not found`);
      stream(id, reply);
    });
  }
}
