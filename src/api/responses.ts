// The three bodies every generate and fetch answer is made of (SPEC "Responses"), as zod schemas (documented in
// /openapi.json and checked against real answers in the tests) and the functions that build them.
import { z } from 'zod';
import type { Job } from '../jobs/job.ts';
import type { GenerateRequest, Family } from '../request/schema.ts';
import { errorBody } from './errors.ts';
import { buildMeta } from '../worker/meta.ts';

const meta = z.record(z.string(), z.unknown()).meta({ description: 'every applied setting under the hosted API\'s names' });
const links = z.array(z.string());

export const successSchema = z.looseObject({
  status: z.literal('success'), generationTime: z.number().meta({ description: 'seconds' }), id: z.number().int(),
  output: links.meta({ description: 'image URLs, or base64 PNGs when base64 is "yes"' }), proxy_links: links,
  nsfw_content_detected: z.boolean(), meta,
}).meta({ id: 'Success' });

export const processingSchema = z.looseObject({
  status: z.literal('processing'), id: z.number().int(), eta: z.number().meta({ description: 'estimated seconds until done' }),
  message: z.string(), messege: z.string(), fetch_result: z.string().meta({ description: 'POST here with {key} to get the result' }),
  output: z.array(z.string()).max(0), future_links: links.meta({ description: 'where each image will appear' }), meta,
}).meta({ id: 'Processing' });

export const errorSchema = z.looseObject({
  status: z.literal('error'), message: z.string(), messege: z.string().meta({ description: 'the same message (hosted clients read either spelling)' }),
  id: z.number().int().optional(), retry_after: z.number().optional().meta({ description: 'seconds (429 and 503)' }),
}).meta({ id: 'Error' });

/** What a generate or fetch answers with HTTP 200. */
export const resultSchema = z.union([successSchema, processingSchema]).meta({ id: 'Result' });

/** The response part of a generate / fetch route schema. */
export const resultResponses = { 200: resultSchema, '4xx': errorSchema, '5xx': errorSchema };

export function successBody(job: Job): Record<string, unknown> {
  const r = job.result!;
  return { status: 'success', generationTime: r.generationTime, id: job.id, output: r.output, proxy_links: r.proxy_links,
    nsfw_content_detected: r.nsfw_content_detected, meta: r.meta };
}

const FETCH_MESSAGE = 'Try to fetch request after seconds estimated';

/**
 * Where the hosted API tells a client to fetch a request (research/modelslab-api-family.md §1.1): the v6 images
 * fetch for ControlNet (every family) and v6 siblings, else the fetch path of the family it was sent to.
 */
const FETCH_PREFIX: Record<Family, string> = {
  v5: '/api/v6/images/fetch/', v6: '/api/v6/images/fetch/', v3: '/api/v3/fetch/', realtime: '/api/v6/realtime/fetch/',
  enterprise: '/api/v1/enterprise/images/fetch/', enterprise_realtime: '/api/v1/enterprise/realtime/fetch/', v7: '/api/v7/images/fetch/',
};

export function fetchPath(r: GenerateRequest, id: number): string {
  return `${FETCH_PREFIX[r.task && r.task !== 'controlnet' ? r.family ?? 'v6' : 'v6']}${id}`;
}

export function processingBody(job: Job, eta: number, futureLinks: string[]): Record<string, unknown> {
  return {
    status: 'processing', id: job.id, eta, message: FETCH_MESSAGE, messege: FETCH_MESSAGE,
    fetch_result: `${job.baseUrl}${fetchPath(job.request, job.id)}`, output: [], future_links: futureLinks,
    meta: buildMeta(job.request, job.filePrefix),
  };
}

export function failedBody(job: Job): Record<string, unknown> {
  return errorBody(job.error ?? 'the request failed', { id: job.id });
}
