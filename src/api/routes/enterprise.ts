// Server management for admin keys, under /api/v1/enterprise/ and /api/v1/enterprise/images/.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../context.ts';
import { keyHook, KEY_SECURITY } from '../auth.ts';
import { errorSchema } from '../responses.ts';
import { queueSeconds } from '../job-answer.ts';
import { ApiError } from '../errors.ts';
import { SCHEDULER_NAMES } from '../../engine/pipeline/types.ts';
import { MODEL_KINDS, type ModelKind } from '../../engine/store.ts';
import { isModelKind, validModelId } from '../../storage/models-folder.ts';
import { isUnset, unsetToUndefined } from '../../request/unset.ts';
import type { DownloadState } from '../../storage/model-download.ts';

export const VERSION = '0.1.0';

export const ENTERPRISE_ENDPOINTS = ['load_model', 'load_vae', 'verify_model', 'get_all_models', 'delete_model', 'clear_cache', 'clear_queue',
  'restart_server', 'update_server', 'update', 'system_details', 'schedulers_list'];

/** The hosted API's model_type names map onto our folder kinds. */
const KIND_ALIASES: Record<string, ModelKind> = {
  huggingface: 'base', custom_ckpt: 'base', ckpt: 'base', diffusers: 'base', stable_diffusion: 'base', base: 'base',
};

const kindField = z.preprocess((v) => (isUnset(v) ? undefined : typeof v === 'string' ? v.trim().toLowerCase() : v),
  z.string({ error: `model_type must be one of: ${MODEL_KINDS.join(', ')}` })
    .transform((s) => KIND_ALIASES[s] ?? s)
    .refine((s) => isModelKind(s), { error: `model_type must be one of: ${MODEL_KINDS.join(', ')}` }).default('base'));
const idField = (name: string) => z.string({ error: `${name} is required` })
  .refine(validModelId, { error: `${name} must be letters, digits, . _ - (at most 128 characters)` });
const sourceField = (name: string) => z.string({ error: `${name} is required: an http(s) URL or a hub repository id (owner/name)` }).min(1).max(2048);
const sha = z.preprocess(unsetToUndefined,
  z.string().regex(/^[0-9a-fA-F]{64}$/, { error: 'sha256 must be 64 hex digits' }).optional());

const loadModelSchema = z.object({ model_id: idField('model_id'), url: sourceField('url'), model_type: kindField, sha256: sha,
  revision: z.preprocess(unsetToUndefined, z.string().regex(/^[A-Za-z0-9._/-]{1,100}$/, { error: 'revision must be a branch, tag or commit' }).optional()) });
const loadVaeSchema = z.object({ vae_id: idField('vae_id'), vae_url: sourceField('vae_url'), sha256: sha });
const modelRefSchema = z.object({ model_id: idField('model_id'), model_type: kindField });

const keyField = z.string({ error: 'key is required (body "key", Authorization: Bearer, or a "key" header)' }).min(1)
  .meta({ description: 'an admin API key; may instead come as Authorization: Bearer or a `key` header' });
/** The body of the endpoints that take nothing but the key. */
const keyOnlySchema = z.looseObject({ key: keyField }).meta({ id: 'AdminKeyRequest' });
/** The request body of each endpoint (documented in /openapi.json and validated before the handler). */
const modelRefBody = modelRefSchema.extend({ key: keyField }).meta({ id: 'ModelRefRequest' });
const BODIES: Record<string, z.ZodType> = {
  load_model: loadModelSchema.extend({ key: keyField }).meta({ id: 'LoadModelRequest' }),
  load_vae: loadVaeSchema.extend({ key: keyField }).meta({ id: 'LoadVaeRequest' }),
  verify_model: modelRefBody,
  delete_model: modelRefBody,
};
/** Every management answer: status and message, plus the endpoint's own fields. */
const adminResult = z.looseObject({ status: z.enum(['success', 'processing', 'ok']), message: z.string().optional() }).meta({ id: 'AdminResult' });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new ApiError(400, r.error.issues[0]!.message);
  return r.data;
}

function downloadView(s: DownloadState | undefined): Record<string, unknown> | null {
  if (!s) return null;
  return { status: s.status, model_type: s.kind, source: s.source, bytes: s.bytes, total_bytes: s.totalBytes ?? null, files: s.files,
    progress: s.totalBytes ? Math.min(1, s.bytes / s.totalBytes) : null, error: s.error ?? null };
}

export function registerEnterprise(app: FastifyInstance, ctx: AppContext): void {
  const route = (names: string[], fn: (req: FastifyRequest) => Promise<{ status?: number; body: Record<string, unknown> }>) => {
    for (const n of names) {
      for (const prefix of ['/api/v1/enterprise/', '/api/v1/enterprise/images/']) {
        if (n === 'update' && prefix === '/api/v1/enterprise/') continue;
        app.route({ method: 'POST', url: prefix + n, preValidation: keyHook(ctx.keys, { admin: true }),
          schema: { summary: `Server management: ${n} (admin key)`, tags: ['enterprise management'], security: KEY_SECURITY,
            body: BODIES[n] ?? keyOnlySchema, response: { 200: adminResult, '4xx': errorSchema, '5xx': errorSchema } },
          handler: async (req, reply) => {
            const a = await fn(req);
            return reply.code(a.status ?? 200).send(a.body);
          } });
      }
    }
  };

  const download = async (kind: ModelKind, id: string, source: string, sha256: string | undefined, revision?: string) => {
    const p = ctx.downloader.start({ kind, id, source, sha256, revision });
    // Wait like a generate request does; big downloads continue in the background (verify_model shows progress).
    const st = await Promise.race([p, sleep(ctx.config.waitWindowMs, undefined, { ref: false })]);
    const state = ctx.downloader.get(kind, id);
    if (st?.status === 'failed') throw new ApiError(400, `loading ${kind} model "${id}" failed: ${st.error}`);
    if (st?.status === 'done') return { body: { status: 'success', message: `model ${id} loaded`, model_id: id, model_type: kind, download: downloadView(state) } };
    return { body: { status: 'processing', message: `model ${id} is downloading; check verify_model`, messege: `model ${id} is downloading; check verify_model`,
      model_id: id, model_type: kind, download: downloadView(state) } };
  };

  route(['load_model'], async (req) => {
    const b = parse(loadModelSchema, req.body);
    return download(b.model_type as ModelKind, b.model_id, b.url, b.sha256, b.revision);
  });
  route(['load_vae'], async (req) => {
    const b = parse(loadVaeSchema, req.body);
    return download('vae', b.vae_id, b.vae_url, b.sha256);
  });
  route(['verify_model'], async (req) => {
    const b = parse(modelRefSchema, req.body);
    const kind = b.model_type as ModelKind;
    const installed = ctx.models.installed(kind, b.model_id);
    return { body: { status: 'success', message: installed ? 'model is installed' : 'model is not installed', model_id: b.model_id,
      model_type: kind, installed, download: downloadView(ctx.downloader.get(kind, b.model_id)) } };
  });
  route(['get_all_models'], async () => {
    const all = await ctx.models.listAll();
    const models = Object.entries(all).flatMap(([kind, list]) => list.map((m) => ({ model_id: m.id, model_type: kind, bytes: m.bytes })));
    return { body: { status: 'success', models, default_model_id: ctx.defaultModelId() ?? null,
      downloads: ctx.downloader.all().map((s) => ({ model_id: s.id, ...downloadView(s) })) } };
  });
  route(['delete_model'], async (req) => {
    const b = parse(modelRefSchema, req.body);
    const kind = b.model_type as ModelKind;
    if (!(await ctx.models.delete(kind, b.model_id))) throw new ApiError(404, `${kind} model "${b.model_id}" is not installed`);
    return { body: { status: 'success', message: `model ${b.model_id} deleted`, model_id: b.model_id, model_type: kind } };
  });
  route(['clear_cache'], async () => {
    const { removedBytes } = await ctx.clearCache();
    const temp = await ctx.store.sweep(ctx.config.tempLinkTtlMs);
    return { body: { status: 'success', message: 'cache cleared', removed_bytes: removedBytes, expired_temp_files: temp } };
  });
  route(['clear_queue'], async () => {
    // Their webhooks learn of it like of any other failure (queued in the same transaction).
    const ids = await ctx.queue.drain('the queue was cleared by an administrator', (job) => job.request.webhook
      ? { url: job.request.webhook, body: { status: 'failed', id: job.id, message: job.error, track_id: job.request.track_id ?? null } } : undefined);
    void ctx.webhooks.deliverDue();
    const n = ids.length;
    return { body: { status: 'success', message: `${n} queued requests cancelled`, cancelled: n } };
  });
  route(['restart_server'], async () => {
    await ctx.restart();
    return { body: { status: 'success', message: 'engine and job loop restarted' } };
  });
  route(['update_server', 'update'], async () => ({
    // Nothing is changed in place: say so rather than pretend an update happened.
    body: { status: 'success', message: `this server is updated by deploying a new version; nothing was changed (running ${VERSION})`, version: VERSION },
  }));
  route(['system_details'], async () => {
    const mem = process.memoryUsage();
    const [pool, queue] = await Promise.all([ctx.poolDetails(), ctx.queue.getJobCounts()]);
    const me = pool.servers.find((s) => s.id === ctx.serverId);
    const queueTime = await queueSeconds(ctx);
    return { body: {
      // The hosted API's three fields: models loaded here, seconds of queued work, "ok".
      status: 'ok', model_count: me?.loaded_models.length ?? 0, queue_time: Math.round(queueTime),
      server_id: ctx.serverId, version: VERSION, uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 1000),
      node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, total_memory_bytes: os.totalmem(),
      free_memory_bytes: os.freemem(), rss_bytes: mem.rss, queue, default_model_id: ctx.defaultModelId() ?? null,
      engine: ctx.engineStats ? await ctx.engineStats().catch((e: Error) => ({ error: e.message })) : null,
      pool,
    } };
  });
  route(['schedulers_list'], async () => ({ body: { status: 'success', schedulers: [...SCHEDULER_NAMES] } }));
}
