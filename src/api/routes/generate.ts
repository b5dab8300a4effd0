// POST the generate endpoints (ControlNet and the sibling text2img / img2img / inpaint of every family): auth and
// rate limit (before the body is validated), the endpoint's zod schema (fastify route schema), installed-model
// checks, enqueue (durable), then wait up to the server's window for the result before answering "processing"
// (at once with instant_response).
import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { KEY_SECURITY } from '../auth.ts';
import { admissionHook } from '../admission.ts';
import { ApiError } from '../errors.ts';
import { bodySchema, resolveRequest, ValidationError, type Endpoint, type Family, type GenerateRequest, type Task, type ValidBody, type ResolveOptions } from '../../request/schema.ts';
import { answerFor } from '../job-answer.ts';
import { needsOf } from '../../jobs/model-set.ts';
import { resultResponses } from '../responses.ts';
import { checkAddress, ipLiteral } from '../../inputs/address.ts';
import { assertAnnotatorAvailable } from '../../engine/annotators/models.ts';
import { AnnotatorMissingError } from '../../engine/annotators/errors.ts';

/** The seed's endpoint, as each family spells it (same body, SPEC defaults). */
export const CONTROLNET_PATHS = ['/api/v5/controlnet', '/api/v6/images/controlnet', '/api/v1/enterprise/controlnet', '/api/v1/enterprise/images/controlnet'];

type SiblingTask = Exclude<Task, 'controlnet'>;
const CLASSIC_NAMES: Record<SiblingTask, string> = { text2img: 'text2img', img2img: 'img2img', inpaint: 'inpaint' };

/** The sibling generators: each family's prefix and its names for the three tasks (research/modelslab-api-family.md §1.1). */
export const SIBLING_FAMILIES: { family: Family; prefix: string; names: Record<SiblingTask, string> }[] = [
  { family: 'v3', prefix: '/api/v3/', names: CLASSIC_NAMES },
  { family: 'v6', prefix: '/api/v6/images/', names: CLASSIC_NAMES },
  { family: 'realtime', prefix: '/api/v6/realtime/', names: CLASSIC_NAMES },
  { family: 'enterprise', prefix: '/api/v1/enterprise/', names: CLASSIC_NAMES },
  { family: 'enterprise', prefix: '/api/v1/enterprise/images/', names: CLASSIC_NAMES },
  { family: 'enterprise_realtime', prefix: '/api/v1/enterprise/realtime/', names: CLASSIC_NAMES },
  { family: 'v7', prefix: '/api/v7/images/', names: { text2img: 'text-to-image', img2img: 'image-to-image', inpaint: 'inpaint' } },
];

/** Every generate path with its endpoint (family and task). */
export const GENERATE_ROUTES: { path: string; endpoint: Endpoint }[] = [
  ...CONTROLNET_PATHS.map((path) => ({ path, endpoint: { family: 'v5' as Family, task: 'controlnet' as Task } })),
  ...SIBLING_FAMILIES.flatMap(({ family, prefix, names }) =>
    (Object.keys(names) as SiblingTask[]).map((task) => ({ path: prefix + names[task], endpoint: { family, task } }))),
];

const SUMMARY: Record<Task, string> = {
  controlnet: 'Generate with one or several ControlNets',
  text2img: 'Text to image (ControlNets optional)',
  img2img: 'Image to image (ControlNets optional)',
  inpaint: 'Inpaint the masked part of init_image (ControlNets optional)',
};

export function baseUrlOf(ctx: AppContext, req: FastifyRequest): string {
  return ctx.config.publicUrl?.replace(/\/+$/, '') ?? `${req.protocol}://${req.host}`;
}

/** 401 for a bad key, then 429 when the key has used its requests per minute; before validation, like the hosted API's limiter. */
export function keyAndRateHook(ctx: AppContext) {
  return admissionHook(ctx.gate, { perMinute: ctx.config.rateLimitPerMinute, metrics: ctx.metrics });
}

/** The cross-field rules as a 400. */
export function resolveOr400(body: ValidBody, e: Endpoint, opts: ResolveOptions = {}): GenerateRequest {
  try {
    return resolveRequest(body, e, opts);
  } catch (err) {
    if (err instanceof ValidationError) throw new ApiError(400, err.message);
    throw err;
  }
}

const FIELD_OF = { base: 'model_id', vae: 'vae', lora: 'lora_model', controlnet: 'controlnet_model' } as const;

/** 422 for any named model that is not in the models folder (annotators and extras: the engine checks). */
async function checkInstalled(ctx: AppContext, r: GenerateRequest): Promise<void> {
  const missing = (what: string, id: string) => new ApiError(422, `${what} "${id}" is not installed`);
  // A ControlNet type's model lives under its type name (models/controlnet/<type>), as the engine expects. In the
  // pool, one live server must have them all (jobs are routed on the whole set).
  const m = await ctx.missingModel(r.model_id!, needsOf(r));
  if (m) throw missing(FIELD_OF[m.kind], m.id);
  if (r.auto_hint === 'yes') {
    for (const t of r.controlnet_model) {
      // scribble falls back to canny edges, face_detector and openpose to the bundled MediaPipe models; every other
      // neural annotator is required.
      try {
        assertAnnotatorAvailable(t, ctx.config.modelsDir);
      } catch (e) {
        if (e instanceof AnnotatorMissingError) throw new ApiError(422, e.message);
        throw e;
      }
    }
  }
}

export function registerGenerate(app: FastifyInstance, ctx: AppContext): void {
  const handler = async (req: FastifyRequest, e: Endpoint) => {
    const key = req.apiKey!;
    const body = req.body as ValidBody;
    const r = resolveOr400(body, e);
    if (r.webhook) {
      // Catch literal private targets now; names are checked (after resolving) at each delivery.
      const host = new URL(r.webhook).hostname;
      const ip = ipLiteral(host);
      if (ip && checkAddress(host, ip, ctx.config.allowPrivateHosts)) throw new ApiError(400, 'webhook must be a public http or https URL');
    }
    r.model_id ??= ctx.defaultModelId();
    if (!r.model_id) throw new ApiError(422, 'no base model is installed and the request names no model_id');
    await checkInstalled(ctx, r);
    // The key's unfinished requests were counted at admission, with its key and rate token (one round trip in the pool).
    if (req.admission!.pending >= ctx.config.maxQueuedPerKey) {
      ctx.metrics.rejected.inc({ reason: 'key_queue' });
      throw new ApiError(429, `too many unfinished requests for this key (limit ${ctx.config.maxQueuedPerKey})`, { retry_after: 5 });
    }
    const depth = await ctx.queueDepth();
    if (depth.queued >= ctx.config.maxQueueDepth) {
      ctx.metrics.rejected.inc({ reason: 'capacity' });
      throw new ApiError(503, `the server is at capacity (${depth.queued} requests queued); try again later`, { retry_after: 30 });
    }
    // The seed is fixed at acceptance: a job re-run after a restart gives the same picture.
    r.seed ??= randomInt(0, 2 ** 32 - 1);
    const job = await ctx.queue.add({ keyId: key.id, request: r, baseUrl: baseUrlOf(ctx, req), filePrefix: randomUUID(),
      pinnedTo: r.loadbalancer === 'no' ? ctx.serverId : undefined });
    const done = body.instant_response === 'yes' ? undefined : await ctx.queue.waitUntilFinished(job.id, ctx.config.waitWindowMs);
    return answerFor(ctx, done ?? job);
  };
  for (const { path, endpoint } of GENERATE_ROUTES) {
    app.route({
      method: 'POST', url: path,
      schema: { summary: SUMMARY[endpoint.task], tags: [endpoint.task === 'controlnet' ? 'ControlNet' : `${endpoint.family} siblings`],
        security: KEY_SECURITY,
        body: bodySchema(endpoint, true), response: resultResponses },
      preValidation: keyAndRateHook(ctx),
      handler: async (req, reply) => {
        const a = await handler(req, endpoint);
        return reply.code(a.status).send(a.body);
      },
    });
  }
}
