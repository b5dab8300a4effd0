// The fetch endpoints: the same success / processing / error bodies for a queued request, id in the path or body,
// under every family's prefix (clients build the fetch URL from the path they generated on).
import { z } from 'zod';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { keyHook, KEY_SECURITY } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { answerFor } from '../job-answer.ts';
import { resultResponses } from '../responses.ts';

/** POST with body {key}: one per family (research/modelslab-api-family.md §1.1). */
export const FETCH_ID_PATHS = ['/api/v6/images/fetch/:id', '/api/v5/fetch/:id', '/api/v3/fetch/:id', '/api/v1/enterprise/images/fetch/:id',
  '/api/v6/realtime/fetch/:id', '/api/v7/images/fetch/:id', '/api/v1/enterprise/realtime/fetch/:id'];
/** The v5 ControlNet OpenAPI documents its fetch as GET (key as a header then). */
export const FETCH_GET_PATHS = ['/api/v5/fetch/:id'];
export const FETCH_BODY_PATHS = ['/api/v6/images/fetch', '/api/v1/enterprise/fetch'];

const idMsg = 'request_id must be a positive integer id';
const idParams = z.object({ id: z.string().meta({ description: 'the id of a generate answer', pattern: '^\\d{1,15}$' }) });
const keyField = z.string({ error: 'key is required (body "key", Authorization: Bearer, or a "key" header)' }).min(1)
  .meta({ description: 'API key; may instead come as Authorization: Bearer or a `key` header' });
const fetchByIdBody = z.looseObject({ key: keyField }).meta({ id: 'FetchRequest' });
const fetchBody = z.looseObject({
  key: keyField,
  request_id: z.union([z.number().int(), z.string()], { error: idMsg }).optional().meta({ description: 'the id of a generate answer' }),
  id: z.union([z.number().int(), z.string()], { error: idMsg }).optional().meta({ description: 'accepted for request_id' }),
}).meta({ id: 'FetchByBodyRequest' });

function parseId(v: unknown): number {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d{1,15}$/.test(s)) throw new ApiError(400, idMsg);
  return Number(s);
}

export function registerFetch(app: FastifyInstance, ctx: AppContext): void {
  const answer = async (req: FastifyRequest, rawId: unknown) => {
    const key = req.apiKey!;
    const id = parseId(rawId);
    const job = await ctx.queue.getJob(id);
    // Another key's job is as unknown as a missing one.
    if (!job || (job.keyId !== key.id && !key.admin)) throw new ApiError(404, `request ${id} not found`);
    return answerFor(ctx, job);
  };
  const common = { preValidation: keyHook(ctx.keys) };
  const tags = ['fetch'];
  for (const p of FETCH_ID_PATHS) {
    app.route({
      method: 'POST', url: p, ...common,
      schema: { summary: 'Result of a queued request', tags, security: KEY_SECURITY, params: idParams, body: fetchByIdBody, response: resultResponses },
      handler: async (req, reply) => {
        const a = await answer(req, (req.params as { id: string }).id);
        return reply.code(a.status).send(a.body);
      },
    });
  }
  for (const p of FETCH_GET_PATHS) {
    app.route({
      method: 'GET', url: p, ...common,
      schema: { summary: 'Result of a queued request (GET, key as a header)', tags, security: KEY_SECURITY.slice(0, 2), params: idParams, response: resultResponses },
      handler: async (req, reply) => {
        const a = await answer(req, (req.params as { id: string }).id);
        return reply.code(a.status).send(a.body);
      },
    });
  }
  for (const p of FETCH_BODY_PATHS) {
    app.route({
      method: 'POST', url: p, ...common,
      schema: { summary: 'Result of a queued request (id in the body)', tags, security: KEY_SECURITY, body: fetchBody, response: resultResponses },
      handler: async (req, reply) => {
        const body = req.body as z.output<typeof fetchBody>;
        const a = await answer(req, body.request_id ?? body.id);
        return reply.code(a.status).send(a.body);
      },
    });
  }
}
