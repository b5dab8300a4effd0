// The durable job queue of one machine, in SQLite: an accepted job is committed before the client hears of it,
// a claim is one atomic UPDATE ... RETURNING (safe with several worker processes), and jobs left "running" by
// a dead process are put back in the queue at start.
import { EventEmitter } from 'node:events';
import type { Db } from './db.ts';
import type { Job, JobResult, JobStatus } from './job.ts';
import type { GenerateRequest } from '../request/schema.ts';

interface Row {
  id: number; key_id: number; status: JobStatus; request: string; base_url: string; file_prefix: string;
  result: string | null; error: string | null; error_status: number | null; step: number; total_steps: number; attempts: number;
  created_at: number; started_at: number | null; finished_at: number | null;
}

function toJob(r: Row): Job {
  return {
    id: r.id, keyId: r.key_id, status: r.status, request: JSON.parse(r.request) as GenerateRequest,
    baseUrl: r.base_url, filePrefix: r.file_prefix,
    result: r.result ? (JSON.parse(r.result) as JobResult) : undefined, error: r.error ?? undefined, errorStatus: r.error_status ?? undefined,
    step: r.step, totalSteps: r.total_steps, attempts: r.attempts, createdAt: r.created_at,
    startedAt: r.started_at ?? undefined, finishedAt: r.finished_at ?? undefined,
  };
}

/** A job that crashed its worker this many times is failed instead of re-queued (a poison request). */
export const MAX_ATTEMPTS = 3;

export class SqliteQueue {
  /** 'enqueued' when a job arrives; 'finished' (id) when one ends. In-process only; waiters also poll. */
  readonly events = new EventEmitter();

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.events.setMaxListeners(0);
  }

  enqueue(input: { keyId: number; request: GenerateRequest; baseUrl: string; filePrefix: string }): Job {
    const row = this.db.prepare(`INSERT INTO jobs (key_id, status, request, base_url, file_prefix, total_steps, created_at)
      VALUES (?, 'queued', ?, ?, ?, ?, ?) RETURNING *`)
      .get(input.keyId, JSON.stringify(input.request), input.baseUrl, input.filePrefix, input.request.num_inference_steps, this.now()) as Row;
    this.events.emit('enqueued', row.id);
    return toJob(row);
  }

  get(id: number): Job | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row && toJob(row);
  }

  /** Takes the oldest queued job, or undefined when none waits. */
  claim(worker: string): Job | undefined {
    const row = this.db.prepare(`UPDATE jobs SET status = 'running', worker = ?, started_at = ?, attempts = attempts + 1, step = 0
      WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) RETURNING *`).get(worker, this.now()) as Row | undefined;
    return row && toJob(row);
  }

  progress(id: number, step: number, totalSteps: number): void {
    this.db.prepare('UPDATE jobs SET step = ?, total_steps = ? WHERE id = ?').run(step, totalSteps, id);
  }

  complete(id: number, result: JobResult): void {
    this.db.prepare(`UPDATE jobs SET status = 'success', result = ?, finished_at = ? WHERE id = ? AND status = 'running'`)
      .run(JSON.stringify(result), this.now(), id);
    this.events.emit('finished', id);
  }

  /** `httpStatus`: what a fetch of this job answers (400 bad input, 422 model missing, 500 internal). */
  fail(id: number, message: string, httpStatus = 500): void {
    this.db.prepare(`UPDATE jobs SET status = 'failed', error = ?, error_status = ?, finished_at = ? WHERE id = ? AND status IN ('queued','running')`)
      .run(message, httpStatus, this.now(), id);
    this.events.emit('finished', id);
  }

  /** At start: jobs a dead process left running go back to the queue (or fail after MAX_ATTEMPTS). */
  recoverRunning(): { requeued: number; failed: number } {
    return this.db.transaction(() => {
      const failed = this.db.prepare(`UPDATE jobs SET status = 'failed', finished_at = ?,
        error = 'the job stopped its worker ' || attempts || ' times and was given up' WHERE status = 'running' AND attempts >= ?`)
        .run(this.now(), MAX_ATTEMPTS).changes;
      const requeued = this.db.prepare(`UPDATE jobs SET status = 'queued', worker = NULL, step = 0 WHERE status = 'running'`).run().changes;
      return { requeued, failed };
    })();
  }

  /** Jobs that will run before this one (queued ahead of it plus those running now). */
  ahead(id: number): number {
    const r = this.db.prepare(`SELECT
      (SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND id < ?) + (SELECT COUNT(*) FROM jobs WHERE status = 'running' AND id != ?) AS n`)
      .get(id, id) as { n: number };
    return r.n;
  }

  pendingForKey(keyId: number): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE key_id = ? AND status IN ('queued','running')`).get(keyId) as { n: number }).n;
  }

  depth(): { queued: number; running: number } {
    const rows = this.db.prepare(`SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued','running') GROUP BY status`).all() as { status: string; n: number }[];
    return { queued: rows.find((r) => r.status === 'queued')?.n ?? 0, running: rows.find((r) => r.status === 'running')?.n ?? 0 };
  }

  /** Fails every queued (not running) job (a fetch answers 503: no capacity was given to it); returns their ids. */
  clearQueued(reason = 'the queue was cleared by an administrator'): number[] {
    const ids = this.db.prepare(`UPDATE jobs SET status = 'failed', error = ?, error_status = 503, finished_at = ? WHERE status = 'queued' RETURNING id`)
      .all(reason, this.now()) as { id: number }[];
    for (const { id } of ids) this.events.emit('finished', id);
    return ids.map((r) => r.id);
  }

  /** Mean seconds per finished job over the recent ones (undefined before the first). */
  meanJobSeconds(recent = 20): number | undefined {
    const r = this.db.prepare(`SELECT AVG(d) AS s FROM (SELECT (finished_at - started_at) AS d FROM jobs
      WHERE status = 'success' AND started_at IS NOT NULL ORDER BY id DESC LIMIT ?)`).get(recent) as { s: number | null };
    return r.s === null ? undefined : r.s / 1000;
  }

  /** Resolves with the job once it is finished, or with its current state after `ms`. */
  async waitFinished(id: number, ms: number, pollMs = 200): Promise<Job | undefined> {
    const done = (j: Job | undefined) => !j || j.status === 'success' || j.status === 'failed';
    let job = this.get(id);
    if (done(job) || ms <= 0) return job;
    await new Promise<void>((resolve) => {
      const events = this.events;
      // Event for jobs run in this process; polling for jobs run by a separate worker process.
      const onFinished = (fid: number) => { if (fid === id) finish(); };
      const finish = () => { clearInterval(poll); clearTimeout(timer); events.off('finished', onFinished); resolve(); };
      const poll = setInterval(() => { if (done(this.get(id))) finish(); }, pollMs);
      const timer = setTimeout(finish, ms);
      events.on('finished', onFinished);
    });
    job = this.get(id);
    return job;
  }
}
