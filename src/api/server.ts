// The HTTP server: fastify with every route, JSON bodies (whatever content-type a client sends) and one error
// shape for everything that goes wrong, including fastify's own errors.
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify';
import type { AppContext } from './context.ts';
import { ApiError, errorBody } from './errors.ts';
import { registerGenerate } from './routes/generate.ts';
import { registerHint } from './routes/hint.ts';
import { registerFetch } from './routes/fetch.ts';
import { registerEnterprise } from './routes/enterprise.ts';
import { registerSystem } from './routes/system.ts';

/** Up to three 20 MB images as base64 plus the rest. */
export const BODY_LIMIT = 96 * 1024 * 1024;

export function buildServer(ctx: AppContext): FastifyInstance {
  // One log line per request (written on response), not Fastify's two ("incoming request", "request completed").
  const app = Fastify({ loggerInstance: ctx.log, bodyLimit: BODY_LIMIT, trustProxy: false, disableRequestLogging: true });
  // Clients of the hosted API send JSON with assorted content types (or none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const s = (body as string).trim();
    if (s === '') return done(null, {});
    try {
      done(null, JSON.parse(s));
    } catch {
      done(new ApiError(400, 'the request body must be valid JSON'), undefined);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpSeconds.observe({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      if (err.extra.retry_after !== undefined) void reply.header('retry-after', String(err.extra.retry_after));
      return reply.code(err.statusCode).send(errorBody(err.message, err.extra));
    }
    const code = (err as FastifyError).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(errorBody(`the request body is larger than ${BODY_LIMIT} bytes`));
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status === 415 ? 400 : status).send(errorBody(err.message));
    req.log.error({ err }, 'internal error');
    return reply.code(500).send(errorBody('internal server error'));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(`no route ${req.method} ${req.url.split('?')[0]}`)));
  registerGenerate(app, ctx);
  registerFetch(app, ctx);
  registerHint(app, ctx);
  registerEnterprise(app, ctx);
  registerSystem(app, ctx);
  return app;
}
