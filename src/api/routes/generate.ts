// POST the generate endpoints: auth, rate limit, the one schema, installed-model checks, enqueue (durable),
// then wait up to the server's window for the result before answering "processing".
import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticate } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { parseRequest, ValidationError, type GenerateRequest } from '../../request/schema.ts';
import { answerFor } from '../job-answer.ts';
import { checkAddress, ipLiteral } from '../../inputs/address.ts';
import { annotatorModel, requireAnnotatorFiles } from '../../engine/annotators/models.ts';
import { AnnotatorMissingError } from '../../engine/annotators/errors.ts';

export const GENERATE_PATHS = ['/api/v5/controlnet', '/api/v6/images/controlnet', '/api/v1/enterprise/controlnet', '/api/v1/enterprise/images/controlnet'];

export function baseUrlOf(ctx: AppContext, req: FastifyRequest): string {
  return ctx.config.publicUrl?.replace(/\/+$/, '') ?? `${req.protocol}://${req.host}`;
}

/** 422 for any named model that is not in the models folder (annotators and extras: the engine checks). */
async function checkInstalled(ctx: AppContext, r: GenerateRequest): Promise<void> {
  const missing = (what: string, id: string) => new ApiError(422, `${what} "${id}" is not installed`);
  if (!(await ctx.installed('base', r.model_id!))) throw missing('model_id', r.model_id!);
  if (r.vae && !(await ctx.installed('vae', r.vae))) throw missing('vae', r.vae);
  for (const l of r.lora_model) if (!(await ctx.installed('lora', l))) throw missing('lora_model', l);
  // A ControlNet type's model lives under its type name (models/controlnet/<type>), as the engine expects.
  for (const t of r.controlnet_model) if (!(await ctx.installed('controlnet', t))) throw missing('controlnet_model', t);
  if (r.auto_hint === 'yes') {
    for (const t of r.controlnet_model) {
      // scribble falls back to canny edges when its HED model is missing; every other neural annotator is required.
      if (t === 'scribble' || !annotatorModel(t)) continue;
      try {
        requireAnnotatorFiles(t, ctx.config.modelsDir);
      } catch (e) {
        if (e instanceof AnnotatorMissingError) throw new ApiError(422, `auto_hint for ${t} needs the annotator model file ${e.file}, which is not installed`);
        throw e;
      }
    }
  }
}

export function registerGenerate(app: FastifyInstance, ctx: AppContext): void {
  const handler = async (req: FastifyRequest) => {
    const key = await authenticate(ctx.keys, req);
    const wait = await ctx.limiter.take(key.id);
    if (wait > 0) {
      ctx.metrics.rejected.inc({ reason: 'rate' });
      throw new ApiError(429, `rate limit exceeded: ${ctx.config.rateLimitPerMinute} requests per minute`, { retry_after: wait });
    }
    let r: GenerateRequest;
    try {
      r = parseRequest(req.body);
    } catch (e) {
      if (e instanceof ValidationError) throw new ApiError(400, e.message);
      throw e;
    }
    if (r.webhook) {
      // Catch literal private targets now; names are checked (after resolving) at each delivery.
      const host = new URL(r.webhook).hostname;
      const ip = ipLiteral(host);
      if (ip && checkAddress(host, ip, ctx.config.allowPrivateHosts)) throw new ApiError(400, 'webhook must be a public http or https URL');
    }
    r.model_id ??= ctx.defaultModelId();
    if (!r.model_id) throw new ApiError(422, 'no base model is installed and the request names no model_id');
    await checkInstalled(ctx, r);
    if ((await ctx.queue.pendingForKey(key.id)) >= ctx.config.maxQueuedPerKey) {
      ctx.metrics.rejected.inc({ reason: 'key_queue' });
      throw new ApiError(429, `too many unfinished requests for this key (limit ${ctx.config.maxQueuedPerKey})`, { retry_after: 5 });
    }
    const depth = await ctx.queue.getJobCounts();
    if (depth.queued >= ctx.config.maxQueueDepth) {
      ctx.metrics.rejected.inc({ reason: 'capacity' });
      throw new ApiError(503, `the server is at capacity (${depth.queued} requests queued); try again later`, { retry_after: 30 });
    }
    // The seed is fixed at acceptance: a job re-run after a restart gives the same picture.
    r.seed ??= randomInt(0, 2 ** 32 - 1);
    const job = await ctx.queue.add({ keyId: key.id, request: r, baseUrl: baseUrlOf(ctx, req), filePrefix: randomUUID(),
      pinnedTo: r.loadbalancer === 'no' ? ctx.serverId : undefined });
    const done = await ctx.queue.waitUntilFinished(job.id, ctx.config.waitWindowMs);
    return answerFor(ctx, done ?? job);
  };
  for (const p of GENERATE_PATHS) {
    app.post(p, async (req, reply) => {
      const a = await handler(req);
      return reply.code(a.status).send(a.body);
    });
  }
}
