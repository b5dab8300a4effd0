// Names and links of a job's output images: fixed when the job is accepted, so `future_links` in a processing
// answer are exactly the links the finished job returns.
import type { Job } from '../jobs/job.ts';
import type { OutputStore } from '../storage/store.ts';

export function outputName(filePrefix: string, i: number): string {
  return `${filePrefix}-${i}.png`;
}

export function outputLinks(store: OutputStore, job: Pick<Job, 'baseUrl' | 'filePrefix' | 'createdAt' | 'request'>, ttlMs: number): string[] {
  const temp = job.request.temp === 'yes';
  return Array.from({ length: job.request.samples }, (_, i) =>
    store.link(job.baseUrl, outputName(job.filePrefix, i), { temp, expiresAt: job.createdAt + ttlMs }));
}
