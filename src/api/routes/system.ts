// GET routes: API reference (/docs) and OpenAPI document (/openapi.json), health, metrics and the stored output
// images. The playground (GET /) is routes/playground.ts.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { errorBody } from '../errors.ts';

export function registerSystem(app: FastifyInstance, ctx: AppContext): void {
  const hide = { schema: { hide: true } };
  // Built by @fastify/swagger from the routes' own zod schemas (server.ts).
  app.get('/openapi.json', hide, async () => app.swagger());
  app.get('/health', { schema: { summary: 'Liveness and the default model', tags: ['server'] } }, async (_req, reply) => {
    const queue = await ctx.queue.getJobCounts();
    const model = ctx.defaultModelId();
    const ok = model !== undefined;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', default_model_id: model ?? null, queue,
      uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 1000), ...(ok ? {} : { message: 'no base model is installed' }) });
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['server'] } },
    async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()));
  const image = (temp: boolean) => async (req: { params: unknown; query: unknown }, reply: import('fastify').FastifyReply) => {
    const name = (req.params as { name: string }).name;
    const data = await ctx.store.read(name, temp, req.query as { expires?: string; signature?: string });
    if (!data) return reply.code(404).send(errorBody('image not found or link expired'));
    return reply.type('image/png').header('cache-control', temp ? 'private, max-age=3600' : 'public, max-age=31536000, immutable').send(data);
  };
  app.get('/outputs/:name', { schema: { summary: 'A stored output image', tags: ['server'] } }, image(false));
  app.get('/outputs/temp/:name', { schema: { summary: 'A temporary output image (signed link)', tags: ['server'] } }, image(true));
}
