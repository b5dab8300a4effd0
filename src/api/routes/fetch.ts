// The fetch endpoints: the same success / processing / error bodies for a queued request, id in the path or body.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticate } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { answerFor } from '../job-answer.ts';

export const FETCH_ID_PATHS = ['/api/v6/images/fetch/:id', '/api/v5/fetch/:id', '/api/v3/fetch/:id', '/api/v1/enterprise/images/fetch/:id'];
export const FETCH_BODY_PATHS = ['/api/v6/images/fetch', '/api/v1/enterprise/fetch'];

function parseId(v: unknown): number {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d{1,15}$/.test(s)) throw new ApiError(400, 'request_id must be a positive integer id');
  return Number(s);
}

export function registerFetch(app: FastifyInstance, ctx: AppContext): void {
  const answer = async (req: FastifyRequest, rawId: unknown) => {
    const key = await authenticate(ctx.keys, req);
    const id = parseId(rawId);
    const job = await ctx.queue.getJob(id);
    // Another key's job is as unknown as a missing one.
    if (!job || (job.keyId !== key.id && !key.admin)) throw new ApiError(404, `request ${id} not found`);
    return answerFor(ctx, job);
  };
  for (const p of FETCH_ID_PATHS) {
    app.post(p, async (req, reply) => {
      const a = await answer(req, (req.params as { id: string }).id);
      return reply.code(a.status).send(a.body);
    });
  }
  for (const p of FETCH_BODY_PATHS) {
    app.post(p, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const a = await answer(req, body.request_id ?? body.id);
      return reply.code(a.status).send(a.body);
    });
  }
}
