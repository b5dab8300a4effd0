// The HTTP server: fastify with every route, JSON bodies (whatever content-type a client sends), the routes' zod
// schemas as fastify route schemas (validation, and the OpenAPI document at /openapi.json with its reference UI
// at /docs, generated from them by @fastify/swagger + fastify-type-provider-zod), and one error shape for
// everything that goes wrong, including fastify's own errors.
import Fastify, { LogController, type FastifyInstance, type FastifyError } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { createJsonSchemaTransform, createJsonSchemaTransformObject, hasZodFastifySchemaValidationErrors, validatorCompiler } from 'fastify-type-provider-zod';
import type { AppContext } from './context.ts';
import { ApiError, errorBody } from './errors.ts';
import { clientMessage } from '../client-message.ts';
import { SECURITY_SCHEMES } from './auth.ts';
import { describeAcceptedInputs } from '../request/schema.ts';
import { registerGenerate } from './routes/generate.ts';
import { registerHint } from './routes/hint.ts';
import { registerFetch } from './routes/fetch.ts';
import { registerEnterprise, VERSION } from './routes/enterprise.ts';
import { registerSystem } from './routes/system.ts';
import { registerPlayground } from './routes/playground.ts';
import { registerProgress } from './routes/progress.ts';

/** Up to three 20 MB images as base64 plus the rest. */
export const BODY_LIMIT = 96 * 1024 * 1024;

const DESCRIPTION = `A self-hosted server compatible with the hosted ModelsLab image API: ControlNet (\`/api/v5/controlnet\` and its
siblings), text2img / img2img / inpaint in every family of paths, and each family's fetch path. The key travels in the JSON
body as \`key\`, as \`Authorization: Bearer\`, or in a header named \`key\`. Numbers may be sent as numeric strings, lists as
comma lists, yes/no fields as JSON booleans, and \`null\` or \`""\` means unset. Errors are \`{"status":"error","message","messege"}\`
with HTTP 400 (bad input, naming the field and rule), 401, 404, 413, 422 (model not installed), 429 (with \`retry_after\` and
the \`Retry-After\` / \`X-RateLimit-Reset\` headers), 500 or 503.`;

/** The OpenAPI 3.1 document's fixed parts; @fastify/swagger adds a path for every route from its schema. */
const OPENAPI = {
  openapi: '3.1.0' as const,
  info: { title: 'ControlNet API (ModelsLab-compatible)', version: VERSION, description: DESCRIPTION },
  components: { securitySchemes: SECURITY_SCHEMES },
};

export function buildServer(ctx: AppContext): FastifyInstance {
  // One log line per request (written on response), not Fastify's two ("incoming request", "request completed").
  const app = Fastify({ loggerInstance: ctx.log, bodyLimit: BODY_LIMIT, trustProxy: false, logController: new LogController({ disableRequestLogging: true }) });
  app.decorateRequest('apiKey', undefined);
  // Bodies are checked by the routes' zod schemas; answers are plain JSON (their schemas document them and the tests
  // check real answers against them, but a mismatch must not turn a finished job into a 500).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
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
      const retry = err.extra.retry_after;
      if (typeof retry === 'number') {
        // The CLI waits until X-RateLimit-Reset (epoch seconds); HTTP clients read Retry-After.
        void reply.header('retry-after', String(retry)).header('x-ratelimit-reset', String(Math.ceil(Date.now() / 1000) + retry));
      }
      return reply.code(err.statusCode).send(errorBody(clientMessage(err.message), err.extra));
    }
    // A body that breaks its zod schema: the first broken rule, as the schema words it (field and rule).
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send(errorBody(err.validation[0]?.message ?? 'the request body is invalid'));
    const code = (err as FastifyError).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(errorBody(`the request body is larger than ${BODY_LIMIT} bytes`));
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status === 415 ? 400 : status).send(errorBody(clientMessage(err.message)));
    req.log.error({ err }, 'internal error');
    return reply.code(500).send(errorBody('internal server error'));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(`no route ${req.method} ${req.url.split('?')[0]}`)));
  const zodToJsonConfig = { override: describeAcceptedInputs };
  void app.register(swagger, {
    openapi: OPENAPI,
    transform: createJsonSchemaTransform({ zodToJsonConfig, skipList: [] }),
    transformObject: createJsonSchemaTransformObject({ zodToJsonConfig }),
  });
  // The reference UI; its assets come from the npm package (works offline).
  void app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { url: '/openapi.json', deepLinking: true, defaultModelsExpandDepth: 0 } });
  // Routes go in a plugin registered after swagger, so its onRoute hook sees every one.
  void app.register(async (scope) => {
    registerGenerate(scope, ctx);
    registerFetch(scope, ctx);
    registerHint(scope, ctx);
    registerEnterprise(scope, ctx);
    registerSystem(scope, ctx);
    registerPlayground(scope, ctx);
    registerProgress(scope, ctx);
  });
  return app;
}
