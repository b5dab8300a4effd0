// A queued generate request and its outcome, as the queue stores it (the contract between api/ and worker/).
import type { GenerateRequest } from '../request/schema.ts';

export type JobStatus = 'queued' | 'running' | 'success' | 'failed';

/** What a finished job produced: enough to answer fetch and webhook without re-reading the engine. */
export interface JobResult {
  output: string[];
  proxy_links: string[];
  nsfw_content_detected: boolean;
  generationTime: number;
  meta: Record<string, unknown>;
}

/** A remaining-time estimate made by the server running a job (worker/eta.ts on that server). */
export interface RunnerEta {
  seconds: number;
  /** When it was made (ms since epoch, the runner's clock). */
  at: number;
}

export interface Job {
  id: number;
  keyId: number;
  status: JobStatus;
  request: GenerateRequest;
  baseUrl: string;
  filePrefix: string;
  result?: JobResult;
  error?: string;
  /** HTTP status a fetch of a failed job answers with. */
  errorStatus?: number;
  step: number;
  totalSteps: number;
  /** The running server's own estimate of the job's remaining time, with its progress: `seconds` left as of `at`
   * (ms since epoch). Any server's fetch answers from it (pool, split mode); absent until the runner wrote one. */
  eta?: RunnerEta;
  attempts: number;
  /** The worker (server id in the pool) running or last running it. */
  worker?: string;
  /** Pool only: the server that must run it (`loadbalancer: "no"`). */
  pinnedTo?: string;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
}
