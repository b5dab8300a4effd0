// The job queue's one interface, with BullMQ's verbs (add, getJob, moveToActive, extendLock, updateProgress,
// moveToCompleted, moveToFailed, moveStalledJobsToWait, getJobCounts, drain, waitUntilFinished). Two backends
// implement it: SqliteQueue (one machine, DATA_DIR) and RedisQueue (the pool, BullMQ on REDIS_URL).
//
// Leases: moveToActive hands a job out with a lease (a random token valid for lockMs) that its worker renews
// with extendLock while the job runs. Only a job whose lease expired goes back to the queue
// (moveStalledJobsToWait); a job whose worker crashed this many times is failed instead (a poison request).
// Completion is idempotent: the first moveToCompleted / moveToFailed of an unfinished job wins, and it stores
// the result and queues the job's webhook delivery in one transaction.
import type { Job, JobResult, RunnerEta } from './job.ts';
import type { GenerateRequest } from '../request/schema.ts';

/** A job that stopped its worker this many times is failed instead of re-queued. */
export const MAX_ATTEMPTS = 3;

export interface NewJob {
  keyId: number;
  request: GenerateRequest;
  baseUrl: string;
  filePrefix: string;
  /** Pool only: the server that accepted the request, when the job must run there (`loadbalancer: "no"`). */
  pinnedTo?: string;
}

/** A claimed job and the lease its worker holds on it. */
export interface ActiveJob {
  job: Job;
  token: string;
}

/** A webhook POST to queue together with a job's outcome. */
export interface WebhookDelivery {
  url: string;
  body: Record<string, unknown>;
}

export interface ClaimOptions {
  /** The worker's name (shown as the job's worker; a server id in the pool). */
  worker: string;
  /** Lease length (ms): the job goes back to the queue this long after the last extendLock. */
  lockMs: number;
  /** Pool only: the server this worker belongs to (its pinned jobs; default: `worker`). */
  server?: string;
  /**
   * Pool only: the base models this server has installed and those loaded (model affinity), and its installed
   * ControlNets, LoRAs and VAEs (`extras`, kind → ids): a job is taken only when all its models are here (without
   * `extras`, on its base model alone).
   */
  models?: { installed: string[]; loaded: string[]; extras?: Partial<Record<string, string[]>> };
}

export interface Failure {
  message: string;
  /** What a fetch of the failed job answers: 400 bad input, 422 model missing, 500 internal, 503 cancelled. */
  httpStatus: number;
}

export interface JobCounts {
  queued: number;
  running: number;
}

export interface JobQueue {
  readonly backend: 'sqlite' | 'redis';
  /** Stores a new job (durably) and returns it; its id is a positive integer. */
  add(input: NewJob): Promise<Job>;
  getJob(id: number): Promise<Job | undefined>;
  /** The job's status alone (BullMQ's getJobState): cheaper than getJob, whose request may hold whole images. */
  getJobState(id: number): Promise<Job['status'] | undefined>;
  /** Claims the next job this worker may run (oldest first; in the pool, models loaded here first), or undefined. */
  moveToActive(o: ClaimOptions): Promise<ActiveJob | undefined>;
  /** Renews the lease; false when it was lost (expired and taken by another worker, or the job is finished). */
  extendLock(id: number, token: string, lockMs: number): Promise<boolean>;
  /** Records denoising progress and the runner's eta (only the lease holder's is kept). */
  updateProgress(id: number, token: string, step: number, totalSteps: number, eta?: RunnerEta): Promise<void>;
  /** Stores the result (first completion wins) and queues `webhook` in the same transaction; false if it was already finished. */
  moveToCompleted(id: number, token: string, result: JobResult, webhook?: WebhookDelivery): Promise<boolean>;
  /** Fails the job (first completion wins) and queues `webhook` in the same transaction. */
  moveToFailed(id: number, token: string, failure: Failure, webhook?: WebhookDelivery): Promise<boolean>;
  /** Hands a running job back at once (graceful shutdown); its attempt does not count. */
  moveToWait(id: number, token: string): Promise<void>;
  /** Jobs whose lease expired go back to the queue, or are failed after MAX_ATTEMPTS. */
  moveStalledJobsToWait(): Promise<{ requeued: number[]; failed: number[] }>;
  getJobCounts(): Promise<JobCounts>;
  /** Queued and running jobs per base model. */
  getJobCountsByModel(): Promise<Record<string, JobCounts>>;
  /** Jobs that will run before this one (queued ahead of it plus those running now). */
  ahead(id: number): Promise<number>;
  /** Those jobs themselves (for the eta): the running ones, then the queued ones ahead of it, oldest first; at most `limit`. */
  jobsAhead(id: number, limit?: number): Promise<Job[]>;
  /** Unfinished jobs of one key. */
  pendingForKey(keyId: number): Promise<number>;
  /** Fails every queued (not running) job with a 503 and queues the webhook `webhookFor` gives, in one transaction; returns their ids. */
  drain(reason: string, webhookFor: (job: Job) => WebhookDelivery | undefined): Promise<number[]>;
  /** Resolves with the job once it is finished, or with its current state after `ms`. */
  waitUntilFinished(id: number, ms: number): Promise<Job | undefined>;
  /** Calls `fn` when a job is added (in this process, or anywhere in the pool); returns the unsubscribe function. */
  onAdded(fn: () => void): () => void;
  close(): Promise<void>;
}

export function isFinished(job: Job | undefined): boolean {
  return !job || job.status === 'success' || job.status === 'failed';
}
