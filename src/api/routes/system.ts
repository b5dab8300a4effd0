// GET routes: playground, OpenAPI, health, metrics and the stored output images.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { errorBody } from '../errors.ts';
import { openApiDocument } from '../openapi.ts';

const PLAYGROUND = new URL('../../../web/playground.html', import.meta.url);

export function registerSystem(app: FastifyInstance, ctx: AppContext): void {
  const page = readFileSync(PLAYGROUND, 'utf8');
  const doc = openApiDocument();
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/docs', async () => doc);
  app.get('/health', async (_req, reply) => {
    const queue = await ctx.queue.getJobCounts();
    const model = ctx.defaultModelId();
    const ok = model !== undefined;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', default_model_id: model ?? null, queue,
      uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 1000), ...(ok ? {} : { message: 'no base model is installed' }) });
  });
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()));
  const image = (temp: boolean) => async (req: { params: unknown; query: unknown }, reply: import('fastify').FastifyReply) => {
    const name = (req.params as { name: string }).name;
    const data = await ctx.store.read(name, temp, req.query as { expires?: string; signature?: string });
    if (!data) return reply.code(404).send(errorBody('image not found or link expired'));
    return reply.type('image/png').header('cache-control', temp ? 'private, max-age=3600' : 'public, max-age=31536000, immutable').send(data);
  };
  app.get('/outputs/:name', image(false));
  app.get('/outputs/temp/:name', image(true));
}
