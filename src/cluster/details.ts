// What system_details shows of the pool: every server (alive or lost, busy or idle, its loaded and installed base
// models, jobs completed) and the queue depth per model. One machine shows itself in the same shape.
import type { JobCounts } from '../jobs/queue.ts';

export interface ServerInfo {
  id: string;
  alive: boolean;
  busy: boolean;
  /** The job running there now. */
  job: number | null;
  loaded_models: string[];
  installed_models: string[];
  jobs_completed: number;
  jobs_failed: number;
  /** ms since epoch of its last heartbeat. */
  last_seen: number;
  started_at: number;
  /** Whether it runs jobs (`serve --no-worker` does not). */
  worker: boolean;
}

export interface PoolDetails {
  mode: 'single' | 'redis';
  servers: ServerInfo[];
  /** Queued and running jobs per base model. */
  queues: Record<string, JobCounts>;
}
