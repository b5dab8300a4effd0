// The three bodies every generate and fetch answer is made of (SPEC "Responses").
import type { Job } from '../jobs/job.ts';
import { errorBody } from './errors.ts';
import { buildMeta } from '../worker/meta.ts';

export function successBody(job: Job): Record<string, unknown> {
  const r = job.result!;
  return { status: 'success', generationTime: r.generationTime, id: job.id, output: r.output, proxy_links: r.proxy_links,
    nsfw_content_detected: r.nsfw_content_detected, meta: r.meta };
}

const FETCH_MESSAGE = 'Try to fetch request after seconds estimated';

export function processingBody(job: Job, eta: number, futureLinks: string[]): Record<string, unknown> {
  return {
    status: 'processing', id: job.id, eta, message: FETCH_MESSAGE, messege: FETCH_MESSAGE,
    fetch_result: `${job.baseUrl}/api/v6/images/fetch/${job.id}`, output: [], future_links: futureLinks,
    meta: buildMeta(job.request, job.filePrefix),
  };
}

export function failedBody(job: Job): Record<string, unknown> {
  return errorBody(job.error ?? 'the request failed', { id: job.id });
}
